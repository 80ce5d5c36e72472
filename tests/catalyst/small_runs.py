"""Fixtures for the catalyst tests: small runs of the tiny causal LM on SST-2 with a scripted LLM.

    script(tmp_path, steps) -> Path       writes a scripted-LLM file (see llm/scripted.py)
    run_settings(tmp_path, data_dir, script, **extra) -> dict   dotted settings of a small run
    ANSWER                                 one LLM answer holding eight distinct prompts

A small run: 4 train and 4 dev examples per class, batch 4, 2 rounds of 3 steps then 2 final
steps, pools of 3 texts, 2 proposals per round, 16 test examples, no zero-shot evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROMPTS = [
    "Is this review positive or negative?",
    "Tell me how the critic felt about the film.",
    "Classify the sentiment of the movie review.",
    "Does the writer like the movie?",
    "Read the review and decide its tone.",
    "Was the film good or bad?",
    "Judge whether the opinion is favourable.",
    "Say the feeling behind this review.",
]
ANSWER = json.dumps(PROMPTS)


def script(tmp_path: Path, steps: list[Any], name: str = "script.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(steps), encoding="utf-8")
    return path


def run_settings(tmp_path: Path, data_dir: Path, script_path: Path, **extra: Any) -> dict:
    settings: dict[str, Any] = {
        "data.task": "sst2",
        "data.data_dir": str(data_dir),
        "data.shots": 4,
        "backbone.model": "tiny-causal-lm",
        "train.steps": 8,
        "train.batch_size": 4,
        "train.eval_every": 2,
        "train.progress": False,
        "loop.rounds": 2,
        "loop.stage_steps": 3,
        "loop.pool_size": 3,
        "max_test_examples": 16,
        "evaluate_zero_shot": False,
        "output_dir": str(tmp_path / "runs"),
        "llm.backend": "scripted",
        "llm.script": str(script_path),
        "llm.cache.directory": str(tmp_path / "llm-cache"),
        "llm.proposer.num_proposals": 2,
    }
    settings.update(extra)
    return settings
