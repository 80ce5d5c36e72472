"""The comparison table: one row per task and method, in Markdown (to read) and CSV (to analyse).

The Markdown and the HTML report share the formatted cells and the notes under the table (an
interval from too few seeds, the examples scored, the LLM answers replayed from the cache), so
both show the same numbers and the same caveats.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from llm_catalyst.experiments.races import (
    RACE_HEADERS,
    RACE_LEGEND,
    RaceSummary,
    race_rows,
    race_summaries,
)
from llm_catalyst.experiments.results import RunRecord
from llm_catalyst.experiments.stats import (
    DEFAULT_BOOTSTRAP,
    MIN_INTERVAL_SEEDS,
    ZERO_SHOT,
    Bootstrap,
    Contrast,
    MethodSummary,
    PairedDelta,
    WallClockSummary,
    paired_deltas,
    summarize,
    wall_clock_summary,
    zero_shot_summaries,
)

MARKDOWN_FILE = "comparison.md"
CSV_FILE = "comparison.csv"
# Marks an interval drawn from fewer than MIN_INTERVAL_SEEDS seeds; a note says why.
FEW_SEEDS = "†"
HELD_OUT = "held-out"


@dataclass(frozen=True)
class RowCounts:
    """What the runs of a row were scored on (each distinct number of test and dev examples) and
    how their LLM answered: fresh calls and answers replayed from the response cache (None when
    no run recorded the two apart, as results.json did before ``fresh_calls``)."""

    test_n: tuple[int, ...] = ()
    dev_n: tuple[int, ...] = ()
    fresh_calls: int | None = None
    cache_hits: int | None = None


@dataclass(frozen=True)
class ComparisonRow:
    summary: MethodSummary
    delta: PairedDelta | None
    wall_clock: WallClockSummary | None
    counts: RowCounts


@dataclass(frozen=True)
class ComparisonTable:
    """The rows, and beside them the wall-clock per method and the start races per arm (none
    where no run raced), which the Markdown and the report show under the table. ``scored_on``:
    ``test``, or ``held-out`` when every run scored held-out train-pool examples (protocol
    validation: a sweep or an ablation), which must not read as a test result."""

    rows: tuple[ComparisonRow, ...]
    wall_clock_per_method: tuple[WallClockSummary, ...]
    baseline: str
    bootstrap: Bootstrap
    races: tuple[RaceSummary, ...] = ()
    scored_on: str = "test"

    @property
    def headers(self) -> tuple[str, ...]:
        return (
            "task",
            "method",
            "seeds",
            f"{self.scored_on} acc. % (mean ± std)",
            f"Δ vs {self.baseline}, pp [{self.bootstrap.level:.0%} CI, bootstrap]",
            f"{self.bootstrap.level:.0%} CI, paired t",
            "wall-clock / run",
            "LLM share",
        )

    def display_rows(self) -> list[tuple[str, ...]]:
        duration = duration_format(
            row.wall_clock.mean_total_s for row in self.rows if row.wall_clock is not None
        )
        return [
            (
                row.summary.task,
                row.summary.method,
                str(row.summary.n),
                _mean_std(row.summary),
                _delta(row, self.baseline),
                _t_interval(row.delta),
                "—" if row.wall_clock is None else duration(row.wall_clock.mean_total_s),
                _share(row.wall_clock),
            )
            for row in self.rows
        ]

    wall_clock_headers = ("method", "runs", "wall-clock / run", "LLM share")

    def wall_clock_rows(self) -> list[tuple[str, ...]]:
        duration = duration_format(w.mean_total_s for w in self.wall_clock_per_method)
        return [
            (w.method, str(w.runs), duration(w.mean_total_s), _share(w))
            for w in self.wall_clock_per_method
        ]

    def notes(self) -> list[str]:
        """What the numbers rest on, each note only where it applies (the zero-shot row, an
        interval from too few seeds, answers replayed from the cache) and the examples scored."""
        notes = []
        if any(row.summary.method == ZERO_SHOT for row in self.rows):
            notes.append(
                f"{ZERO_SHOT}: the task's template alone (no prompt trained), scored on the same "
                "test examples; every arm of a seed shares it."
            )
        few = [
            f"{row.summary.task} {row.summary.method}: {row.delta.n} seeds"
            for row in self.rows
            if row.delta is not None and _too_few(row.delta)
        ]
        if few:
            notes.append(_few_seeds_note(few))
        notes.append(_examples_note(self.rows, self.scored_on))
        replayed = _replayed_note(self.rows)
        if replayed:
            notes.append(replayed)
        return notes

    def legend(self) -> str:
        return (
            f"{self.scored_on.capitalize()} accuracy in %, mean ± sample standard deviation "
            "over seeds"
            + (
                " (held-out: examples of the train pool that no run trained or chose on, protocol "
                "validation; not the test split). "
                if self.scored_on == HELD_OUT
                else ". "
            )
            + f"Δ: mean paired difference to {self.baseline} in percentage points over the seeds "
            f"both methods ran (n shown when fewer than the method's seeds), with a "
            f"{self.bootstrap.level:.0%} percentile bootstrap interval "
            f"({self.bootstrap.resamples} resamples); "
            "no interval for a single pair. "
            f"{self.bootstrap.level:.0%} CI, paired t: mean ± t(n−1)·s/√n over the same pairs; "
            "with few seeds the bootstrap interval is the narrower (about 0.63 as wide at 5 "
            "seeds) because it ignores that s itself is estimated. Wall-clock: mean per run. "
            "LLM share: LLM seconds / total seconds over the runs that recorded them."
        )


def _unit(seconds: float) -> tuple[float, str]:
    """Seconds per unit and the pattern: seconds under 2 min, minutes under 2 h, then hours."""
    if seconds < 120:
        return 1.0, "{:.1f} s"
    if seconds < 7200:
        return 60.0, "{:.1f} min"
    return 3600.0, "{:.2f} h"


def format_duration(seconds: float) -> str:
    """One duration on its own (a report's cost lines), in the unit that reads best for it."""
    scale, pattern = _unit(seconds)
    return pattern.format(seconds / scale)


def duration_format(column: Iterable[float]) -> Callable[[float], str]:
    """A formatter for a table column: every cell in the unit its largest value reads best in,
    so "116.9 s" never sits beside "2.0 min" and the column compares at a glance."""
    scale, pattern = _unit(max(column, default=0.0))
    return lambda seconds: pattern.format(seconds / scale)


def _mean_std(summary: MethodSummary) -> str:
    if summary.std is None:
        return f"{100 * summary.mean:.1f}"
    return f"{100 * summary.mean:.1f} ± {100 * summary.std:.1f}"


def _delta(row: ComparisonRow, baseline: str) -> str:
    if row.summary.method == baseline:
        return "(baseline)"
    delta = row.delta
    if delta is None:
        return "—"
    text = _interval(delta)
    if delta.n != row.summary.n:
        text += f" (n={delta.n})"
    return text


def _interval(delta: PairedDelta) -> str:
    if delta.ci is None:
        return f"{100 * delta.mean:+.1f}"
    return f"{100 * delta.mean:+.1f} {delta.ci.in_points()}{FEW_SEEDS if _too_few(delta) else ''}"


def _t_interval(delta: PairedDelta | None) -> str:
    return "—" if delta is None or delta.t_ci is None else delta.t_ci.in_points()


def _too_few(delta: PairedDelta) -> bool:
    return delta.ci is not None and delta.n < MIN_INTERVAL_SEEDS


def _few_seeds_note(where: Iterable[str]) -> str:
    return (
        f"{FEW_SEEDS} an interval from fewer than {MIN_INTERVAL_SEEDS} seeds "
        f"({'; '.join(where)}): resampling so few values gives a handful of possible means, so "
        f"it is no confidence interval; run {MIN_INTERVAL_SEEDS} seeds or more before reading it "
        "(the paired t-interval beside it is one, and its width shows how little so few seeds say)."
    )


def _sizes(values: Iterable[int]) -> str:
    return " or ".join(map(str, sorted(set(values))))


def _examples_note(rows: Iterable[ComparisonRow], scored_on: str) -> str:
    """The test (or held-out) and dev examples each task's runs were scored on."""
    test: dict[str, set[int]] = defaultdict(set)
    dev: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        test[row.summary.task].update(row.counts.test_n)
        dev[row.summary.task].update(row.counts.dev_n)
    parts = [
        f"{task} {_sizes(test[task])} {scored_on}"
        + (f", {_sizes(dev[task])} dev" if dev[task] else "")
        for task in test
    ]
    return f"Examples scored: {'; '.join(parts)}."


def _replayed_note(rows: Iterable[ComparisonRow]) -> str:
    """Per method over all tasks, the LLM answers replayed from the response cache; empty when
    none was."""
    answers: dict[str, list[int]] = {}
    for row in rows:
        fresh, cached = row.counts.fresh_calls, row.counts.cache_hits
        if fresh is not None and cached is not None:
            total = answers.setdefault(row.summary.method, [0, 0])
            total[0] += cached
            total[1] += fresh + cached
    replayed = [
        f"{method} {cached} of {all_}" for method, (cached, all_) in answers.items() if cached
    ]
    if not replayed:
        return ""
    return (
        f"LLM answers replayed from the response cache: {'; '.join(replayed)}. A replayed "
        "answer takes no LLM time, so wall-clock and LLM share understate a run that asks afresh."
    )


def contrasts_markdown(contrasts: Iterable[Contrast]) -> str:
    """Each pre-registered contrast per task and over all tasks, in percentage points."""
    rows = [
        (f"{c.arm} − {c.baseline}", d.task, str(d.n), _interval(d), _t_interval(d))
        for c in contrasts
        for d in (*c.per_task, c.overall)
    ]
    if not rows:
        return ""
    headers = (
        "contrast",
        "task",
        "seeds",
        "Δ test acc., pp [95% CI, bootstrap]",
        "95% CI, paired t",
    )
    legend = (
        "Paired by task and seed. Per task: mean difference over the seeds with a percentile "
        "bootstrap interval and a paired t-interval (t with n−1 degrees of freedom); all: the "
        "mean of the per-task means, its bootstrap interval resampling seeds within each task, "
        "its t-interval summing the per-task variances (Welch–Satterthwaite degrees of freedom; "
        "none when a task has one seed)."
    )
    few = [
        f"{c.arm} − {c.baseline} on {d.task}: {d.n} seeds"
        for c in contrasts
        for d in (*c.per_task, c.overall)
        if _too_few(d)
    ]
    if few:
        legend += f"\n\n{_few_seeds_note(few)}"
    return f"{markdown_table(headers, rows)}\n\n{legend}\n"


def _share(wall_clock: WallClockSummary | None) -> str:
    if wall_clock is None or wall_clock.llm_share is None:
        return "—"
    return f"{wall_clock.llm_share:.0%}"


def comparison_table(
    runs: Iterable[RunRecord],
    *,
    baseline: str = "plain",
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
) -> ComparisonTable:
    """Summaries, paired deltas and wall-clock of finished runs, joined by (task, method); a
    task's zero-shot row, where its runs evaluated it, comes first."""
    runs = list(runs)
    deltas = {
        (d.task, d.method): d for d in paired_deltas(runs, baseline=baseline, bootstrap=bootstrap)
    }
    clocks = {(w.task, w.method): w for w in wall_clock_summary(runs)}
    zero_shot = {s.task: s for s in zero_shot_summaries(runs)}
    rows: list[ComparisonRow] = []
    for s in summarize(runs):
        if s.task in zero_shot:
            counts = _zero_shot_counts([run for run in runs if run.task == s.task])
            rows.append(ComparisonRow(zero_shot.pop(s.task), None, None, counts))
        key = (s.task, s.method)
        cell = [run for run in runs if (run.task, run.arm_name) == key]
        rows.append(ComparisonRow(s, deltas.get(key), clocks.get(key), _counts(cell)))
    per_method = tuple(wall_clock_summary(runs, per_task=False))
    held_out = bool(runs) and all(run.protocol == "validation" for run in runs)
    return ComparisonTable(
        tuple(rows),
        per_method,
        baseline,
        bootstrap,
        race_summaries(runs),
        HELD_OUT if held_out else "test",
    )


def _counts(runs: Sequence[RunRecord]) -> RowCounts:
    """The examples a cell's runs scored, and its LLM answers over the runs that recorded fresh
    calls and cache hits apart."""
    split = [
        run.llm
        for run in runs
        if run.llm is not None and run.llm.fresh_calls + run.llm.cache_hits == run.llm.calls
    ]
    return RowCounts(
        test_n=tuple(sorted({run.test.n for run in runs})),
        dev_n=tuple(sorted({run.dev.n for run in runs if run.dev is not None})),
        fresh_calls=sum(usage.fresh_calls for usage in split) if split else None,
        cache_hits=sum(usage.cache_hits for usage in split) if split else None,
    )


def _zero_shot_counts(runs: Sequence[RunRecord]) -> RowCounts:
    return RowCounts(
        test_n=tuple(sorted({r.zero_shot_test.n for r in runs if r.zero_shot_test is not None}))
    )


def markdown_table(headers: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    headers = list(headers)
    lines = [line(headers), "|" + "---|" * len(headers)]
    lines.extend(line(row) for row in rows)
    return "\n".join(lines)


def to_markdown(table: ComparisonTable) -> str:
    if not table.rows:
        return "No finished runs.\n"
    wall_clock = markdown_table(table.wall_clock_headers, table.wall_clock_rows())
    notes = "".join(f"{note}\n\n" for note in table.notes())
    races = ""
    if table.races:
        races = (
            f"\nStart race per arm:\n\n{markdown_table(RACE_HEADERS, race_rows(table.races))}"
            f"\n\n{RACE_LEGEND}\n"
        )
    return (
        f"{markdown_table(table.headers, table.display_rows())}\n\n{table.legend()}\n\n"
        f"{notes}Wall-clock per method (all tasks):\n\n{wall_clock}\n{races}"
    )


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


def _count(value: int | None) -> str:
    return "" if value is None else str(value)


def to_csv(table: ComparisonTable) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        (
            "task",
            "method",
            "n_seeds",
            "seeds",
            "mean_accuracy",
            "std_accuracy",
            f"delta_vs_{table.baseline}",
            "ci_low",
            "ci_high",
            "t_ci_low",
            "t_ci_high",
            "n_pairs",
            "ci_level",
            "resamples",
            "mean_wall_clock_s",
            "llm_share",
            "test_n",
            "dev_n",
            "llm_fresh_calls",
            "llm_cache_hits",
        )
    )
    for row in table.rows:
        delta, ci, clock = row.delta, row.delta and row.delta.ci, row.wall_clock
        t_ci = delta and delta.t_ci
        writer.writerow(
            (
                row.summary.task,
                row.summary.method,
                row.summary.n,
                " ".join(map(str, row.summary.seeds)),
                _number(row.summary.mean),
                _number(row.summary.std),
                _number(delta and delta.mean),
                _number(ci and ci.low),
                _number(ci and ci.high),
                _number(t_ci and t_ci.low),
                _number(t_ci and t_ci.high),
                "" if delta is None else delta.n,
                table.bootstrap.level,
                table.bootstrap.resamples,
                _number(clock and clock.mean_total_s),
                _number(clock and clock.llm_share),
                " ".join(map(str, row.counts.test_n)),
                " ".join(map(str, row.counts.dev_n)),
                _count(row.counts.fresh_calls),
                _count(row.counts.cache_hits),
            )
        )
    return buffer.getvalue()


def write_tables(table: ComparisonTable, directory: Path) -> tuple[Path, Path]:
    """Write ``comparison.md`` and ``comparison.csv`` into ``directory``; returns both paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    markdown_path, csv_path = directory / MARKDOWN_FILE, directory / CSV_FILE
    markdown_path.write_text(to_markdown(table), encoding="utf-8")
    csv_path.write_text(to_csv(table), encoding="utf-8")
    return markdown_path, csv_path
