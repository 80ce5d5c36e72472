"""What a grid's records say beyond its pre-registered tables: the readings docs/results.md quotes
under "The reading, from the run directories" (experiment 2), printed from the records alone.

For the chosen tasks (default: all in the folder): each contrast over those tasks with both
intervals, as ``compare`` computes its pre-registered ones (``stats.contrast``); the race arm
minus the baseline per seed; the mean per-task standard deviation over seeds of every arm; and
the race arm's winners by origin with the mean difference to the baseline on their seeds.
Nothing is trained; these readings were not pre-registered.

    python benchmarks/reading.py results/experiment2
    python benchmarks/reading.py results/experiment2 --tasks cr,sst5,agnews   # unseen by the recipe
    python benchmarks/reading.py results/experiment2 --tasks sst2,mr          # the recipe's tasks

The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

from llm_catalyst.experiments.races import entrant_origin, winner
from llm_catalyst.experiments.results import RunRecord, collect_runs
from llm_catalyst.experiments.stats import contrast, mean_std

CONTRASTS = (
    "race:plain",
    "race:random-race",
    "race:plain-text-init",
    "llm-init:plain",
    "random-race:plain",
    "race:llm-init",
)


def _points(value: float) -> str:
    return f"{100 * value:+.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("records", type=Path, help="a grid's folder (e.g. results/experiment2)")
    parser.add_argument("--tasks", help="comma-separated tasks (default: every task there)")
    parser.add_argument("--contrasts", nargs="+", default=list(CONTRASTS), metavar="ARM:BASE")
    parser.add_argument("--race-arm", default="race")
    parser.add_argument("--baseline", default="plain")
    args = parser.parse_args()

    runs: list[RunRecord] = list(collect_runs(args.records).finished)
    if args.tasks:
        wanted = set(args.tasks.split(","))
        runs = [run for run in runs if run.task in wanted]
    tasks = sorted({run.task for run in runs})
    by_cell = {(run.task, run.arm or run.method, run.seed): run for run in runs}
    print(f"{len(runs)} runs, tasks {', '.join(tasks)}")

    contrasts = {}
    for pair in args.contrasts:
        arm, baseline = pair.split(":")
        found = contrast(runs, arm, baseline)
        if found is None:
            continue
        overall = found.overall
        assert overall.ci is not None and overall.t_ci is not None
        low, high = overall.ci.low, overall.ci.high
        t_low, t_high = overall.t_ci.low, overall.t_ci.high
        print(
            f"{arm} - {baseline}: {_points(overall.mean)} [{_points(low)}, {_points(high)}] "
            f"(paired t [{_points(t_low)}, {_points(t_high)}])"
        )
        contrasts[f"{arm} - {baseline}"] = [
            100 * v for v in (overall.mean, low, high, t_low, t_high)
        ]

    race, base = args.race_arm, args.baseline
    per_seed = {
        (task, seed): 100 * (run.test.accuracy - by_cell[(task, base, seed)].test.accuracy)
        for (task, arm, seed), run in sorted(by_cell.items())
        if arm == race and (task, base, seed) in by_cell
    }
    for task in tasks:
        line = ", ".join(f"seed {s} {d:+.1f}" for (t, s), d in per_seed.items() if t == task)
        print(f"{race} - {base}, {task}: {line}")
    below = sum(d < 0 for d in per_seed.values())
    print(f"{race} below {base} in {below} of {len(per_seed)} pairs")

    arms = sorted({arm for _, arm, _ in by_cell})
    spread = {}
    for arm in arms:
        stds = [
            mean_std([100 * r.test.accuracy for (t, a, _), r in by_cell.items() if (t, a) == key])[
                1
            ]
            for key in ((task, arm) for task in tasks)
        ]
        known = [s for s in stds if s is not None]
        if known:
            spread[arm] = round(statistics.fmean(known), 2)
    print("mean per-task std over seeds: " + ", ".join(f"{a} {s}" for a, s in spread.items()))

    by_origin: dict[str, list[float]] = defaultdict(list)
    for (task, seed), difference in per_seed.items():
        record = by_cell[(task, race, seed)].race
        if record is not None and record.winner is not None:
            by_origin[entrant_origin(winner(record))].append(difference)
    origins = {
        origin: {"races": len(values), "mean_difference": round(statistics.fmean(values), 1)}
        for origin, values in sorted(by_origin.items(), key=lambda item: -len(item[1]))
    }
    for origin, figures in origins.items():
        print(
            f"{race} won from {origin}: {figures['races']} races, "
            f"{race} - {base} {figures['mean_difference']:+.1f} on their seeds"
        )
    print(
        json.dumps(
            {
                "tasks": tasks,
                "contrasts": {k: [round(v, 2) for v in vs] for k, vs in contrasts.items()},
                "below_baseline": [below, len(per_seed)],
                "mean_task_std": spread,
                "winners": origins,
            }
        )
    )


if __name__ == "__main__":
    main()
