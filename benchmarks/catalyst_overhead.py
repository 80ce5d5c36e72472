"""What a catalyst run spends besides its gradient steps, at the experiment's settings.

Runs one cell of configs/experiment.yaml (by default the ``catalyst`` arm on SST-2, seed 1) with
the file's own settings and LLM (Qwen2.5-Coder-1.5B-Instruct through llama.cpp), in a temporary
output folder with an empty LLM response cache, so every LLM call is made as on a first run.
The run's own clock splits its wall-clock into gradient steps (probes included), scoring (dev
scoring of S, the pool, the proposals and the probes, and the one test evaluation) and the LLM;
the rest (loading, checkpoints, projection) is ``other_s``.

``non_gradient_share`` = (scoring + LLM seconds) / wall-clock. Timings depend on the machine and
on whatever else runs on it: the 1-minute load average is printed beside them.

Usage: python benchmarks/catalyst_overhead.py [--arm catalyst] [--task sst2] [--seed 1]
           [--set KEY=VALUE ...]
``--set`` overrides a setting of the cell (e.g. ``--set loop.racing=true``). The last line
printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from rich.console import Console

from llm_catalyst.catalyst.runner import run
from llm_catalyst.config import parse_override
from llm_catalyst.experiments.experiment import Experiment
from machine import this_machine

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / ".." / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", type=Path, default=ROOT / "configs" / "experiment.yaml")
    parser.add_argument("--arm", default="catalyst")
    parser.add_argument("--task", default="sst2")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    print(this_machine().describe(), flush=True)

    experiment = Experiment.load(args.experiment)
    with tempfile.TemporaryDirectory(prefix="catalyst-overhead-") as folder:
        overrides = {
            "data.data_dir": str(args.data_dir),
            "llm.cache.directory": str(Path(folder) / "llm-cache"),
            **dict(parse_override(item) for item in args.sets),
        }
        (cell,) = experiment.cells(
            Path(folder) / "grid", [args.task], [args.arm], [args.seed], overrides
        )
        start = time.perf_counter()
        results = run(cell.config, console=Console(stderr=True), name="cell").results
        seconds = time.perf_counter() - start
    clock, budget, llm = results.wall_clock, results.budget, results.llm
    assert clock is not None and budget is not None and llm is not None
    gradient, scoring, llm_s = clock.gradient_s or 0.0, clock.scoring_s or 0.0, clock.llm_s or 0.0
    print(
        json.dumps(
            {
                "non_gradient_share": round((scoring + llm_s) / clock.total_s, 3),
                "gradient_s": gradient,
                "scoring_s": scoring,
                "llm_s": llm_s,
                "other_s": round(clock.total_s - gradient - scoring - llm_s, 3),
                "total_s": clock.total_s,
                "process_s": round(seconds, 3),
                "dev_prompts_scored": budget.dev_prompts_scored,
                "reused": budget.dev_prompts_reused,
                "raced_out": budget.dev_prompts_raced_out,
                "dev_forward_passes": budget.dev_forward_passes,
                "test_forward_passes": budget.test_forward_passes,
                "gradient_steps": budget.gradient_steps,
                "llm_calls": llm.calls,
                "llm_model": llm.model,
                "test_accuracy": results.test.accuracy,
                "cell": cell.name,
                "scoring": cell.config.loop.scoring,
                "racing": cell.config.loop.racing,
                "torch_threads": torch.get_num_threads(),
                "load_average_1min": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
