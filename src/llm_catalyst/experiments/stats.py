"""Statistics over seeds: what a comparison of methods can honestly claim.

Differences are paired by task and seed, with a seeded percentile bootstrap interval and a
paired t-interval beside it; docs/design.md, "Statistics".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import mpmath
import numpy as np

from llm_catalyst.catalyst.methods import METHODS
from llm_catalyst.errors import ConfigError, DataError
from llm_catalyst.experiments.results import RunRecord, WallClock


@dataclass(frozen=True)
class Bootstrap:
    """How an interval is drawn: ``resamples`` seeded resamples, a central interval at ``level``.

    One object, so the tables, the report and the statistics cannot disagree on the settings.
    """

    resamples: int = 10_000
    level: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        if self.resamples < 1:
            raise ConfigError(f"bootstrap resamples must be at least 1, got {self.resamples}")
        if not 0.0 < self.level < 1.0:
            raise ConfigError(
                f"confidence level must lie strictly between 0 and 1, got {self.level} "
                "(write 0.95 for 95%)"
            )


DEFAULT_BOOTSTRAP = Bootstrap()

# Below this many seeds an interval is shown with a warning: resampling 2 values gives only 3
# possible means, so the "interval" is the two values themselves, not a 95% interval of anything.
MIN_INTERVAL_SEEDS = 3

# The comparison's row of the task's template scored alone, with no prompt trained.
ZERO_SHOT = "zero-shot"


@dataclass(frozen=True)
class ConfidenceInterval:
    """An interval at ``level``; ``resamples`` is None for one not drawn by resampling (a t)."""

    low: float
    high: float
    level: float
    resamples: int | None

    def in_points(self) -> str:
        """Signed percentage points, as every table prints the interval of a difference."""
        return f"[{100 * self.low:+.1f}, {100 * self.high:+.1f}]"


@dataclass(frozen=True)
class SeedMean:
    """A mean over the seeds of one method on one task (the seeds it was taken over)."""

    task: str
    method: str
    seeds: tuple[int, ...]
    mean: float

    @property
    def n(self) -> int:
        return len(self.seeds)


@dataclass(frozen=True)
class MethodSummary(SeedMean):
    """Test accuracy of one method on one task over its seeds (std is None for one seed)."""

    std: float | None


@dataclass(frozen=True)
class PairedDelta(SeedMean):
    """Mean of (method - baseline) test accuracy over the seeds both were run with."""

    baseline: str
    ci: ConfidenceInterval | None
    t_ci: ConfidenceInterval | None


@dataclass(frozen=True)
class WallClockSummary:
    """Wall-clock of the runs of one method (on one task, or on all when ``task`` is None).

    ``llm_share`` is the LLM's seconds over total seconds, summed over the runs that recorded
    their LLM time (so long runs weigh more); None when no run recorded it.
    """

    task: str | None
    method: str
    runs: int
    mean_total_s: float
    llm_share: float | None


def method_sort_key(method: str) -> tuple[int, str]:
    """Baseline first, then the controls, then the catalyst; unknown methods last by name."""
    if method in METHODS:
        return METHODS.index(method), ""
    return len(METHODS), method


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1); the std of a single value is undefined."""
    if not values:
        raise ValueError("mean_std needs at least one value")
    array = np.asarray(values, dtype=float)
    std = float(array.std(ddof=1)) if len(array) > 1 else None
    return float(array.mean()), std


def bootstrap_ci(
    values: Sequence[float], bootstrap: Bootstrap = DEFAULT_BOOTSTRAP
) -> ConfidenceInterval:
    """Percentile bootstrap interval of the mean: resample with replacement, take quantiles."""
    if not values:
        raise ValueError("bootstrap_ci needs at least one value")
    array = np.asarray(values, dtype=float)
    rng = np.random.default_rng(bootstrap.seed)
    picks = rng.integers(0, len(array), size=(bootstrap.resamples, len(array)))
    return _percentiles(array[picks].mean(axis=1), bootstrap)


