"""``llm-catalyst propose`` end to end, with a scripted LLM and a real built-in task."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from llm_catalyst.commands import app


def files(tmp_path: Path, answers: list[object], **llm: object) -> tuple[Path, Path]:
    script = tmp_path / "script.jsonl"
    script.write_text("\n".join(json.dumps(a) for a in answers) + "\n")
    config = tmp_path / "llm.yaml"
    settings = {
        "backend": "scripted",
        "script": str(script),
        "cache": {"enabled": False},
        "call_log": str(tmp_path / "calls.jsonl"),
        **llm,
    }
    config.write_text(json.dumps(settings))  # JSON is YAML
    history = tmp_path / "history.jsonl"
    history.write_text(
        '{"text": "terrible great", "loss": 0.9, "accuracy": 0.5}\n'
        '{"text": "Is the review positive?", "loss": 0.4, "accuracy": 0.8}\n'
    )
    return config, history


def test_propose_prints_proposals_rejections_and_usage(tmp_path) -> None:
    config, history = files(tmp_path, ['["Judge the review.", "Is the review positive?"]'])
    args = ["propose", "--task", "sst2", "--llm", str(config), "--pool", str(history)]
    result = CliRunner().invoke(app, [*args, "--num", "2", "--show-prompt"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "at most 1 LLM call(s)" in out
    assert "Movie review sentiment (SST-2)" in out  # the meta-prompt, shown on request
    assert "status: partial (1 of 2 proposals were usable)" in out
    assert "1. Judge the review." in out
    assert "rejected (already tried): Is the review positive?" in out
    assert "calls: 1 (cache hits 0)" in out
    assert (tmp_path / "calls.jsonl").is_file()


def test_propose_json_output(tmp_path) -> None:
    config, history = files(tmp_path, ['["A", "Judge it.", "Say it."]'])
    args = ["propose", "--task", "rte", "--llm", str(config), "--pool", str(history)]
    result = CliRunner().invoke(app, [*args, "--json", "--num", "2", "--round", "3"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["proposals"] == ["A", "Judge it."]
    assert payload["round_index"] == 3
    assert payload["budget"]["calls"] == 1


def test_propose_reports_a_skipped_round_with_exit_code_1(tmp_path) -> None:
    config, history = files(tmp_path, [{"error": "unavailable", "message": "server down"}])
    args = ["propose", "--task", "sst2", "--llm", str(config), "--pool", str(history)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "status: unavailable (LLM unavailable: server down)" in result.output


def test_propose_user_errors_are_messages_not_tracebacks(tmp_path) -> None:
    config, history = files(tmp_path, ["[]"])
    history.write_text('{"text": "a"}\n')
    args = ["propose", "--task", "sst2", "--llm", str(config), "--pool", str(history)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "history.jsonl: line 1: not a scored prompt" in result.output
    assert "Traceback" not in result.output


def test_an_answer_that_repeats_the_history_explains_exit_code_1(tmp_path) -> None:
    """What SmolLM2 answers to the README's example: the tried prompts again."""
    config, history = files(tmp_path, ['["terrible great", "Is the review positive?"]'])
    args = ["propose", "--task", "sst2", "--llm", str(config), "--pool", str(history)]
    result = CliRunner().invoke(app, [*args, "--num", "2", "--round", "2"])
    assert result.exit_code == 1
    assert "status: empty (no usable proposal in 1 answer(s) (2 rejected))" in result.output
    assert "rejected (already tried): Is the review positive?" in result.output
    assert "a run would skip this round (exit code 1)" in result.output
    assert "try another sample (--round 3) or a larger LLM (--llm)" in result.output


def test_the_meta_prompt_is_shown_as_written(tmp_path) -> None:
    """A pool text holding brackets is printed as it is, not read as rich markup."""
    config, history = files(tmp_path, ['["Judge the review."]'])
    history.write_text('{"text": "[bold]loud[/] or [/i] quiet?", "loss": 0.5}\n')
    args = ["propose", "--task", "sst2", "--llm", str(config), "--pool", str(history)]
    result = CliRunner().invoke(app, [*args, "--num", "1", "--show-prompt"])
    assert result.exit_code == 0, result.output
    assert "[bold]loud[/] or [/i] quiet?" in result.output
    assert "--- user ---" in result.output
