"""Comparing methods over seeds: read run directories, compute statistics, write tables/reports.

Only reads run directories, never trains; imported lazily, so that importing the package does
not load numpy or matplotlib (an example: docs/design.md, "Tables and what the rounds did").
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "collect_runs": "llm_catalyst.experiments.results",
    "load_run": "llm_catalyst.experiments.results",
    "read_events": "llm_catalyst.experiments.results",
    "RunRecord": "llm_catalyst.experiments.results",
    "RunCollection": "llm_catalyst.experiments.results",
    "summarize": "llm_catalyst.experiments.stats",
    "paired_deltas": "llm_catalyst.experiments.stats",
    "bootstrap_ci": "llm_catalyst.experiments.stats",
    "wall_clock_summary": "llm_catalyst.experiments.stats",
    "comparison_table": "llm_catalyst.experiments.tables",
    "to_markdown": "llm_catalyst.experiments.tables",
    "to_csv": "llm_catalyst.experiments.tables",
    "write_tables": "llm_catalyst.experiments.tables",
    "write_report": "llm_catalyst.experiments.report",
    "round_outcomes": "llm_catalyst.experiments.rounds",
    "rounds_markdown": "llm_catalyst.experiments.rounds",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'llm_catalyst.experiments' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
