"""``compare`` runs a grid once and prints its table; ``report`` writes the page."""

from __future__ import annotations

from typer.testing import CliRunner

from llm_catalyst.commands import app
from tests.commands.small_cli import small_run_sets


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
        *small_run_sets(tmp_path, shared_data_dir),
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
