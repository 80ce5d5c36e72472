"""Few-shot accuracy over seeds: zero-shot hard prompt vs tuned soft prompt, mean +- std.

Each seed is one plain run (`tune`, i.e. `run --method plain`): its own k-shot train/dev
sample, selection on dev, one test evaluation; the zero-shot figure is the task's template with
no soft prompt, on the same test set. Example:

    python benchmarks/fewshot_accuracy.py --config configs/tune_sst2.yaml --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from llm_catalyst import load_tune_config, tune
from llm_catalyst.config import parse_override
from machine import this_machine


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    print(this_machine().describe(), flush=True)

    rows = []
    for seed in args.seeds:
        overrides = dict(parse_override(item) for item in args.overrides)
        overrides["data.seed"] = seed
        config = load_tune_config(args.config, overrides)
        started = time.perf_counter()
        result = tune(config)
        zero_shot = result.results.zero_shot_test
        rows.append(
            {
                "seed": seed,
                "zero_shot": None if zero_shot is None else zero_shot.accuracy,
                "tuned": result.results.test.accuracy,
                "best_step": result.results.best_step,
                "seconds": time.perf_counter() - started,
                "run_dir": str(result.run_dir),
            }
        )
        print(json.dumps(rows[-1]), flush=True)

    tuned = _mean_std([r["tuned"] for r in rows])
    summary = {
        "task": config.data.task,
        "model": config.backbone.model,
        "seeds": args.seeds,
        "tuned_mean": tuned[0],
        "tuned_std": tuned[1],
    }
    print(f"{'seed':>4}  {'zero-shot':>9}  {'tuned':>7}  {'best step':>9}  {'seconds':>7}")
    for r in rows:
        zero = "-" if r["zero_shot"] is None else f"{r['zero_shot']:.4f}"
        print(
            f"{r['seed']:>4}  {zero:>9}  {r['tuned']:>7.4f}  {r['best_step']:>9}  "
            f"{r['seconds']:>7.1f}"
        )
    if all(r["zero_shot"] is not None for r in rows):
        zero = _mean_std([r["zero_shot"] for r in rows])
        summary |= {"zero_shot_mean": zero[0], "zero_shot_std": zero[1]}
        print(f"zero-shot hard prompt: {zero[0]:.4f} +- {zero[1]:.4f}")
    print(f"tuned soft prompt:     {tuned[0]:.4f} +- {tuned[1]:.4f}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
