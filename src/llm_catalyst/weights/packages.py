"""Weight files shipped inside PyPI packages, found without importing the packages."""

from __future__ import annotations

import base64
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path


def package_dir(package: str) -> Path | None:
    """The directory of an installed package, found without importing it (imports may be slow)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class PackagedFile:
    """One file inside an installed distribution: ``package/relative`` of ``distribution``."""

    distribution: str
    version: str
    package: str
    relative: str

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"

    def locate(self) -> Path | None:
        """The file's path, or None when the package (or the file in it) is not installed."""
        directory = package_dir(self.package)
        if directory is None or not (directory / self.relative).is_file():
            return None
        return directory / self.relative

    def recorded(self) -> tuple[str, int] | None:
        """The sha256 (hex) and size pip recorded for the file at install, when it has them.

        The wheel's RECORD is what pip checked the download against, so a file that differs
        from it was truncated or damaged after installation.
        """
        try:
            files = importlib.metadata.distribution(self.distribution).files or []
        except importlib.metadata.PackageNotFoundError:
            return None
        wanted = f"{self.package}/{self.relative}"
        entry = next((f for f in files if f.as_posix() == wanted), None)
        if entry is None or entry.hash is None or entry.hash.mode != "sha256" or entry.size is None:
            return None
        return _b64_to_hex(entry.hash.value), entry.size


def _b64_to_hex(value: str) -> str:
    """RECORD writes digests in unpadded urlsafe base64."""
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()
