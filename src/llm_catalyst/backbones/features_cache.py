"""Image-tower features computed once, kept in memory and on disk.

A frozen tower maps an image to the same feature every time, and that feature depends only on
the tower's weights, the preprocessing and the image's bytes: the cache key is exactly those
three. The disk store is a ``diskcache.Cache`` (SQLite, safe across processes) holding raw
float32 bytes, never pickles.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import diskcache
import numpy as np
import torch

from llm_catalyst.errors import BackboneError, DataError
from llm_catalyst.userdirs import CACHE_ENV, cache_root

_CHUNK = 1 << 20


def default_feature_dir() -> Path:
    return cache_root() / "clip-features"


def module_fingerprint(*modules: torch.nn.Module, extra: str = "") -> str:
    """BLAKE2b over every parameter and buffer (names, shapes, dtypes, values) and ``extra``.

    All weights are hashed, not a sample: two checkpoints that differ in one deep layer must
    not share cached features. ViT-B/16's image tower (86M parameters) takes well under a second.
    """
    digest = hashlib.blake2b(extra.encode(), digest_size=16)
    for index, module in enumerate(modules):
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(f"{index}:{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


@dataclass
class CacheStats:
    """Where looked-up features came from since the store was made."""

    memory_hits: int = 0
    disk_hits: int = 0
    misses: int = 0


class FeatureStore:
    """Features (dim floats each) under ``namespace`` (the weights + preprocessing fingerprint)."""

    def __init__(self, namespace: str, dim: int, directory: Path | None = None):
        self.namespace = namespace
        self.dim = dim
        self.stats = CacheStats()
        self._memory: dict[str, torch.Tensor] = {}
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._disk: diskcache.Cache | None = None
        if directory is not None:
            try:
                self._disk = diskcache.Cache(str(directory))
            except OSError as error:
                raise BackboneError(
                    f"cannot open the image feature cache in {directory}: {error}\n"
                    f"  fix: set backbone.clip.cache_dir or ${CACHE_ENV} to a writable folder, "
                    "or backbone.clip.disk_cache: false"
                ) from None

    def key(self, path: str | os.PathLike[str]) -> str:
        """Hash of a file's bytes; recomputed only when its size or modification time changes."""
        try:
            stat = os.stat(path)
        except OSError as error:
            raise DataError(
                f"cannot read the image ({error.strerror})",
                path=path,
                fix="check that the image still exists where the task data names it",
            ) from None
        memo_key = (os.fspath(path), stat.st_size, stat.st_mtime_ns)
        known = self._hashes.get(memo_key)
        if known is None:
            digest = hashlib.blake2b(digest_size=16)
            with open(path, "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
            known = self._hashes[memo_key] = digest.hexdigest()
        return known

    def _disk_key(self, key: str) -> str:
        return f"{self.namespace}/{key}"

    def lookup(self, keys: Iterable[str]) -> dict[str, torch.Tensor]:
        found: dict[str, torch.Tensor] = {}
        for key in keys:
            if key in found:
                continue
            feature = self._memory.get(key)
            if feature is not None:
                self.stats.memory_hits += 1
                found[key] = feature
                continue
            raw = None if self._disk is None else self._disk.get(self._disk_key(key))
            if isinstance(raw, bytes) and len(raw) == 4 * self.dim:
                feature = torch.from_numpy(np.frombuffer(raw, dtype="<f4").copy())
                self._memory[key] = feature
                self.stats.disk_hits += 1
                found[key] = feature
            else:
                self.stats.misses += 1
        return found

    def add(self, features: dict[str, torch.Tensor]) -> None:
        for key, feature in features.items():
            value = feature.detach().float().cpu().contiguous()
            if value.shape != (self.dim,):
                raise BackboneError(f"a feature of shape {tuple(value.shape)} is not ({self.dim},)")
            self._memory[key] = value
            if self._disk is not None:
                self._disk.set(self._disk_key(key), value.numpy().astype("<f4").tobytes())

    def stack(self, keys: Sequence[str]) -> torch.Tensor:
        """(N, dim) features of ``keys``, all of which must have been looked up or added."""
        return torch.stack([self._memory[key] for key in keys])
