from pathlib import Path

import pytest

from llm_catalyst.data.paths import DATA_ENV_VAR, resolve_data_dir
from llm_catalyst.errors import DataError


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A working directory with ../shared/data, plus two other data folders."""
    work = tmp_path / "project"
    work.mkdir()
    conventional = tmp_path / "shared" / "data"
    conventional.mkdir(parents=True)
    explicit = tmp_path / "explicit"
    explicit.mkdir()
    from_env = tmp_path / "env"
    from_env.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    return {"conventional": conventional, "explicit": explicit, "env": from_env}


def test_explicit_argument_wins_over_env_and_cwd(layout, monkeypatch):
    monkeypatch.setenv(DATA_ENV_VAR, str(layout["env"]))
    assert resolve_data_dir(layout["explicit"]) == layout["explicit"].resolve()


def test_env_var_wins_over_cwd(layout, monkeypatch):
    monkeypatch.setenv(DATA_ENV_VAR, str(layout["env"]))
    assert resolve_data_dir() == layout["env"].resolve()


def test_conventional_folder_relative_to_cwd(layout):
    assert resolve_data_dir() == layout["conventional"].resolve()


def test_none_when_nothing_is_found(layout, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # tmp_path/../shared/data does not exist
    assert resolve_data_dir() is None


def test_explicit_missing_folder_is_an_error(layout, tmp_path):
    with pytest.raises(DataError, match="data_dir argument") as info:
        resolve_data_dir(tmp_path / "nope")
    assert "nope" in str(info.value)


def test_env_var_naming_a_missing_folder_is_an_error(layout, monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "gone"))
    with pytest.raises(DataError, match=DATA_ENV_VAR):
        resolve_data_dir()
