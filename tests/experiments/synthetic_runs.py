"""Run directories written by hand, in the format of rundir.py, so every number is known."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

STARTED = "2026-01-01T10:00:00+00:00"


def write_run(
    directory: Path,
    *,
    task: str = "sst2",
    method: str = "plain",
    seed: int = 1,
    accuracy: float | None = 0.5,
    backbone: str = "tiny-causal-lm",
    finished_at: str | None = "2026-01-01T10:02:30+00:00",
    events: Iterable[Mapping[str, Any]] = (),
    **results: Any,
) -> Path:
    """One run directory; ``accuracy=None`` leaves it unfinished (no results.json).

    Extra keyword arguments are added to results.json (e.g. wall_clock, llm).
    """
    directory.mkdir(parents=True)
    (directory / "config.yaml").write_text(
        f"data:\n  task: {task}\n  seed: {seed}\nbackbone:\n  model: {backbone}\n",
        encoding="utf-8",
    )
    run_info: dict[str, Any] = {"seed": seed, "protocol": "fewshot", "started_at": STARTED}
    if accuracy is not None and finished_at is not None:
        run_info["finished_at"] = finished_at
    (directory / "run.json").write_text(json.dumps(run_info), encoding="utf-8")
    (directory / "events.jsonl").write_text(
        "".join(json.dumps(event) + "\n" for event in events), encoding="utf-8"
    )
    if accuracy is not None:
        payload = {
            "method": method,
            "task": task,
            "seed": seed,
            "test": {"accuracy": accuracy, "loss": 0.69, "n": 100},
            "dev": {"accuracy": 0.75, "loss": 0.6, "n": 32},
            "best_step": 4,
            "zero_shot_test": None,
            "projected_text": "great movie review",
            **results,
        }
        (directory / "results.json").write_text(json.dumps(payload), encoding="utf-8")
    return directory


def training_events(steps: int, eval_every: int = 2) -> list[dict[str, Any]]:
    """train_step events with a falling loss and dev_eval events every ``eval_every`` steps."""
    events: list[dict[str, Any]] = []
    for step in range(1, steps + 1):
        events.append(
            {"event": "train_step", "step": step, "loss": 1.0 / step, "lr": 0.01, "time": step}
        )
        if step % eval_every == 0:
            events.append(
                {
                    "event": "dev_eval",
                    "step": step,
                    "loss": 1.0 / step,
                    "accuracy": min(1.0, 0.5 + step / 20),
                    "n": 32,
                    "improved": True,
                }
            )
    return events
