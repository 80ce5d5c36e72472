"""Where local benchmark data lives: one rule, used by every part of the library.

Precedence: an explicit argument, then ``$LLM_CATALYST_DATA``, then ``../shared/data`` relative
to the current directory (the layout of this project's machines and CI), else ``None``, which
means "no local data: use the hub". An explicit argument or environment variable that names a
missing folder is an error rather than a silent fall-through to the hub, because the user asked
for local data and would otherwise get a slow network failure or different data.
"""

from __future__ import annotations

import os
from pathlib import Path

from llm_catalyst.errors import DataError

DATA_ENV_VAR = "LLM_CATALYST_DATA"
_CONVENTIONAL_DIR = Path("..") / "shared" / "data"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The local data folder to read from, or ``None`` when there is none (use the hub)."""
    if data_dir is not None:
        return _existing_dir(Path(data_dir), "the data_dir argument")
    from_env = os.environ.get(DATA_ENV_VAR)
    if from_env:
        return _existing_dir(Path(from_env), f"${DATA_ENV_VAR}")
    conventional = Path.cwd() / _CONVENTIONAL_DIR
    return conventional.resolve() if conventional.is_dir() else None


def _existing_dir(path: Path, origin: str) -> Path:
    path = path.expanduser()
    if not path.is_dir():
        raise DataError(
            f"data folder given by {origin} does not exist or is not a folder",
            path=path,
            fix=f"point {origin} at the folder that holds sst2/, superglue/, ... "
            f"or unset it to fall back to ../shared/data or the hub",
        )
    return path.resolve()
