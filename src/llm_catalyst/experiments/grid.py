"""A task x method x seed grid: its cells, what is left to run, and the comparison it yields.

Each cell's run directory is ``OUTPUT/TASK/METHOD/seedN``; running, resuming and skipping a
cell (and refusing one written with other settings) is ``workers.run_cell``'s job.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_catalyst.catalyst import METHODS, load_run_config
from llm_catalyst.catalyst.methods import get_method
from llm_catalyst.errors import ConfigError
from llm_catalyst.experiments.results import RESULTS_FILE, collect_runs
from llm_catalyst.experiments.tables import comparison_table, to_markdown, write_tables
from llm_catalyst.experiments.workers import Cell
from llm_catalyst.llm.budget import describe_plan


def grid_cells(
    output: Path,
    tasks: Sequence[str],
    methods: Sequence[str],
    seeds: Sequence[int],
    config: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> list[Cell]:
    """Every (task, method, seed) once, in order, each with its own run configuration."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    cells = []
    for task, method, seed in dict.fromkeys(itertools.product(tasks, methods, seeds)):
        cell = {**(overrides or {}), "data.task": task, "method": method, "data.seed": seed}
        cell["output_dir"] = str(output)
        cells.append(Cell(f"{task}/{method}/seed{seed}", load_run_config(config, cell)))
    return cells


def unfinished(cells: Sequence[Cell], output: Path) -> list[Cell]:
    return [c for c in cells if not (output / c.name / RESULTS_FILE).is_file()]


def llm_plan(cells: Sequence[Cell]) -> str | None:
    """How many cells call the LLM and what each may spend (None when none does)."""
    llm_cells = [c.config for c in cells if get_method(c.config.method).needs_llm]
    if not llm_cells:
        return None
    first = llm_cells[0]
    plan = describe_plan(
        first.loop.rounds, first.llm.proposer.calls_per_round, first.llm.budget.limits()
    )
    return f"{len(llm_cells)} cell(s) call the LLM; per cell: {plan}"


@dataclass(frozen=True)
class Comparison:
    markdown: str
    markdown_path: Path
    csv_path: Path


def write_comparison(output: Path, baseline: str = "plain") -> Comparison | None:
    """The table of the grid's finished runs, written beside them (None when none finished)."""
    finished = collect_runs(output).finished
    if not finished:
        return None
    table = comparison_table(finished, baseline=baseline)
    markdown_path, csv_path = write_tables(table, output)
    return Comparison(to_markdown(table), markdown_path, csv_path)
