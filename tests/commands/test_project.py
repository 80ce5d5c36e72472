"""``llm-catalyst project`` on a saved prompt, and on a missing one."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from llm_catalyst.commands import app


def test_project_shows_slots_and_distances(tuned_run):
    run_dir = re.search(r"run directory: (\S+)", tuned_run.stdout).group(1)
    result = CliRunner().invoke(app, ["project", f"{run_dir}/artifact"])
    assert result.exit_code == 0, result.output
    assert "cosine distance" in result.output
    assert "round trip" in result.output


def test_project_on_a_missing_artifact_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["project", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "artifact" in result.output