def _percentiles(means: np.ndarray, bootstrap: Bootstrap) -> ConfidenceInterval:
    """The central ``bootstrap.level`` interval of resampled means."""
    tail = (1.0 - bootstrap.level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return ConfidenceInterval(float(low), float(high), bootstrap.level, bootstrap.resamples)


@lru_cache(maxsize=256)
def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile (p > 0.5) of Student's t with ``df`` >= 1 degrees of freedom (not
    always whole: Welch-Satterthwaite gives fractional ones).

    scipy is not a dependency; mpmath (a dependency of torch's) has the regularised
    incomplete beta function, P(|T| < t) = I_{t^2/(df+t^2)}(1/2, df/2), which is inverted by
    bisection between the normal's quantile (df -> infinity) and the Cauchy's (df = 1): every
    df >= 1 lies between them.
    """
    central = mpmath.mpf(2 * p - 1)
    low, high = mpmath.sqrt(2) * mpmath.erfinv(central), mpmath.tan(mpmath.pi * central / 2)
    root = mpmath.findroot(
        lambda t: mpmath.betainc(0.5, df / 2, 0, t * t / (df + t * t), regularized=True) - central,
        (low, high),
        solver="bisect",
        maxsteps=120,
        verify=False,
    )
    return float(root)


def _t_interval(mean: float, variance: float, df: float, level: float) -> ConfidenceInterval:
    """``mean`` -/+ t(df) * sqrt(``variance``); zero width when the variance is zero."""
    half = t_quantile((1 + level) / 2, df) * variance**0.5 if variance > 0 else 0.0
    return ConfidenceInterval(mean - half, mean + half, level, None)


def paired_t_ci(values: Sequence[float], level: float = 0.95) -> ConfidenceInterval:
    """Paired t-interval of the mean difference: mean -/+ t(n-1) * s / sqrt(n).

    Shown beside the bootstrap because with a handful of seeds the percentile bootstrap is
    too narrow: it uses the normal's 1.96 and the n-divided spread, about 0.63 of the t-interval
    at 5 seeds (1.96 * sqrt(4/5) against t(4) = 2.776), and no interval at all below
    ``MIN_INTERVAL_SEEDS``, where the t-interval is still one (if wide: t(1) = 12.7).
    """
    if len(values) < 2:
        raise ValueError("paired_t_ci needs at least two values")
    array = np.asarray(values, dtype=float)
    variance = float(array.var(ddof=1)) / len(array)
    return _t_interval(float(array.mean()), variance, len(array) - 1, level)


def _overall_t_ci(differences: Sequence[np.ndarray], level: float) -> ConfidenceInterval | None:
    """t-interval of the mean of per-task mean differences (tasks independent, each with its own
    variance): Welch-Satterthwaite degrees of freedom, which lie between the smallest task's
    n - 1 and the sum of them. None when a task has a single seed."""
    if any(len(d) < 2 for d in differences):
        return None
    parts = [float(d.var(ddof=1)) / len(d) for d in differences]
    mean = float(np.mean([d.mean() for d in differences]))
    denominator = sum(v * v / (len(d) - 1) for v, d in zip(parts, differences, strict=True))
    if denominator == 0:  # every task's differences constant: no spread to widen by t
        return ConfidenceInterval(mean, mean, level, None)
    df = sum(parts) ** 2 / denominator
    return _t_interval(mean, sum(parts) / len(parts) ** 2, df, level)


Cells = dict[tuple[str, str], dict[int, RunRecord]]


def _cells(runs: Iterable[RunRecord]) -> Cells:
    """Runs by (task, method) and seed; two runs of the same cell and seed are ambiguous."""
    cells: Cells = defaultdict(dict)
    for run in runs:
        cell = cells[(run.task, run.arm_name)]
        if run.seed in cell:
            other = cell[run.seed]
            raise DataError(
                f"two finished runs of task {run.task!r}, arm {run.arm_name!r}, seed "
                f"{run.seed}: {other.path} (backbone {other.backbone}) and this one "
                f"(backbone {run.backbone})",
                path=run.path,
                fix="move one of them out of the folder, or compare the two folders separately",
            )
        cell[run.seed] = run
    return dict(sorted(cells.items(), key=lambda item: (item[0][0], method_sort_key(item[0][1]))))


def summarize(runs: Iterable[RunRecord]) -> list[MethodSummary]:
    summaries = []
    for (task, method), by_seed in _cells(runs).items():
        seeds = tuple(sorted(by_seed))
        mean, std = mean_std([by_seed[seed].test.accuracy for seed in seeds])
        summaries.append(MethodSummary(task, method, seeds, mean, std))
    return summaries


def zero_shot_summaries(runs: Iterable[RunRecord]) -> list[MethodSummary]:
    """Per task, the zero-shot test accuracy over the seeds whose runs evaluated it (results.json
    ``zero_shot_test``); the arms of one seed share it, so a seed counts once (their mean)."""
    by_task: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        if run.zero_shot_test is not None:
            by_task[run.task][run.seed].append(run.zero_shot_test.accuracy)
    summaries = []
    for task, by_seed in sorted(by_task.items()):
        seeds = tuple(sorted(by_seed))
        mean, std = mean_std([float(np.mean(by_seed[seed])) for seed in seeds])
        summaries.append(MethodSummary(task, ZERO_SHOT, seeds, mean, std))
    return summaries


def _paired(
    cells: Cells, task: str, method: str, baseline: str, bootstrap: Bootstrap
) -> tuple[PairedDelta, np.ndarray] | None:
    """``method`` minus ``baseline`` on ``task`` over the seeds both ran, and the differences;
    None when they share no seed."""
    by_seed, reference = cells[(task, method)], cells.get((task, baseline), {})
    seeds = tuple(sorted(set(by_seed) & set(reference)))
    if not seeds:
        return None
    differences = np.array([by_seed[s].test.accuracy - reference[s].test.accuracy for s in seeds])
    several = len(seeds) > 1
    ci = bootstrap_ci(list(differences), bootstrap) if several else None
    t_ci = paired_t_ci(list(differences), bootstrap.level) if several else None
    mean = float(differences.mean())
    delta = PairedDelta(task, method, seeds, mean, baseline=baseline, ci=ci, t_ci=t_ci)
    return delta, differences


def paired_deltas(
    runs: Iterable[RunRecord],
    *,
    baseline: str = "plain",
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
) -> list[PairedDelta]:
    """Paired differences of every other method against ``baseline``, per task.

    Methods that share no seed with the baseline on a task are left out.
    """
    cells = _cells(runs)
    pairs = [
        _paired(cells, task, method, baseline, bootstrap)
        for task, method in cells
        if method != baseline
    ]
    return [pair[0] for pair in pairs if pair is not None]


@dataclass(frozen=True)
class Contrast:
    """One arm against another, paired by task and seed: per task, and over every task the two
    share (the mean of the per-task means, so each task weighs the same whatever its seeds;
    its bootstrap interval resamples seeds within each task, its t-interval adds the per-task
    variances)."""

    arm: str
    baseline: str
    per_task: tuple[PairedDelta, ...]
    overall: PairedDelta


def contrast(
    runs: Iterable[RunRecord],
    arm: str,
    baseline: str,
    *,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
) -> Contrast | None:
    """``arm`` minus ``baseline``; None when they share no (task, seed)."""
    cells = _cells(runs)
    pairs = [_paired(cells, task, arm, baseline, bootstrap) for task, name in cells if name == arm]
    found = [pair for pair in pairs if pair is not None]
    if not found:
        return None
    rng = np.random.default_rng(bootstrap.seed)
    size = bootstrap.resamples
    resampled = np.mean(
        [d[rng.integers(0, len(d), size=(size, len(d)))].mean(axis=1) for _, d in found], axis=0
    )
    per_task = tuple(delta for delta, _ in found)
    all_seeds = tuple(sorted({s for d in per_task for s in d.seeds}))
    mean = float(np.mean([d.mean for d in per_task]))
    overall = PairedDelta(
        "all",
        arm,
        all_seeds,
        mean,
        baseline=baseline,
        ci=_percentiles(resampled, bootstrap),
        t_ci=_overall_t_ci([d for _, d in found], bootstrap.level),
    )
    return Contrast(arm, baseline, per_task, overall)


def wall_clock_summary(
    runs: Iterable[RunRecord], *, per_task: bool = True
) -> list[WallClockSummary]:
    """Wall-clock per (task, method), or per method over all tasks; runs without timing skipped."""
    groups: dict[tuple[str | None, str], list[WallClock]] = defaultdict(list)
    for run in runs:
        if run.wall_clock is not None:
            groups[(run.task if per_task else None, run.arm_name)].append(run.wall_clock)
    summaries = []
    for (task, method), clocks in sorted(
        groups.items(), key=lambda item: (item[0][0] or "", method_sort_key(item[0][1]))
    ):
        timed = [clock for clock in clocks if clock.llm_s is not None]
        timed_total = sum(clock.total_s for clock in timed)
        share = (
            sum(clock.llm_s or 0.0 for clock in timed) / timed_total if timed_total > 0 else None
        )
        mean_total = float(np.mean([clock.total_s for clock in clocks]))
        summaries.append(WallClockSummary(task, method, len(clocks), mean_total, share))
    return summaries
