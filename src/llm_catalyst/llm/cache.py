"""An on-disk cache of LLM answers, keyed on the whole request plus its sample index.

Identical requests replay, while a second sample of the same question is a different entry.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import diskcache

from llm_catalyst.llm.client import Completion, LLMRequest

# Bump when the stored format or the key's inputs change, so stale entries are never replayed.
_SCHEMA = 1


def request_key(identity: dict[str, str], request: LLMRequest) -> str:
    payload = json.dumps(
        {"schema": _SCHEMA, "identity": identity, "request": request.to_json()},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ResponseCache:
    """A diskcache store of completions; opened on first use, safe to share between runs."""

    def __init__(self, directory: Path, *, enabled: bool = True):
        self.directory = Path(directory)
        self.enabled = enabled
        self._store: diskcache.Cache | None = None

    def get(self, key: str) -> Completion | None:
        if not self.enabled:
            return None
        data = self._open().get(key)
        return Completion.from_json(data) if isinstance(data, dict) else None

    def put(self, key: str, completion: Completion) -> None:
        if self.enabled:
            self._open().set(key, completion.to_json())

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def _open(self) -> diskcache.Cache:
        if self._store is None:
            self._store = diskcache.Cache(str(self.directory))
        return self._store
