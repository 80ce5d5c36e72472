"""Reading the small JSON files users hand to the LLM tools (histories, scripts).

A file is one JSON list or JSONL; each item says where it was found, so errors can point at it.
"""

from __future__ import annotations

import json
from pathlib import Path

from llm_catalyst.errors import DataError


def read_json_items(path: str | Path, fix: str) -> list[tuple[str, object]]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read the file ({exc.strerror})", path=path, fix=fix) from None
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"not valid JSON ({exc.msg})", path=path, line=exc.lineno, fix=fix
            ) from None
        if not isinstance(items, list):
            raise DataError("expected a JSON list", path=path, fix=fix)
        return [(f"item {n}", item) for n, item in enumerate(items, start=1)]
    found = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found.append((f"line {lineno}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise DataError(
                f"not valid JSON ({exc.msg}); each line of a JSONL file is one JSON value",
                path=path,
                line=lineno,
                fix=fix,
            ) from None
    return found
