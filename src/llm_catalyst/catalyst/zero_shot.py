"""The zero-shot score (the task's template alone, no soft prompt, on the test subset), computed
once per grid and reused by every cell whose score would be the same.

Every method and seed of a grid shares the backbone, the task and the seeded test subset, so
each cell used to score the same hard prompt on the same examples again (300 test sequences per
cell in configs/experiment.yaml's settings). The grid's cells keep the score in
``<output>/.zero-shot/`` (a single ``run`` computes its own and leaves its output folder as it
was) under a hash of everything it is computed from: the backbone's settings, a sample of its
weights and its head, the task, every test example, the batch size, the number of processes and
the torch version. A different input gives a different file; the same input gives the number a fresh
evaluation would give, so reuse changes no result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from llm_catalyst.backbones.base import Backbone
from llm_catalyst.backbones.config import BackboneConfig
from llm_catalyst.data.tasks import Example
from llm_catalyst.records import Metrics

CACHE_DIR = ".zero-shot"
_FORMAT = 1
_SAMPLE = 1024  # values hashed per weight tensor: enough to tell two checkpoints apart


def zero_shot_key(
    settings: BackboneConfig,
    backbone: Backbone,
    examples: Sequence[Example],
    batch_size: int,
    world_size: int,
) -> str:
    """The sha256 of what determines the zero-shot score of ``backbone`` on ``examples``."""
    payload: dict[str, Any] = {
        "format": _FORMAT,
        "backbone": settings.model_dump(mode="json"),
        "device": str(backbone.device),
        "vocab": backbone.vocab_fingerprint,
        "task": dataclasses.asdict(backbone.task),
        "examples": [[dict(ex.fields), ex.label, ex.uid] for ex in examples],
        "batch_size": batch_size,
        "world_size": world_size,
        "torch": torch.__version__,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode())
    for name, tensor in _weights(backbone):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        flat = tensor.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // _SAMPLE)][:_SAMPLE]
        digest.update(sample.to("cpu", torch.float32).numpy().tobytes())
    for name, tensor in sorted(backbone.head_state().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def _weights(backbone: Backbone) -> list[tuple[str, torch.Tensor]]:
    """Every parameter and buffer of the modules the backbone holds (its model, its head),
    whatever the backbone calls them, so that other weights under the same name are told
    apart."""
    modules: dict[int, tuple[str, torch.nn.Module]] = {}
    for attribute, value in sorted(vars(backbone).items()):
        if isinstance(value, torch.nn.Module):
            modules.setdefault(id(value), (attribute, value))
    return [
        (f"{attribute}.{name}", tensor)
        for attribute, module in modules.values()
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]
    ]


class ZeroShotCache:
    """Zero-shot scores kept as small JSON files in ``<output>/.zero-shot/``.

    A file is written under a temporary name and renamed into place, so that workers running
    cells of one grid at once never read half a file; two workers that both compute a score
    write the same content.
    """

    def __init__(self, output: Path):
        self.directory = Path(output) / CACHE_DIR

    def get(self, key: str) -> Metrics | None:
        try:
            values = json.loads((self.directory / f"{key}.json").read_text(encoding="utf-8"))
            return Metrics.model_validate(values)
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None  # not computed yet, or unreadable: compute it again

    def put(self, key: str, result: Metrics) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{key}.json"
        partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(result.model_dump()), encoding="utf-8")
        os.replace(partial, target)
