"""Plain prompt tuning's learning rate, chosen per task before the experiment runs.

A baseline tuned less than the method it is compared with flatters the method. Each task's rate
is the one whose plain runs score the best mean accuracy (ties: the lower mean loss) on held-out
train-pool examples (protocol ``validation``), over seeds the experiment does not use, so the
choice never looks at the evaluation split. The experiment file then records the rate for every
arm of that task.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llm_catalyst.catalyst.config import load_run_config
from llm_catalyst.experiments.experiment import Experiment
from llm_catalyst.experiments.results import CONFIG_FILE, collect_runs
from llm_catalyst.experiments.workers import Cell

SWEEP_FILE = "sweep.json"


def sweep_cells(
    experiment: Experiment,
    output: Path,
    tasks: Sequence[str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> list[Cell]:
    """One plain run per (task, learning rate, sweep seed), the arm's settings otherwise."""
    sweep = experiment.config.sweep
    arm = experiment.config.arms[sweep.arm]
    cells = []
    for task in experiment.task_names(tasks):
        for lr in sweep.learning_rates:
            for seed in sweep.seeds:
                settings = {
                    "protocol": "validation",
                    "max_test_examples": sweep.validation_examples,
                    "train.lr": lr,
                    "arm": f"lr={lr:g}",
                }
                config = experiment.run_config(task, seed, output, arm, overrides or {}, settings)
                cells.append(Cell(f"{task}/lr{lr:g}/seed{seed}", config))
    return cells


@dataclass(frozen=True)
class RateScore:
    lr: float
    seeds: tuple[int, ...]
    accuracy: float
    loss: float


@dataclass(frozen=True)
class RateChoice:
    task: str
    lr: float
    scores: tuple[RateScore, ...]


def choose_rates(output: Path) -> list[RateChoice]:
    """Per task, the rate of the best mean validation accuracy (ties: lower loss), from the
    finished sweep runs under ``output``; rates with fewer seeds than the most are left out,
    so an unfinished sweep never wins by luck of fewer seeds."""
    by_task: dict[str, dict[float, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for run in collect_runs(output).finished:
        if run.protocol != "validation":
            continue
        lr = load_run_config(run.path / CONFIG_FILE).train.lr
        by_task[run.task][lr].append(run)
    choices = []
    for task, by_lr in sorted(by_task.items()):
        scores = [
            RateScore(
                lr,
                tuple(sorted(r.seed for r in runs)),
                float(np.mean([r.test.accuracy for r in runs])),
                float(np.mean([r.test.loss for r in runs])),
            )
            for lr, runs in sorted(by_lr.items())
        ]
        most = max(len(s.seeds) for s in scores)
        complete = [s for s in scores if len(s.seeds) == most]
        best = max(complete, key=lambda s: (s.accuracy, -s.loss))
        choices.append(RateChoice(task, best.lr, tuple(scores)))
    return choices


def write_sweep(output: Path, choices: Sequence[RateChoice]) -> Path:
    path = Path(output) / SWEEP_FILE
    payload = {c.task: {"lr": c.lr, "scores": [asdict(s) for s in c.scores]} for c in choices}
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def sweep_markdown(choices: Sequence[RateChoice]) -> str:
    """One row per task: validation accuracy (loss) per rate, and the chosen rate."""
    rates = sorted({s.lr for c in choices for s in c.scores})
    header = ["task", *(f"lr {lr:g}" for lr in rates), "chosen"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for choice in choices:
        by_lr = {s.lr: s for s in choice.scores}
        cells = [
            f"{by_lr[lr].accuracy:.3f} ({by_lr[lr].loss:.3f}, n={len(by_lr[lr].seeds)})"
            if lr in by_lr
            else "-"
            for lr in rates
        ]
        lines.append("| " + " | ".join([choice.task, *cells, f"{choice.lr:g}"]) + " |")
    return "\n".join(lines)
