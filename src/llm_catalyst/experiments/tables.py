"""The comparison table: one row per task and method, in Markdown (to read) and CSV (to analyse).

The Markdown and the HTML report share the formatted cells, so both show the same numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from llm_catalyst.experiments.results import RunRecord
from llm_catalyst.experiments.stats import (
    DEFAULT_BOOTSTRAP,
    Bootstrap,
    Contrast,
    MethodSummary,
    PairedDelta,
    WallClockSummary,
    paired_deltas,
    summarize,
    wall_clock_summary,
)

MARKDOWN_FILE = "comparison.md"
CSV_FILE = "comparison.csv"


@dataclass(frozen=True)
class ComparisonRow:
    summary: MethodSummary
    delta: PairedDelta | None
    wall_clock: WallClockSummary | None


@dataclass(frozen=True)
class ComparisonTable:
    rows: tuple[ComparisonRow, ...]
    wall_clock_per_method: tuple[WallClockSummary, ...]
    baseline: str
    bootstrap: Bootstrap

    @property
    def headers(self) -> tuple[str, ...]:
        return (
            "task",
            "method",
            "seeds",
            "test acc. % (mean ± std)",
            f"Δ vs {self.baseline}, pp [{self.bootstrap.level:.0%} CI]",
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

    def legend(self) -> str:
        return (
            "Test accuracy in %, mean ± sample standard deviation over seeds. "
            f"Δ: mean paired difference to {self.baseline} in percentage points over the seeds "
            f"both methods ran (n shown when fewer than the method's seeds), with a "
            f"{self.bootstrap.level:.0%} percentile bootstrap interval "
            f"({self.bootstrap.resamples} resamples); "
            "no interval for a single pair. Wall-clock: mean per run. "
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
    return f"{100 * delta.mean:+.1f} {delta.ci.in_points()}"


def contrasts_markdown(contrasts: Iterable[Contrast]) -> str:
    """Each pre-registered contrast per task and over all tasks, in percentage points."""
    rows = [
        (f"{c.arm} − {c.baseline}", d.task, str(d.n), _interval(d))
        for c in contrasts
        for d in (*c.per_task, c.overall)
    ]
    if not rows:
        return ""
    headers = ("contrast", "task", "seeds", "Δ test acc., pp [95% CI]")
    legend = (
        "Paired by task and seed. Per task: mean difference over the seeds with a percentile "
        "bootstrap interval; all: the mean of the per-task means, its interval resampling seeds "
        "within each task."
    )
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
    """Summaries, paired deltas and wall-clock of finished runs, joined by (task, method)."""
    runs = list(runs)
    deltas = {
        (d.task, d.method): d for d in paired_deltas(runs, baseline=baseline, bootstrap=bootstrap)
    }
    clocks = {(w.task, w.method): w for w in wall_clock_summary(runs)}
    rows = tuple(
        ComparisonRow(s, deltas.get((s.task, s.method)), clocks.get((s.task, s.method)))
        for s in summarize(runs)
    )
    per_method = tuple(wall_clock_summary(runs, per_task=False))
    return ComparisonTable(rows, per_method, baseline, bootstrap)


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
    return (
        f"{markdown_table(table.headers, table.display_rows())}\n\n{table.legend()}\n\n"
        f"Wall-clock per method (all tasks):\n\n{wall_clock}\n"
    )


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


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
            "n_pairs",
            "ci_level",
            "resamples",
            "mean_wall_clock_s",
            "llm_share",
        )
    )
    for row in table.rows:
        delta, ci, clock = row.delta, row.delta and row.delta.ci, row.wall_clock
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
                "" if delta is None else delta.n,
                table.bootstrap.level,
                table.bootstrap.resamples,
                _number(clock and clock.mean_total_s),
                _number(clock and clock.llm_share),
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
