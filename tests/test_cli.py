"""The command line as a user meets it: listings, a real tuning run, and clear errors."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from llm_catalyst.cli import app
from llm_catalyst.data.registry import TASK_NAMES

runner = CliRunner()


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory, shared_data_dir):
    output = tmp_path_factory.mktemp("runs")
    result = runner.invoke(
        app,
        [
            "tune",
            "--task",
            "sst2",
            "--model",
            "tiny-causal-lm",
            "--shots",
            "2",
            "--steps",
            "2",
            "--data-dir",
            str(shared_data_dir),
            "--output-dir",
            str(output),
            "--max-test-examples",
            "8",
            "--set",
            "train.eval_every=1",
            "--set",
            "train.progress=false",
        ],
    )
    assert result.exit_code == 0, result.output
    return result


def test_tasks_lists_every_builtin_task(shared_data_dir):
    result = runner.invoke(app, ["tasks", "--data-dir", str(shared_data_dir)])
    assert result.exit_code == 0, result.output
    for name in TASK_NAMES:
        assert re.search(rf"\b{name}\b", result.output), name


def test_tune_prints_the_run_directory_and_metrics(tuned_run):
    assert "run directory:" in tuned_run.output
    assert re.search(r"test accuracy 0\.\d{4}|test accuracy 1\.0000", tuned_run.output)


def test_project_shows_slots_and_distances(tuned_run):
    run_dir = re.search(r"run directory: (\S+)", tuned_run.output).group(1)
    result = runner.invoke(app, ["project", f"{run_dir}/artifact"])
    assert result.exit_code == 0, result.output
    assert "cosine distance" in result.output
    assert "round trip" in result.output


def test_invalid_config_value_names_the_key(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("data:\n  task: sst2\ntrain:\n  lr: -1\n")
    result = runner.invoke(app, ["tune", "--config", str(config)])
    assert result.exit_code == 2
    assert "train.lr" in result.output and str(config) in result.output


def test_unknown_task_suggests_a_fix(tmp_path):
    result = runner.invoke(app, ["tune", "--task", "sst3", "--output-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "sst2" in result.output


def test_malformed_yaml_is_reported(tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text("data: [unclosed\n")
    result = runner.invoke(app, ["tune", "--config", str(config)])
    assert result.exit_code == 2
    assert "not valid YAML" in result.output


def test_project_on_a_missing_artifact_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["project", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "artifact" in result.output
