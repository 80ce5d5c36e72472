"""Reading JSON files with errors that name the file and line and say how to fix them.

``read_json`` reads one document (run records, image split files); ``read_json_items`` the small
files users hand to the LLM tools (histories, scripts): one JSON list or JSONL, each item saying
where it was found, so errors can point at it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llm_catalyst.errors import DataError


def read_json(path: Path, fix: str) -> Any:
    """One JSON document; a missing, non-UTF-8 or malformed file is a DataError naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("file not found", path=path, fix=fix) from None
    except UnicodeDecodeError:
        raise DataError("not UTF-8 text", path=path, fix=fix) from None
    except json.JSONDecodeError as error:
        raise DataError(
            f"not valid JSON ({error.msg}, column {error.colno})",
            path=path,
            line=error.lineno,
            fix=fix,
        ) from None


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
