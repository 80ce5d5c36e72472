"""A task x method x seed grid: its cells, what is left to run, and the comparison it yields.

Each cell's run directory is ``OUTPUT/TASK/METHOD/seedN``; running, resuming and skipping a
cell is ``workers.run_cell``'s job. A cell directory written with other settings, finished or
not, is refused before any cell runs (``cells_to_run``).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llm_catalyst.catalyst import METHODS, load_run_config
from llm_catalyst.catalyst.domain import rounds_of
from llm_catalyst.catalyst.methods import get_method
from llm_catalyst.errors import ConfigError
from llm_catalyst.experiments.results import CONFIG_FILE, RESULTS_FILE, RunRecord, collect_runs
from llm_catalyst.experiments.stats import contrast
from llm_catalyst.experiments.tables import (
    comparison_table,
    contrasts_markdown,
    to_markdown,
    write_tables,
)
from llm_catalyst.experiments.workers import Cell, check_same_config
from llm_catalyst.llm.budget import describe_plan


def _file_task(path: Path) -> str | dict[str, Any] | None:
    """The ``data.task`` a config file names: a task name, a custom task spec, or None."""
    try:
        tree = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None  # load_run_config reports the file's problem with its line
    data = tree.get("data") if isinstance(tree, dict) else None
    task = data.get("task") if isinstance(data, dict) else None
    return task if isinstance(task, str | dict) else None


def _task_name(task: str | dict[str, Any]) -> str:
    return task if isinstance(task, str) else str(task.get("name", "custom"))


def _grid_tasks(
    tasks: Sequence[str], configs: Sequence[Path]
) -> list[tuple[str, Path | None, str | None]]:
    """(name, config file, value of data.task to set) per task: a built-in task is set by name;
    a custom task keeps the spec written in its config file, so one config per custom task
    brings the user's own data into the grid."""
    if len(configs) <= 1:
        config = configs[0] if configs else None
        own = None if config is None else _file_task(config)
        names = list(tasks) or ([_task_name(own)] if own is not None else [])
        if not names:
            raise ConfigError("name the tasks to compare with --tasks, or give a config per task")
        return [
            (name, config, None if own is not None and _task_name(own) == name else name)
            for name in names
        ]
    by_name: dict[str, Path] = {}
    for config in configs:
        own = _file_task(config)
        if own is None:
            raise ConfigError(
                f"{config} names no data.task: with several --config files each one is one "
                "task of the grid"
            )
        by_name[_task_name(own)] = config
    missing = [name for name in tasks if name not in by_name]
    if missing:
        raise ConfigError(f"--tasks {missing} are in none of the configs ({', '.join(by_name)})")
    return [(name, by_name[name], None) for name in tasks or by_name]


def grid_cells(
    output: Path,
    tasks: Sequence[str],
    methods: Sequence[str],
    seeds: Sequence[int],
    configs: Sequence[Path] = (),
    overrides: Mapping[str, Any] | None = None,
) -> list[Cell]:
    """Every (task, method, seed) once, in order, each with its own run configuration."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    cells = []
    for (task, config, value), method, seed in itertools.product(
        _grid_tasks(list(dict.fromkeys(tasks)), configs), dict.fromkeys(methods), seeds
    ):
        cell = {**(overrides or {}), "method": method, "data.seed": seed}
        if value is not None:  # else the config file's own task (a custom spec) stands
            cell["data.task"] = value
        cell["output_dir"] = str(output)
        cells.append(Cell(f"{task}/{method}/seed{seed}", load_run_config(config, cell)))
    return cells


def cells_to_run(cells: Sequence[Cell], output: Path) -> list[Cell]:
    """The cells not finished yet. A cell directory written with other settings is refused
    first, finished or not: skipping a finished one would report its old result as the new
    settings' (a directory without config.yaml yet is being made: its run checks it)."""
    for cell in cells:
        directory = output / cell.name
        if (directory / CONFIG_FILE).is_file():
            check_same_config(directory, cell.config)
    return [c for c in cells if not (output / c.name / RESULTS_FILE).is_file()]


def llm_plan(cells: Sequence[Cell]) -> str | None:
    """How many cells call the LLM and what each may spend, a line per distinct plan (arms of
    an experiment differ in rounds; None when no cell calls the LLM)."""
    plans: Counter[str] = Counter()
    for cell in cells:
        config, method = cell.config, get_method(cell.config.method)
        if method.needs_llm:
            rounds = len(rounds_of(config.loop.rounds, config.loop.init_round and method.trains))
            calls = config.llm.proposer.calls_per_round
            plans[describe_plan(rounds, calls, config.llm.budget)] += 1
    if not plans:
        return None
    return "\n".join(
        f"{count} cell(s) call the LLM; per cell: {plan}" for plan, count in plans.items()
    )


@dataclass(frozen=True)
class Comparison:
    """The tables written, and the finished runs they were made from (for what else a command
    reports on them, without reading every run directory again)."""

    markdown: str
    markdown_path: Path
    csv_path: Path
    runs: tuple[RunRecord, ...]


def write_comparison(
    output: Path, baseline: str = "plain", contrasts: Sequence[tuple[str, str]] = ()
) -> Comparison | None:
    """The table of the grid's finished runs and its contrasts (arm, baseline), written beside
    them (None when none finished)."""
    finished = collect_runs(output).finished
    if not finished:
        return None
    table = comparison_table(finished, baseline=baseline)
    markdown_path, csv_path = write_tables(table, output)
    markdown = to_markdown(table)
    found = [c for arm, other in contrasts if (c := contrast(finished, arm, other)) is not None]
    if found:
        markdown += "\nPre-registered contrasts:\n\n" + contrasts_markdown(found)
        markdown_path.write_text(markdown, encoding="utf-8")
    return Comparison(markdown, markdown_path, csv_path, finished)
