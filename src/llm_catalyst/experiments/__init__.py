"""Comparing methods over seeds: read run directories, compute statistics, write tables/reports.

Only reads run directories, never trains; imported lazily, so that importing the package does
not load numpy or matplotlib (an example: docs/design.md, "Tables and what the rounds did").
"""

from __future__ import annotations

from llm_catalyst.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "llm_catalyst.experiments.results": (
            "collect_runs",
            "load_run",
            "read_events",
            "RunRecord",
            "RunCollection",
        ),
        "llm_catalyst.experiments.stats": (
            "Bootstrap",
            "summarize",
            "paired_deltas",
            "bootstrap_ci",
            "paired_t_ci",
            "wall_clock_summary",
        ),
        "llm_catalyst.experiments.tables": (
            "comparison_table",
            "to_markdown",
            "to_csv",
            "write_tables",
        ),
        "llm_catalyst.experiments.report": ("write_report",),
        "llm_catalyst.experiments.rounds": ("round_outcomes", "rounds_markdown"),
    },
)
