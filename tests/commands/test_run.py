"""``run`` and its alias ``tune`` as a user calls them: summaries, results and clear errors."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from typer.testing import CliRunner

from llm_catalyst.commands import app
from tests.commands.small_cli import small_run_sets

runner = CliRunner()


def test_run_prints_where_the_run_is_and_what_it_scored(tmp_path, shared_data_dir):
    args = ["run", "--task", "sst2", "--method", "catalyst", "--output-dir", str(tmp_path / "r")]
    outcome = runner.invoke(app, [*args, *small_run_sets(tmp_path, shared_data_dir)])
    assert outcome.exit_code == 0, outcome.output
    (run_dir,) = (tmp_path / "r").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert f"run directory: {run_dir}" in outcome.output
    assert f"test accuracy {results['test']['accuracy']:.4f}" in outcome.output
    assert "LLM calls 1" in outcome.output


def test_a_validation_run_never_calls_its_score_test_accuracy(tmp_path, shared_data_dir):
    """Under protocol validation the final score is on held-out train-pool examples: calling it
    test accuracy would let a recipe choice pass for a test result."""
    args = ["run", "--task", "sst2", "--method", "plain", "--protocol", "validation"]
    sets = small_run_sets(tmp_path, shared_data_dir)
    outcome = runner.invoke(app, [*args, "--output-dir", str(tmp_path / "r"), *sets])
    assert outcome.exit_code == 0, outcome.output
    assert "validation accuracy" in outcome.output
    assert "test accuracy" not in outcome.output


def test_resume_takes_no_other_options(tmp_path):
    outcome = runner.invoke(app, ["run", "--resume", str(tmp_path), "--seed", "2"])
    assert outcome.exit_code == 2
    assert "drop the other options" in outcome.output


def test_tune_prints_the_run_directory_and_metrics(tuned_run):
    assert "run directory:" in tuned_run.output
    assert re.search(r"test accuracy 0\.\d{4}|test accuracy 1\.0000", tuned_run.output)
    assert "plain on sst2 (seed 1)" in tuned_run.output


def test_tune_is_run_with_method_plain(tmp_path, shared_data_dir):
    """Same options, same pipeline: the same config (but for the rounds plain never runs), the
    same results.json keys and the same numbers."""
    common = [
        *("--task", "sst2", "--model", "tiny-causal-lm", "--shots", "2", "--steps", "4"),
        *("--lr", "0.05", "--prompt-length", "3", "--init-text", "Is it good?"),
        *("--data-dir", str(shared_data_dir), "--max-test-examples", "8"),
        *("--set", "train.eval_every=2", "--set", "train.progress=false"),
    ]
    dirs = {}
    for command in (["tune"], ["run", "--method", "plain"]):
        output = tmp_path / command[0]
        outcome = runner.invoke(app, [*command, *common, "--output-dir", str(output)])
        assert outcome.exit_code == 0, outcome.output
        (dirs[command[0]],) = [p for p in output.iterdir() if not p.name.startswith(".")]
    tuned, ran = (json.loads((dirs[c] / "results.json").read_text()) for c in ("tune", "run"))
    assert tuned.keys() == ran.keys()
    assert tuned["method"] == ran["method"] == "plain"
    for key in ("test", "dev", "best_step", "zero_shot_test", "projected_text", "compute"):
        assert tuned[key] == ran[key], key
    configs = [yaml.safe_load((dirs[c] / "config.yaml").read_text()) for c in ("tune", "run")]
    assert configs[0]["prompt"] == configs[1]["prompt"]
    assert configs[0]["prompt"]["init_text"] == "Is it good?"
    assert (configs[0]["loop"]["rounds"], configs[1]["loop"]["rounds"]) == (0, 3)
    for config in configs:
        del config["loop"], config["output_dir"]
    assert configs[0] == configs[1]


def test_a_null_set_is_written_as_null(tmp_path, shared_data_dir):
    """README documents ``null`` for train.max_grad_norm (no clipping): --set applies it."""
    args = ["tune", "--task", "sst2", "--model", "tiny-causal-lm", "--shots", "2", "--steps", "2"]
    args += ["--data-dir", str(shared_data_dir), "--max-test-examples", "8"]
    args += ["--set", "train.progress=false", "--set", "train.max_grad_norm=null"]
    outcome = runner.invoke(app, [*args, "--output-dir", str(tmp_path)])
    assert outcome.exit_code == 0, outcome.output
    (config,) = tmp_path.glob("*/config.yaml")
    assert yaml.safe_load(config.read_text())["train"]["max_grad_norm"] is None


def test_tune_takes_no_method(tmp_path):
    outcome = runner.invoke(app, ["tune", "--method", "catalyst", "--task", "sst2"])
    assert outcome.exit_code == 2
    assert "No such option: --method" in outcome.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("data:\n  task: sst2\ntrain:\n  lr: -1\n", "{}, line 4: train.lr: Input should be"),
        ("data: [unclosed\n", "{}, line 2: not valid YAML"),
    ],
)
def test_config_file_errors_name_the_file_and_line(tmp_path, content, message):
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    result = runner.invoke(app, ["tune", "--config", str(config)])
    assert result.exit_code == 2
    assert message.format(config) in result.output


def test_unknown_task_suggests_a_fix(tmp_path):
    result = runner.invoke(app, ["tune", "--task", "sst3", "--output-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "sst2" in result.output


def test_plain_ignores_the_loop_settings(tmp_path, shared_data_dir):
    """2 steps cannot hold the catalyst's 3 rounds, but plain has no rounds: it runs, and its
    record says so (every step in the final stage)."""
    common = ["--task", "sst2", "--output-dir", str(tmp_path / "r")]
    sets = [*small_run_sets(tmp_path, shared_data_dir), "--set", "loop.rounds=3"]
    sets += ["--set", "train.steps=2"]
    plain = runner.invoke(app, ["run", "--method", "plain", *common, *sets])
    assert plain.exit_code == 0, plain.output
    (run_dir,) = (tmp_path / "r").iterdir()
    schedule = json.loads((run_dir / "results.json").read_text())["schedule"]
    assert (schedule["rounds"], schedule["final_steps"], schedule["total_steps"]) == (0, 2, 2)
    catalyst = runner.invoke(app, ["run", "--method", "catalyst", *common, *sets])
    assert catalyst.exit_code == 2 and "need 6 steps but train.steps=2" in catalyst.output
