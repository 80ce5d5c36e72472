"""What a catalyst run spends besides its gradient steps, and what experiment 2's start race costs
against plain prompt tuning, at the experiments' settings.

Two parts, in one process, each in a temporary output folder with an empty LLM response cache,
so every LLM call is made as on a first run:

- ``catalyst``: one cell of configs/experiment.yaml (by default the ``catalyst`` arm on SST-2,
  seed 1) with the file's own settings and LLM (Qwen2.5-Coder-1.5B-Instruct through llama.cpp).
  The run's own clock splits its wall-clock into gradient steps (probes included), scoring (dev
  scoring of S, the pool, the proposals and the probes, and the one test evaluation) and the
  LLM; the rest (loading, checkpoints, projection) is ``other_s``.
  ``non_gradient_share`` = (scoring + LLM seconds) / wall-clock.
- ``race``: the ``plain`` and the ``race`` cell of configs/experiment2.yaml (same task and
  seed), one after the other. The LLM server is loaded before either is timed (``llm_load_s``),
  as a grid worker has it after its first cell, so neither cell's wall-clock holds the load.
  ``race_wall_ratio_vs_plain`` = the race cell's wall-clock / the plain cell's: what the race
  (its LLM call, its entrants' dev scoring; its steps are within the same budget) costs.

Timings depend on the machine and on whatever else runs on it: the 1-minute load average is
printed beside them. ``--only race`` runs the second part alone, to measure it quietly.

Usage: python benchmarks/catalyst_overhead.py [--only catalyst|race] [--arm catalyst]
           [--task sst2] [--seed 1] [--race-task sst2] [--race-seed 6] [--steps N]
           [--set KEY=VALUE ...]
``--set`` overrides a setting of every cell (e.g. ``--set loop.racing=true``); ``--steps``
sets ``train.steps`` of every cell, for a smoke run of the race part (its rungs must fit:
``--only race --steps 16 --set race.rung_steps=1``; the catalyst's rounds need more steps).
The last line printed is JSON: the headline figures and every cell's.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from rich.console import Console

from llm_catalyst.catalyst.config import RunConfig
from llm_catalyst.catalyst.runner import run
from llm_catalyst.config import parse_override
from llm_catalyst.experiments.experiment import Experiment
from llm_catalyst.llm.gateway import build_client
from machine import this_machine

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / ".." / "shared" / "data"


def measure(config: RunConfig, name: str) -> dict[str, Any]:
    """One cell run here, and where its wall-clock went."""
    start = time.perf_counter()
    results = run(config, console=Console(stderr=True), name=name).results
    seconds = time.perf_counter() - start
    clock, compute, llm = results.wall_clock, results.compute, results.llm
    assert clock is not None and compute is not None
    gradient, scoring, llm_s = clock.gradient_s or 0.0, clock.scoring_s or 0.0, clock.llm_s or 0.0
    return {
        "cell": name,
        "non_gradient_share": round((scoring + llm_s) / clock.total_s, 3),
        "gradient_s": gradient,
        "scoring_s": scoring,
        "llm_s": llm_s,
        "other_s": round(clock.total_s - gradient - scoring - llm_s, 3),
        "total_s": clock.total_s,
        "process_s": round(seconds, 3),
        "dev_prompts_scored": compute.dev_prompts_scored,
        "reused": compute.dev_prompts_reused,
        "raced_out": compute.dev_prompts_raced_out,
        "dev_forward_passes": compute.dev_forward_passes,
        "test_forward_passes": compute.test_forward_passes,
        "gradient_steps": compute.gradient_steps,
        "race_steps": compute.race_steps,
        "discarded_race_steps": compute.discarded_race_steps,
        "llm_calls": 0 if llm is None else llm.calls,
        "llm_model": None if llm is None else llm.model,
        "test_accuracy": results.test.accuracy,
        "scoring": config.loop.scoring,
        "racing": config.loop.racing,
    }


def catalyst_part(args: argparse.Namespace, folder: Path, overrides: Mapping[str, Any]) -> dict:
    """The catalyst cell, as this benchmark always measured it: the LLM is loaded inside it."""
    experiment = Experiment.load(args.experiment)
    (cell,) = experiment.cells(folder / "grid", [args.task], [args.arm], [args.seed], overrides)
    return measure(cell.config, cell.name)


def race_part(
    args: argparse.Namespace, folder: Path, overrides: Mapping[str, Any]
) -> tuple[dict, dict, float]:
    """Experiment 2's plain and race cells of one task and seed, the LLM loaded beforehand;
    returns both cells' figures and the seconds the load took."""
    experiment = Experiment.load(args.race_experiment)
    configs = {
        arm: experiment.run_config(
            args.race_task,
            args.race_seed,
            folder / "grid2",
            experiment.config.arms[arm],
            {"arm": arm},
            overrides,
        )
        for arm in ("plain", "race")
    }
    start = time.perf_counter()
    build_client(configs["race"].llm)  # in-process back-ends keep the server for the race cell
    load_s = time.perf_counter() - start
    plain, race = (
        measure(configs[arm], f"{args.race_task}/{arm}/seed{args.race_seed}")
        for arm in ("plain", "race")
    )
    return plain, race, load_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("catalyst", "race"), help="run one part alone")
    parser.add_argument("--experiment", type=Path, default=ROOT / "configs" / "experiment.yaml")
    parser.add_argument("--arm", default="catalyst")
    parser.add_argument("--task", default="sst2")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--race-experiment", type=Path, default=ROOT / "configs" / "experiment2.yaml"
    )
    parser.add_argument("--race-task", default="sst2")
    parser.add_argument("--race-seed", type=int, default=6)
    parser.add_argument("--steps", type=int, help="train.steps of every cell (a smoke run)")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    print(this_machine().describe(), flush=True)

    summary: dict[str, Any] = {}
    cells = []
    with tempfile.TemporaryDirectory(prefix="catalyst-overhead-") as name:
        folder = Path(name)
        overrides = {
            "data.data_dir": str(args.data_dir),
            "llm.cache.directory": str(folder / "llm-cache"),
            **({} if args.steps is None else {"train.steps": args.steps}),
            **dict(parse_override(item) for item in args.sets),
        }
        if args.only in (None, "catalyst"):
            catalyst = catalyst_part(args, folder, overrides)
            summary["non_gradient_share"] = catalyst["non_gradient_share"]
            cells.append(catalyst)
        if args.only in (None, "race"):
            plain, race, load_s = race_part(args, folder, overrides)
            summary["race_wall_ratio_vs_plain"] = round(race["total_s"] / plain["total_s"], 3)
            summary["race_extra_s"] = round(race["total_s"] - plain["total_s"], 3)
            summary["llm_load_s"] = round(load_s, 3)
            cells += [plain, race]
    summary |= {
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cells": cells,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
