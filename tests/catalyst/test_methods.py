"""The method registry's plain-text-init entry: plain prompt tuning from the task's instruction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_catalyst.catalyst.config import load_run_config
from llm_catalyst.catalyst.runner import run
from llm_catalyst.data.registry import get_task
from llm_catalyst.errors import ConfigError
from llm_catalyst.prompts.artifact import load_prompt
from tests.catalyst.small_runs import run_settings, script

INSTRUCTION = get_task("sst2").instruction


def _settings(tmp_path: Path, data_dir: Path, **extra) -> dict:
    return run_settings(tmp_path, data_dir, script(tmp_path, []), **extra)


def _history(run_dir: Path) -> list[dict]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    kinds = ("train_step", "dev_eval")
    return [
        {k: v for k, v in e.items() if k != "time"}
        for e in map(json.loads, lines)
        if e["event"] in kinds
    ]


def test_plain_text_init_is_plain_tuning_from_the_task_instruction(tmp_path, shared_data_dir):
    """The same run as plain with ``prompt.init: text`` and the instruction as its text."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    method = run(
        load_run_config(None, _settings(tmp_path / "a", shared_data_dir, method="plain-text-init"))
    )
    by_hand = run(
        load_run_config(
            None,
            _settings(
                tmp_path / "b",
                shared_data_dir,
                method="plain",
                **{"prompt.init": "text", "prompt.init_text": INSTRUCTION},
            ),
        )
    )
    assert INSTRUCTION == "Decide whether this movie review is positive or negative."
    assert _history(method.run_dir) == _history(by_hand.run_dir)
    assert method.results.test == by_hand.results.test
    assert method.results.compute is not None and method.results.compute.gradient_steps == 8
    prompt = load_prompt(method.run_dir / "artifact").prompt
    assert (prompt.init, prompt.init_text) == ("text", INSTRUCTION)
    assert prompt.init_token_ids == load_prompt(by_hand.run_dir / "artifact").prompt.init_token_ids


def test_plain_text_init_needs_a_task_with_an_instruction(tmp_path, shared_data_dir):
    rows = ["good film", "bad film", "great acting", "awful plot"]
    for split in ("train", "test"):
        (tmp_path / f"{split}.csv").write_text(
            "text,label\n" + "".join(f"{t},{i % 2}\n" for i, t in enumerate(rows * 2))
        )
    task = {
        "name": "no-instruction",
        "description": "Short movie reviews, positive or negative.",
        "train": str(tmp_path / "train.csv"),
        "test": str(tmp_path / "test.csv"),
        "columns": {"text": "text"},
        "label_names": ["positive", "negative"],
        "label_words": ["positive", "negative"],
        "template": "Review: {text}\nSentiment:",
        "text_fields": ["text"],
    }
    settings = _settings(
        tmp_path, shared_data_dir, method="plain-text-init", **{"data.task": task, "data.shots": 2}
    )
    with pytest.raises(ConfigError, match="task 'no-instruction' has none: set `instruction`"):
        run(load_run_config(None, settings))
    task["instruction"] = "Say whether the review is positive."
    with pytest.raises(ConfigError, match=r"prompt\.init is 'text'"):
        run(
            load_run_config(
                None,
                settings | {"data.task": task, "prompt.init": "text", "prompt.init_text": "x"},
            )
        )
