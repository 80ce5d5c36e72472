"""``compare``: a task x method x seed grid (finished cells skipped), then its table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from llm_catalyst.catalyst import METHODS
from llm_catalyst.commands.options import (
    CSV_HELP,
    ConfigOption,
    DataDirOption,
    LLMOption,
    MaxTestOption,
    ModelOption,
    RoundsOption,
    SetOption,
    ShotsOption,
    StepsOption,
    config_overrides,
    consoles,
    split_list,
)
from llm_catalyst.errors import ConfigError
from llm_catalyst.experiments.grid import grid_cells, llm_plan, unfinished, write_comparison
from llm_catalyst.experiments.workers import run_cells


def compare_command(
    tasks: Annotated[list[str], typer.Option(help=f"built-in task names, {CSV_HELP}")],
    methods: Annotated[
        list[str] | None, typer.Option(help=f"methods (default: all five), {CSV_HELP}")
    ] = None,
    seeds: Annotated[
        list[str] | None, typer.Option(help=f"seeds (default 1,2,3), {CSV_HELP}")
    ] = None,
    output: Annotated[Path, typer.Option(help="the grid's folder")] = Path("runs/compare"),
    config: ConfigOption = None,
    llm: LLMOption = None,
    model: ModelOption = None,
    shots: ShotsOption = None,
    steps: StepsOption = None,
    rounds: RoundsOption = None,
    data_dir: DataDirOption = None,
    max_test_examples: MaxTestOption = None,
    set_: SetOption = None,
    workers: Annotated[
        int, typer.Option(help="cells run at once, each in its own local worker process")
    ] = 1,
    ray: Annotated[
        str | None,
        typer.Option(
            help="run the cells on the Ray cluster at this address ('auto': a local one); "
            "needs pip install 'llm-catalyst[ray]'"
        ),
    ] = None,
) -> None:
    """Run a task x method x seed grid (finished cells are skipped) and print the table."""
    try:
        seed_values = [int(s) for s in split_list(seeds, ["1", "2", "3"])]
    except ValueError:
        raise ConfigError(f"--seeds must be integers, got {seeds}") from None
    options = {
        "model": model,
        "shots": shots,
        "steps": steps,
        "rounds": rounds,
        "data_dir": data_dir,
        "max_test_examples": max_test_examples,
    }
    overrides = config_overrides(options, set_, llm)
    method_names = split_list(methods, list(METHODS))
    cells = grid_cells(output, split_list(tasks, []), method_names, seed_values, config, overrides)
    todo = unfinished(cells, output)
    out, err = consoles()
    err.print(f"grid: {len(cells)} cell(s), {len(cells) - len(todo)} finished, {len(todo)} to run")
    plan = llm_plan(cells)
    if plan is not None:
        err.print(plan)
    outcomes = run_cells(todo, output, workers=workers, ray_address=ray, console=err)
    if any(outcome.status == "interrupted" for outcome in outcomes):
        err.print("give the same compare command again to continue the grid")
        raise typer.Exit(code=130)
    comparison = write_comparison(output)
    if comparison is not None:
        out.print(comparison.markdown)
        out.print(f"tables: {comparison.markdown_path}, {comparison.csv_path}")
    failed = [outcome.name for outcome in outcomes if outcome.status == "failed"]
    if failed:
        err.print(f"{len(failed)} cell(s) failed: {json.dumps(failed)}")
        raise typer.Exit(code=1)
