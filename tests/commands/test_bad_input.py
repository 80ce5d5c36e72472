"""Bad input on the command line, as a new user types it: one ``error:`` line, exit code 2.

Never a traceback, never a value read as rich markup (a path or label holding ``[/x]`` is
printed as written), never a secret repeated, and nothing written: no run directory, no change
to a grid's folder.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llm_catalyst.commands import app

runner = CliRunner()
SECRET = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567"  # shaped like a Hugging Face token


def write_config(path: Path, data_dir: Path, **sections: object) -> Path:
    """A tiny plain run: 4 shots of SST-2, the tiny causal LM, 2 steps (no rounds), 8 test
    examples."""
    config: dict[str, object] = {
        "data": {"task": "sst2", "data_dir": str(data_dir), "shots": 4},
        "backbone": {"model": "tiny-causal-lm"},
        "train": {"steps": 2, "batch_size": 4, "eval_every": 2, "progress": False},
        "loop": {"rounds": 0},
        "max_test_examples": 8,
        "evaluate_zero_shot": False,
        **sections,
    }
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def finished_grid(tmp_path_factory, shared_data_dir) -> tuple[Path, Path]:
    """A grid whose one cell (sst2, plain, seed 1) finished with train.steps 2, and its config."""
    folder = tmp_path_factory.mktemp("finished")
    config = write_config(folder / "grid.yaml", shared_data_dir)
    grid = folder / "grid"
    args = ["compare", "--config", str(config), "--methods", "plain", "--seeds", "1"]
    result = runner.invoke(app, [*args, "--output", str(grid)])
    assert result.exit_code == 0, result.output
    assert (grid / "sst2/plain/seed1/results.json").is_file()
    return grid, config


@dataclass(frozen=True)
class Inputs:
    """Files the cases name, by the placeholder their arguments use."""

    fields: dict[str, str]
    runs: Path


@pytest.fixture
def inputs(tmp_path, shared_data_dir, finished_grid) -> Inputs:
    runs = tmp_path / "runs"
    config = write_config(tmp_path / "cfg.yaml", shared_data_dir, output_dir=str(runs))
    train = tmp_path / "train.csv"
    train.write_text("text,label\nfine,good\nawful,[/i]\n", encoding="utf-8")
    spec = {
        "name": "tickets",
        "description": "Reviews.",
        "train": str(train),
        "test": str(train),
        "columns": {"text": "text"},
        "label_names": ["bad", "good"],
        "label_words": [" bad", " good"],
        "template": "{text} It was",
        "text_fields": ["text"],
    }
    custom = write_config(tmp_path / "custom.yaml", shared_data_dir, output_dir=str(runs))
    tree = json.loads(custom.read_text())
    tree["data"]["task"] = spec
    custom.write_text(json.dumps(tree), encoding="utf-8")
    llm = tmp_path / "llm.yaml"
    llm.write_text(f"backend: openai\nbase_url: http://127.0.0.1:1/v1\napi_key_env: {SECRET}\n")
    experiment = tmp_path / "experiment.yaml"
    run = json.loads(config.read_text())
    experiment.write_text(json.dumps({"run": run, "tasks": {"sst2": {}}, "arms": {"plain": {}}}))
    (tmp_path / "a-file").write_text("not a folder\n")
    grid, grid_config = finished_grid
    fields = {
        "tmp": str(tmp_path),
        "config": str(config),
        "custom": str(custom),
        "llm": str(llm),
        "experiment": str(experiment),
        "grid": str(grid),
        "grid_config": str(grid_config),
    }
    return Inputs(fields, runs)


def _listing(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p), p.stat().st_size) for p in folder.rglob("*") if p.is_file())


GRID = ("compare", "--config", "{grid_config}", "--methods", "plain", "--seeds", "1")
CASES = [
    # 1. A finished cell written with other settings is refused, naming the keys that differ.
    pytest.param(
        [*GRID, "--output", "{grid}", "--set", "train.steps=3"],
        "{grid}/sst2/plain/seed1 was run with other settings (train.steps: 2 there, 3 now); "
        "give the grid another --output, or delete that directory",
        id="finished-cell-with-other-settings",
    ),
    # 3. A key pasted into api_key_env is refused without being repeated, and never written.
    pytest.param(
        ["tune", "--config", "{config}", "--set", f"llm.api_key_env={SECRET}"],
        "llm.api_key_env: Value error, must be the NAME of an environment variable",
        id="hf-key-in-api-key-env-set",
    ),
    pytest.param(
        ["run", "--config", "{config}", "--method", "catalyst", "--llm", "{llm}"],
        "{llm}, line 3: api_key_env: Value error, must be the NAME of an environment variable",
        id="hf-key-in-api-key-env-llm-file",
    ),
    # 4. Messages are text: brackets in them are printed, never read as markup.
    pytest.param(
        [*GRID, "--output", "{tmp}/new-grid", "--ray", "auto"],
        "pip install 'llm-catalyst[ray]'",
        id="ray-extra-named-with-its-brackets",
    ),
    pytest.param(
        ["tune", "--config", "{tmp}/[/x]/cfg.yaml"],
        "{tmp}/[/x]/cfg.yaml: config file not found",
        id="config-path-with-a-closing-tag",
    ),
    pytest.param(
        ["tune", "--config", "{tmp}/my[bold]cfg.yaml"],
        "{tmp}/my[bold]cfg.yaml: config file not found",
        id="config-path-with-an-opening-tag",
    ),
    pytest.param(
        ["tune", "--config", "{config}", "--data-dir", "{tmp}/[/x]data"],
        "{tmp}/[/x]data: data folder given by the data_dir argument does not exist",
        id="data-path-with-a-closing-tag",
    ),
    pytest.param(
        ["tune", "--config", "{custom}"],
        "{tmp}/train.csv, line 3: unknown label value '[/i]'",
        id="label-value-with-a-closing-tag",
    ),
    # 4. A value --set cannot parse, and an output folder that is a file.
    pytest.param(
        ["tune", "--config", "{config}", "--set", "train.lr=[0.1"],
        "--set train.lr=[0.1: the value is not valid YAML",
        id="set-value-not-yaml",
    ),
    pytest.param(
        ["tune", "--config", "{config}", "--output-dir", "{tmp}/a-file"],
        "output_dir {tmp}/a-file is a file, not a folder",
        id="tune-output-dir-is-a-file",
    ),
    pytest.param(
        [*GRID, "--output", "{tmp}/a-file"],
        "--output {tmp}/a-file is a file, not a folder",
        id="compare-output-is-a-file",
    ),
    pytest.param(
        ["report", "{grid}", "--out", "{tmp}/a-file"],
        "--out {tmp}/a-file is a file, not a folder",
        id="report-out-is-a-file",
    ),
    pytest.param(
        ["sweep", "--experiment", "{experiment}", "--output", "{tmp}/a-file/sweep"],
        "--output {tmp}/a-file/sweep is inside {tmp}/a-file, which is a file, not a folder",
        id="sweep-output-below-a-file",
    ),
    # 5. A run that fails its set-up writes nothing; tune is plain prompt tuning only.
    pytest.param(
        ["run", "--config", "{config}", "--method", "plain-text-init", "--init-text", "Hi"],
        "method plain-text-init starts from the task's instruction, but prompt.init is 'text'",
        id="set-up-refused-writes-no-run-directory",
    ),
    pytest.param(
        ["tune", "--config", "{config}", "--set", "method=catalyst"],
        "tune is plain prompt tuning only (--set method=catalyst); run another method with "
        "llm-catalyst run --method catalyst",
        id="tune-with-another-method",
    ),
]


@pytest.mark.parametrize(("args", "message"), CASES)
def test_bad_input_is_one_message_and_exit_code_2(
    inputs, finished_grid, args, message, monkeypatch
):
    if "--ray" in args:  # a machine without Ray (the test install has it)
        monkeypatch.setitem(sys.modules, "ray", None)
    grid = finished_grid[0]
    before = _listing(grid)
    result = runner.invoke(app, [arg.format(**inputs.fields) for arg in args])
    assert result.exit_code == 2, result.output
    # The error comes last: its line, then at most an indented fix (`DataError`'s "  fix: ...").
    error = result.output[result.output.index("error:") :].splitlines()
    assert all(line.startswith("  fix: ") for line in error[1:]), result.output
    assert message.format(**inputs.fields) in "\n".join(error)
    assert SECRET not in result.output
    assert not inputs.runs.exists(), list(inputs.runs.rglob("*"))
    assert not Path(inputs.fields["tmp"], "new-grid").exists()
    assert _listing(grid) == before


def test_help_names_the_ray_extra_with_its_brackets():
    result = runner.invoke(app, ["compare", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "pip install 'llm-catalyst[ray]'" in result.output


def test_a_cell_refused_at_set_up_leaves_nothing_and_the_corrected_grid_runs(
    tmp_path, shared_data_dir
):
    """A cell whose set-up fails writes no directory, so the same grid with the fix runs it
    (before, its config.yaml and run.json stood there with the bad settings)."""
    config = write_config(tmp_path / "cfg.yaml", shared_data_dir)
    grid = tmp_path / "grid"
    args = ["compare", "--config", str(config), "--methods", "plain-text-init", "--seeds", "1"]
    args += ["--output", str(grid)]
    bad = runner.invoke(app, [*args, "--set", "prompt.init=text", "--set", "prompt.init_text=Hi"])
    assert bad.exit_code == 1, bad.output
    assert "1 cell(s) failed" in bad.output
    assert not (grid / "sst2/plain-text-init/seed1").exists()
    fixed = runner.invoke(app, args)
    assert fixed.exit_code == 0, fixed.output
    assert (grid / "sst2/plain-text-init/seed1/results.json").is_file()


def test_a_failed_cell_is_reported_as_written(tmp_path, shared_data_dir):
    """A cell's failure quotes the user's path; the grid's report prints it as text."""
    config = write_config(tmp_path / "cfg.yaml", shared_data_dir)
    data = tmp_path / "[/x]data"
    args = ["compare", "--config", str(config), "--methods", "plain", "--seeds", "1"]
    result = runner.invoke(
        app, [*args, "--output", str(tmp_path / "grid"), "--data-dir", str(data)]
    )
    assert result.exit_code == 1, result.output
    assert "sst2/plain/seed1: failed after" in result.output
    assert f"{data}: data folder given by the data_dir argument does not exist" in result.output
