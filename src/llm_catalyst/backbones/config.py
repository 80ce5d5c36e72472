"""How a run names its backbone, and the one function that builds it for a task.

Public API:
    BackboneConfig (pydantic model)
    build_backbone(config, task) -> Backbone

Loading a model takes seconds to minutes, so ``build_backbone`` logs "loading backbone <model>…"
at INFO on the ``llm_catalyst`` logger: the command line shows it, a host application decides.

Validating a ``BackboneConfig`` loads no torch or transformers, so a config error prints at
once: the model code and the preset table are imported where a backbone is resolved or built.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llm_catalyst.backbones.clip_options import CLIPOptions
from llm_catalyst.backbones.options import McReduction, Pooling
from llm_catalyst.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

    from llm_catalyst.backbones.base import Backbone
    from llm_catalyst.data.tasks import Task

_log = logging.getLogger(__name__)

# The strings torch.device accepts (c10/core/Device.cpp): a device type, then optionally ":"
# and an index without leading zeros that fits an int32; tests/backbones/test_config.py checks
# the two agree.
_DEVICE_TYPES = (
    "cpu|cuda|ipu|xpu|mkldnn|opengl|opencl|ideep|hip|ve|fpga|maia|xla|lazy|vulkan|mps|meta|hpu"
    "|mtia|privateuseone"
)
_DEVICE = re.compile(rf"(?:{_DEVICE_TYPES})(?::(0|[1-9][0-9]*))?", re.ASCII)


def _is_torch_device(value: str) -> bool:
    match = _DEVICE.fullmatch(value)
    return match is not None and int(match.group(1) or 0) < 2**31


class BackboneConfig(BaseModel):
    """The frozen model and how it turns a task into class scores.

    Some options apply to one kind only (each says which); the memory options (``dtype``,
    ``gradient_checkpointing``, ``device_map``) to causal LMs and encoders (docs/results.md,
    "Memory", has the measured savings). Image tasks need a CLIP model.
    """

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        "smollm2-135m-instruct",
        description="a preset name (`tiny-causal-lm`, `tiny-encoder` and `tiny-clip` are random "
        "test models), a hub id or a local directory",
    )
    kind: Literal["causal_lm", "encoder", "clip"] | None = Field(
        None,
        description="how the model scores classes: `causal_lm` (the label word), `encoder` (a "
        "linear head) or `clip` (image tasks); null: the preset's kind, else `causal_lm`",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "float32",
        description="the weights' dtype: `float32`, `bfloat16`, `float16` or `auto` (bfloat16 "
        "on a GPU that supports it, else float32: CPUs without bf16 units are slower in it); "
        "the prompt is always trained in float32",
    )
    device: str = Field(
        "cpu",
        description="`cpu`, `cuda`, `cuda:N` or `auto` (CUDA when available); ignored under a "
        "`device_map`",
    )
    max_length: int = Field(
        256,
        gt=0,
        description="tokens of one input: a longer text loses its start on a causal LM (never "
        "the label position), its end on an encoder",
    )
    mc_reduction: McReduction = Field(
        "mean",
        description="causal LMs, multiple-choice tasks: `mean` or `sum` of an option's token "
        "log-probabilities",
    )
    packing: bool = Field(
        True,
        description="causal LMs: share the prompt's keys/values and pack the batch without "
        "padding (exact; checked at build, falls back to padding where unsupported); turn it "
        "off only to debug",
    )
    pooling: Pooling = Field(
        "mean",
        description="encoders: the head reads the `mean` of the token states or the first "
        "token's (`cls`)",
    )
    head_dropout: float = Field(
        0.1, ge=0.0, lt=1.0, description="encoders: dropout before the linear head"
    )
    head_seed: int = Field(0, description="encoders: seed of the head's initial weights")
    clip: CLIPOptions = CLIPOptions()
    gradient_checkpointing: bool = Field(
        False,
        description="recompute each frozen layer's activations in the backward pass instead "
        "of keeping them (transformers' checkpointing, non-reentrant): less memory, slower",
    )
    device_map: Literal["auto"] | dict[str, int | str] | None = Field(
        None,
        description="spread the layers over devices with Accelerate's `dispatch_model` after "
        "loading: `auto` or `{module: device}` (a GPU index, `cpu` or `disk`); the embedding "
        "tables stay on a real device. null: all on `device`",
    )
    max_memory: dict[str, int | str] | None = Field(
        None,
        description='`device_map: auto` fills devices up to this, e.g. `{"0": "10GiB", "cpu": '
        '"30GiB"}`',
    )
    offload_folder: Path | None = Field(
        None, description="where a `device_map` that uses `disk` puts those weights"
    )

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value != "auto" and not _is_torch_device(value):
            raise ValueError(f"unknown device {value!r}; use cpu, cuda, cuda:0 or auto")
        return value

    def resolved_kind(self) -> Literal["causal_lm", "encoder", "clip"]:
        if self.kind is not None:
            return self.kind
        from llm_catalyst.weights.presets import PRESETS, TINY_PRESETS

        if self.model in PRESETS:
            return PRESETS[self.model].kind
        return TINY_PRESETS.get(self.model, "causal_lm")

    def resolved_device(self) -> torch.device:
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def resolved_dtype(self) -> torch.dtype:
        """``auto``: bfloat16 on a GPU with bf16 support, else float32."""
        import torch

        if self.dtype != "auto":
            return getattr(torch, self.dtype)
        device = self.resolved_device()
        bf16 = (
            device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        )
        return torch.bfloat16 if bf16 else torch.float32


def build_backbone(config: BackboneConfig, task: Task) -> Backbone:
    """Load the configured model (frozen, eval mode) on its device and bind it to ``task``."""
    import torch

    from llm_catalyst.backbones.causal_lm import CausalLMBackbone
    from llm_catalyst.backbones.clip import CLIPBackbone
    from llm_catalyst.backbones.encoder_head import EncoderHeadBackbone
    from llm_catalyst.data.tasks import is_image_task
    from llm_catalyst.weights.clip import load_pretrained_clip
    from llm_catalyst.weights.presets import load_pretrained_causal_lm, load_pretrained_encoder

    device = config.resolved_device()
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"backbone.device is {config.device!r} but CUDA is not available here\n"
            "  fix: set backbone.device to cpu or auto"
        )
    dtype = config.resolved_dtype()
    kind = config.resolved_kind()
    if is_image_task(task) and kind != "clip":
        raise ConfigError(
            f"task {task.name!r} is an image task but backbone {config.model!r} is a {kind} "
            "model\n  fix: set backbone.model to a CLIP model (clip-vit-base-patch16, or "
            "tiny-clip for tests) and, for a hub id or directory, backbone.kind: clip"
        )
    _log.info("loading backbone %s…", config.model)
    if kind == "clip":
        loaded = load_pretrained_clip(config.model, dtype)
        return CLIPBackbone(
            loaded.model.to(device),
            loaded.tokenizer,
            loaded.processor,
            task,
            name=config.model,
            options=config.clip,
        )
    # The two text kinds differ only in their loader and their own options.
    if kind == "causal_lm":
        load, backbone, options = (
            load_pretrained_causal_lm,
            CausalLMBackbone,
            {"mc_reduction": config.mc_reduction, "packing": config.packing},
        )
    else:
        load, backbone, options = (
            load_pretrained_encoder,
            EncoderHeadBackbone,
            {
                "pooling": config.pooling,
                "dropout": config.head_dropout,
                "head_seed": config.head_seed,
            },
        )
    model, tokenizer = load(config.model, dtype)
    return backbone(
        _prepare(model, config, device),
        tokenizer,
        task,
        name=config.model,
        max_length=config.max_length,
        **options,
    )


def _prepare(model: PreTrainedModel, config: BackboneConfig, device: torch.device):
    """The loaded model with gradient checkpointing (if asked), on its device or device map."""
    if config.gradient_checkpointing:
        if not model.supports_gradient_checkpointing:
            raise ConfigError(
                f"backbone.gradient_checkpointing: {type(model).__name__} ({config.model!r}) does "
                "not support gradient checkpointing\n  fix: set it to false"
            )
        # The prompt is a leaf that requires grad, so no input hook is needed (non-reentrant).
        # transformers 5 renamed the method; 4.x has only the old name.
        enable = getattr(model, "activation_checkpointing_enable", None)
        if enable is None:
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        else:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
    if config.device_map is None:
        return model.to(device)
    return _dispatch(model, config)


def _dispatch(model: PreTrainedModel, config: BackboneConfig) -> PreTrainedModel:
    """Spread the model over ``config.device_map`` with Accelerate, embeddings kept resident."""
    from accelerate import dispatch_model, infer_auto_device_map

    device_map = config.device_map
    if device_map == "auto":
        max_memory = config.max_memory and {
            int(k) if k.isdigit() else k: v for k, v in config.max_memory.items()
        }
        device_map = infer_auto_device_map(
            model, max_memory=max_memory, no_split_module_classes=model._no_split_modules
        )
    assert isinstance(device_map, dict)
    if "disk" in device_map.values() and config.offload_folder is None:
        raise ConfigError(
            "backbone.device_map puts modules on disk but backbone.offload_folder is not set\n"
            "  fix: set backbone.offload_folder to a directory with room for those weights"
        )
    try:
        model = dispatch_model(model, device_map, offload_dir=config.offload_folder)
    except (ValueError, KeyError, RuntimeError) as error:
        raise ConfigError(
            f"backbone.device_map {device_map} does not fit {type(model).__name__}: {error}\n"
            "  fix: map every module (names as in model.named_modules()) to a GPU index, cpu or "
            "disk, or use device_map: auto"
        ) from error
    embeddings = {"input": model.get_input_embeddings(), "output": model.get_output_embeddings()}
    for which, module in embeddings.items():
        if module is not None and module.weight.device.type == "meta":
            raise ConfigError(
                f"backbone.device_map offloads the {which} embedding of {config.model!r}, which "
                "the backbone reads directly\n  fix: map that module to a GPU (or to cpu when "
                "no GPU is used), or give the first device more max_memory"
            )
    return model
