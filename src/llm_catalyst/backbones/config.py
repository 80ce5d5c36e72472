"""How a run names its backbone, and the one function that builds it for a task.

Public API:
    BackboneConfig (pydantic model)
    build_backbone(config, task) -> Backbone
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from llm_catalyst.backbones.base import Backbone
from llm_catalyst.backbones.causal_lm import CausalLMBackbone
from llm_catalyst.backbones.clip import CLIPBackbone, CLIPOptions
from llm_catalyst.backbones.clip_presets import load_pretrained_clip
from llm_catalyst.backbones.encoder_head import EncoderHeadBackbone
from llm_catalyst.backbones.presets import (
    PRESETS,
    TINY_PRESETS,
    load_pretrained_causal_lm,
    load_pretrained_encoder,
)
from llm_catalyst.data.images import is_image_task
from llm_catalyst.data.tasks import Task
from llm_catalyst.errors import ConfigError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class BackboneConfig(BaseModel):
    """The frozen model and how it turns a task into class scores.

    ``model`` is a preset name (see ``presets.PRESETS``; ``tiny-causal-lm`` and ``tiny-encoder``
    are random test models), a hub id or a local directory. ``kind`` defaults to the preset's
    kind, else ``causal_lm``. ``mc_reduction`` (multiple-choice tasks) and ``packing`` (the
    faster, padding-free layout; turn it off only to debug) apply to causal LMs; ``pooling``,
    ``head_dropout`` and ``head_seed`` to encoders; ``clip`` (CoOp's options, see
    ``clip.CLIPOptions``) to CLIP models (kind ``clip``: ``clip-vit-base-patch16``,
    ``tiny-clip``, ...), which image tasks need. ``device: auto`` picks CUDA when available.
    """

    model_config = ConfigDict(extra="forbid")

    model: str = "smollm2-135m-instruct"
    kind: Literal["causal_lm", "encoder", "clip"] | None = None
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = "cpu"
    max_length: int = Field(256, gt=0)
    mc_reduction: Literal["mean", "sum"] = "mean"
    packing: bool = True
    pooling: Literal["mean", "cls"] = "mean"
    head_dropout: float = Field(0.1, ge=0.0, lt=1.0)
    head_seed: int = 0
    clip: CLIPOptions = CLIPOptions()

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value == "auto":
            return value
        try:
            torch.device(value)
        except RuntimeError as err:
            raise ValueError(f"unknown device {value!r}; use cpu, cuda, cuda:0 or auto") from err
        return value

    def resolved_kind(self) -> Literal["causal_lm", "encoder", "clip"]:
        if self.kind is not None:
            return self.kind
        if self.model in PRESETS:
            return PRESETS[self.model].kind
        return TINY_PRESETS.get(self.model, "causal_lm")

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


def build_backbone(config: BackboneConfig, task: Task) -> Backbone:
    """Load the configured model (frozen, eval mode) on its device and bind it to ``task``."""
    device = config.resolved_device()
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"backbone.device is {config.device!r} but CUDA is not available here\n"
            "  fix: set backbone.device to cpu or auto"
        )
    dtype = DTYPES[config.dtype]
    kind = config.resolved_kind()
    if is_image_task(task) and kind != "clip":
        raise ConfigError(
            f"task {task.name!r} is an image task but backbone {config.model!r} is a {kind} "
            "model\n  fix: set backbone.model to a CLIP model (clip-vit-base-patch16, or "
            "tiny-clip for tests) and, for a hub id or directory, backbone.kind: clip"
        )
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
    if kind == "causal_lm":
        model, tokenizer = load_pretrained_causal_lm(config.model, dtype)
        return CausalLMBackbone(
            model.to(device),
            tokenizer,
            task,
            name=config.model,
            max_length=config.max_length,
            mc_reduction=config.mc_reduction,
            packing=config.packing,
        )
    model, tokenizer = load_pretrained_encoder(config.model, dtype)
    return EncoderHeadBackbone(
        model.to(device),
        tokenizer,
        task,
        name=config.model,
        max_length=config.max_length,
        pooling=config.pooling,
        dropout=config.head_dropout,
        head_seed=config.head_seed,
    )
