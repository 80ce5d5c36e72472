"""A small on-disk cache for converted or assembled model weights.

Dequantising a GGUF file takes seconds to tens of seconds; the converted safetensors reload in a
fraction of a second. Entries are written into a temporary sibling directory and renamed into place,
so a process killed half-way never leaves a half-written entry that a later run would trust.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from llm_catalyst.errors import WeightsError
from llm_catalyst.userdirs import CACHE_ENV, cache_root

__all__ = ["CACHE_ENV", "cache_root", "cached_dir"]


def cached_dir(key: str, build: Callable[[Path], None]) -> Path:
    """The directory cached under ``key``, calling ``build(tmp_dir)`` to fill it the first time.

    Several processes may race to build the same entry: each builds in its own temporary
    directory and the first rename wins; the others discard their copy and use the winner's.
    """
    root = cache_root()
    target = root / key
    if target.is_dir():
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=root))
    except OSError as err:
        raise WeightsError(
            f"cannot create the model cache in {root}: {err}\n"
            f"  fix: set {CACHE_ENV} to a writable directory"
        ) from err
    try:
        build(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
