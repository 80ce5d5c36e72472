"""Saved prompts: one self-describing directory that PEFT can load too.

Loading refuses a backbone with another vocabulary or width; the files of a directory:
docs/design.md, "Saved prompt artifacts".
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import PromptTuningConfig, TaskType
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from llm_catalyst.errors import ArtifactError, ConfigError
from llm_catalyst.prompts.projection import Metric, Vocabulary, project
from llm_catalyst.prompts.soft_prompt import PEFT_PROMPT_KEY, SoftPrompt

FORMAT = "llm-catalyst-prompt"
FORMAT_VERSION = 1
METADATA_FILE = "llm_catalyst.json"
PROMPT_FILE = "adapter_model.safetensors"
PEFT_CONFIG_FILE = "adapter_config.json"
HEAD_FILE = "head.safetensors"
_VERSIONED = ("llm-catalyst", "torch", "transformers", "peft", "safetensors")


@dataclass(frozen=True)
class PromptArtifact:
    """A loaded artifact: the prompt with its provenance, the head weights and all metadata."""

    prompt: SoftPrompt
    metadata: dict[str, Any]
    directory: Path
    head_state: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def backbone_name(self) -> str:
        return str(self.metadata["backbone"]["name"])

    @property
    def projected_text(self) -> str:
        return str(self.metadata["projection"]["text"])

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.metadata.get("metrics") or {})


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in _VERSIONED:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found


def _hf_model(backbone: Any) -> Any | None:
    """The transformers model a backbone wraps, if it exposes one (PEFT can only load into it)."""
    model = getattr(backbone, "model", None)
    return model if hasattr(model, "config") and hasattr(model, "can_generate") else None


def _kind(backbone: Any) -> str:
    model = _hf_model(backbone)
    if model is None:
        return type(backbone).__name__
    return "causal_lm" if model.can_generate() else "encoder"


def _origin(model: Any | None) -> dict[str, str | None]:
    """The base model to name (a hub id where known) and where the weights really came from.

    weights/presets.py stamps the models it builds (``llm_catalyst_origin``; the two packages
    may not import each other): an offline preset is read from a cache directory, whose path
    means nothing on another machine, and its weights may be dequantised, not the hub's own.
    Any other transformers model is named by the path or hub id it was loaded from.
    """
    if model is None:
        return {"base_model": None, "weights_source": None}
    stamped = getattr(model, "llm_catalyst_origin", None)
    if stamped is not None:
        return dict(stamped)
    name = model.config.name_or_path or None
    return {"base_model": name, "weights_source": name}


def _write_peft_config(
    directory: Path, model: Any, kind: str, prompt: SoftPrompt, base_model: str | None
) -> None:
    text_config = model.config.get_text_config()
    PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM if kind == "causal_lm" else TaskType.FEATURE_EXTRACTION,
        num_virtual_tokens=prompt.length,
        token_dim=prompt.dim,
        num_transformer_submodules=1,
        num_attention_heads=text_config.num_attention_heads,
        num_layers=text_config.num_hidden_layers,
        base_model_name_or_path=base_model,
        inference_mode=True,
    ).save_pretrained(str(directory))


def _json_ready(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as err:
        raise ArtifactError(
            f"{what} must be JSON-serialisable (numbers, strings, lists, dicts): {err}"
        ) from err


def save_prompt(
    directory: str | Path,
    prompt: SoftPrompt | torch.Tensor,
    backbone: Any,
    *,
    metrics: dict[str, Any] | None = None,
    init_text: str | None = None,
    extra: dict[str, Any] | None = None,
    metric: Metric = "cosine",
) -> Path:
    """Write ``prompt`` (trained for ``backbone``) as an artifact directory; returns it.

    A bare tensor is recorded as a tensor init; ``init_text`` then says which text it started
    from. A :class:`SoftPrompt` carries its own provenance, and a different ``init_text`` is
    refused rather than silently overriding it. The projection uses ``metric``.
    """
    if isinstance(prompt, torch.Tensor):
        prompt = SoftPrompt(prompt.detach().float().clone(), init="tensor", init_text=init_text)
    elif init_text is not None and init_text != prompt.init_text:
        raise ArtifactError(
            f"init_text {init_text!r} contradicts the prompt's own init text "
            f"{prompt.init_text!r}: pass init_text only with a bare tensor"
        )
    vocab = Vocabulary.of(backbone)
    if prompt.dim != vocab.dim:
        raise ArtifactError(
            f"the prompt is {prompt.dim}-d but backbone {backbone.name!r} embeds in {vocab.dim}-d: "
            "save it with the backbone it was trained on"
        )
    recorded = {"metrics": _json_ready(metrics or {}, "metrics")}
    recorded["extra"] = _json_ready(extra or {}, "extra")
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ArtifactError(f"cannot create the artifact directory {directory}: {err}") from err
    # Metadata goes first (an interrupted save must not look complete), stale files with it.
    for stale in (METADATA_FILE, PEFT_CONFIG_FILE, HEAD_FILE):
        (directory / stale).unlink(missing_ok=True)

    embeddings = prompt.embeddings.detach().float().cpu().contiguous()
    save_file(
        {PEFT_PROMPT_KEY: embeddings}, str(directory / PROMPT_FILE), metadata={"format": "pt"}
    )
    kind = _kind(backbone)
    model = _hf_model(backbone)
    origin = _origin(model)
    if model is not None:
        _write_peft_config(directory, model, kind, prompt, origin["base_model"])
    head = {k: v.detach().cpu().contiguous() for k, v in backbone.head_state().items()}
    if head:
        save_file(head, str(directory / HEAD_FILE))

    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "backbone": {
            "name": backbone.name,
            "kind": kind,
            "vocab_fingerprint": backbone.vocab_fingerprint,
            "embedding_dim": vocab.dim,
            **origin,
        },
        "prompt": {"length": prompt.length, "dim": prompt.dim, **prompt.provenance()},
        "projection": project(embeddings, vocab, metric=metric).to_dict(),
        **recorded,
        "files": {
            "prompt": PROMPT_FILE,
            "peft_config": PEFT_CONFIG_FILE if model is not None else None,
            "head": HEAD_FILE if head else None,
        },
        "versions": _versions(),
    }
    (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return directory


def _read_metadata(directory: Path) -> dict[str, Any]:
    path = directory / METADATA_FILE
    if not directory.is_dir():
        raise ArtifactError(
            f"{directory}: no such artifact directory; pass a directory written by save_prompt"
        )
    if not path.is_file():
        hint = (
            "it looks like a plain PEFT adapter: start from its tensor with init: tensor"
            if (directory / PROMPT_FILE).is_file()
            else "it is not a saved prompt (or saving was interrupted): save it again"
        )
        raise ArtifactError(f"{directory}: {METADATA_FILE} is missing; {hint}")
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ArtifactError(
            f"{path}, line {err.lineno}: not valid JSON ({err.msg}); the artifact is corrupt: "
            "save it again"
        ) from err
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ArtifactError(f"{path}: not an llm-catalyst prompt artifact (format {FORMAT!r})")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: format version {version!r} is newer than this llm-catalyst reads "
            f"({FORMAT_VERSION}): upgrade llm-catalyst"
        )
    missing = [k for k in ("backbone", "prompt", "projection", "files") if k not in metadata]
    if missing:
        raise ArtifactError(f"{path}: metadata lacks {missing}; the artifact is corrupt")
    return metadata


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError as err:
        raise ArtifactError(
            f"{path} is missing; the artifact is incomplete: save it again"
        ) from err
    except (SafetensorError, OSError) as err:
        raise ArtifactError(f"{path}: unreadable safetensors file ({err}): save it again") from err


def _check_backbone(metadata: dict[str, Any], directory: Path, backbone: Any) -> None:
    saved = metadata["backbone"]
    if saved["vocab_fingerprint"] != backbone.vocab_fingerprint:
        raise ArtifactError(
            f"{directory} was saved for backbone {saved['name']!r} (vocabulary "
            f"{saved['vocab_fingerprint'][:12]}) but backbone {backbone.name!r} has vocabulary "
            f"{backbone.vocab_fingerprint[:12]}: load it with the backbone it was trained on"
        )
    dim = int(backbone.embedding_table.shape[1])
    if int(metadata["prompt"]["dim"]) != dim or saved["kind"] != _kind(backbone):
        raise ArtifactError(
            f"{directory} holds a {metadata['prompt']['dim']}-d prompt for a {saved['kind']} "
            f"backbone ({saved['name']!r}); backbone {backbone.name!r} is a {_kind(backbone)} "
            f"embedding in {dim}-d: load it with the backbone it was trained on"
        )
    if saved["name"] != backbone.name:
        warnings.warn(
            f"{directory} was saved for {saved['name']!r} and is loaded into {backbone.name!r}; "
            "the vocabularies match, but make sure the embedding tables do too",
            stacklevel=3,
        )


def load_prompt(directory: str | Path, backbone: Any | None = None) -> PromptArtifact:
    """Read an artifact; with a backbone, refuse a mismatch and load the head into it.

    Without a backbone nothing is checked against a model: use that to inspect an artifact.
    """
    directory = Path(directory)
    metadata = _read_metadata(directory)
    try:
        artifact = _interpret(metadata, directory)
        if backbone is not None:
            _check_backbone(metadata, directory, backbone)
    except (KeyError, TypeError, ValueError, ConfigError) as err:
        raise ArtifactError(
            f"{directory / METADATA_FILE}: malformed metadata ({type(err).__name__}: {err}); "
            "the artifact is corrupt: save it again"
        ) from err
    if backbone is not None and artifact.head_state:
        backbone.load_head_state(artifact.head_state)
    return artifact


def _interpret(metadata: dict[str, Any], directory: Path) -> PromptArtifact:
    files = metadata["files"]
    info = metadata["prompt"]
    rows = _read_tensors(directory / files["prompt"]).get(PEFT_PROMPT_KEY)
    if rows is None or tuple(rows.shape) != (info["length"], info["dim"]):
        got = None if rows is None else tuple(rows.shape)
        raise ArtifactError(
            f"{directory / files['prompt']}: expected {PEFT_PROMPT_KEY!r} of shape "
            f"({info['length']}, {info['dim']}), found {got}; the artifact is corrupt"
        )
    head = _read_tensors(directory / files["head"]) if files.get("head") else {}
    init_ids = info.get("init_token_ids")
    prompt = SoftPrompt(
        rows,
        init=info["init"],
        init_text=info.get("init_text"),
        init_token_ids=None if init_ids is None else tuple(init_ids),
        fit=info.get("fit"),
        seed=info.get("seed"),
        source=info.get("source"),
    )
    return PromptArtifact(prompt=prompt, metadata=metadata, directory=directory, head_state=head)
