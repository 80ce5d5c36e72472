"""The run, compare and report commands, through the package's typer app as a user calls them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from llm_catalyst.cli import app
from tests.catalyst.small_runs import ANSWER, run_settings, script


def _sets(tmp_path: Path, data_dir: Path, **extra) -> list[str]:
    """--set options of a small run: 1 round after 2 steps, 2 final steps."""
    settings = run_settings(
        tmp_path,
        data_dir,
        script(tmp_path, [ANSWER] * 8),
        **{"train.steps": 4, "loop.rounds": 1, "loop.stage_steps": 2, **extra},
    )
    for key in ("data.task", "output_dir"):
        settings.pop(key)
    return [arg for k, v in settings.items() for arg in ("--set", f"{k}={json.dumps(v)}")]


def test_run_prints_where_the_run_is_and_what_it_scored(tmp_path, shared_data_dir):
    args = ["run", "--task", "sst2", "--method", "catalyst", "--output-dir", str(tmp_path / "r")]
    outcome = CliRunner().invoke(app, [*args, *_sets(tmp_path, shared_data_dir)])
    assert outcome.exit_code == 0, outcome.output
    (run_dir,) = (tmp_path / "r").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert f"run directory: {run_dir}" in outcome.output
    assert f"test accuracy {results['test']['accuracy']:.4f}" in outcome.output
    assert "LLM calls 1" in outcome.output


def test_resume_takes_no_other_options(tmp_path):
    outcome = CliRunner().invoke(app, ["run", "--resume", str(tmp_path), "--seed", "2"])
    assert outcome.exit_code == 2
    assert "drop the other options" in outcome.output


def test_compare_runs_the_grid_once_and_prints_the_table(tmp_path, shared_data_dir):
    grid = tmp_path / "grid"
    args = [
        "compare",
        "--tasks",
        "sst2",
        "--methods",
        "plain,catalyst",
        "--seeds",
        "1",
        "--seeds",
        "2",
        "--output",
        str(grid),
        *_sets(tmp_path, shared_data_dir),
    ]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    cells = sorted(str(p.relative_to(grid).parent) for p in grid.rglob("results.json"))
    assert cells == [
        "sst2/catalyst/seed1",
        "sst2/catalyst/seed2",
        "sst2/plain/seed1",
        "sst2/plain/seed2",
    ]
    assert "grid: 4 cell(s), 0 finished, 4 to run" in first.output
    assert "| sst2 | catalyst | 2 |" in first.output and "Δ vs plain" in first.output
    table = (grid / "comparison.md").read_text()
    assert "| sst2 | plain | 2 |" in table
    assert (grid / "comparison.csv").is_file()

    # Again: every cell is finished; one made unfinished again is resumed, nothing else runs.
    (grid / "sst2/catalyst/seed2/results.json").unlink()
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "grid: 4 cell(s), 3 finished, 1 to run" in second.output
    assert "resumed at step 4" in second.output
    assert len(list(grid.rglob("results.json"))) == 4

    report = CliRunner().invoke(app, ["report", str(grid)])
    assert report.exit_code == 0, report.output
    assert (grid / "report" / "report.html").is_file()


def test_compare_refuses_unknown_methods(tmp_path):
    outcome = CliRunner().invoke(
        app, ["compare", "--tasks", "sst2", "--methods", "plain,magic", "--output", str(tmp_path)]
    )
    assert outcome.exit_code == 2
    assert "unknown method(s) ['magic']" in outcome.output
