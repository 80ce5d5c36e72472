"""``compare``: a task x method x seed grid (finished cells skipped), then its table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from llm_catalyst.commands.options import (
    CSV_HELP,
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

if TYPE_CHECKING:
    from llm_catalyst.experiments.experiment import AblationConfig
    from llm_catalyst.experiments.grid import Comparison
    from llm_catalyst.experiments.workers import Cell, CellOutcome

# The library is imported inside the functions, where it is first needed: --help and the
# errors found in the options print without loading torch (seconds).

ExperimentOption = Annotated[
    Path | None,
    typer.Option(
        help="an experiment file (run settings, tasks, arms, seeds); --tasks, --methods and "
        "--seeds then pick among its tasks, arms and seeds"
    ),
]
WorkersOption = Annotated[
    int, typer.Option(help="cells run at once, each in its own local worker process")
]


def parse_seeds(seeds: list[str] | None) -> list[int] | None:
    try:
        return [int(s) for s in split_list(seeds, [])] or None
    except ValueError:
        raise ConfigError(f"--seeds must be integers, got {seeds}") from None


def run_grid(
    cells: list[Cell], output: Path, workers: int, ray: str | None = None
) -> list[CellOutcome]:
    """Run the unfinished cells, saying what is left and what the LLM may spend; exit 130 when
    interrupted (the same command continues)."""
    from llm_catalyst.experiments.grid import cells_to_run, llm_plan
    from llm_catalyst.experiments.workers import run_cells

    todo = cells_to_run(cells, output)
    _, err = consoles()
    err.print(f"grid: {len(cells)} cell(s), {len(cells) - len(todo)} finished, {len(todo)} to run")
    plan = llm_plan(cells)
    if plan is not None:
        err.print(plan)
    outcomes = run_cells(todo, output, workers=workers, ray_address=ray, console=err)
    if any(outcome.status == "interrupted" for outcome in outcomes):
        err.print("give the same command again to continue the grid")
        raise typer.Exit(code=130)
    return outcomes


def fail_on_failed(outcomes: list[CellOutcome]) -> None:
    failed = [outcome.name for outcome in outcomes if outcome.status == "failed"]
    if failed:
        consoles()[1].print(f"{len(failed)} cell(s) failed: {json.dumps(failed)}")
        raise typer.Exit(code=1)


def compare_command(
    tasks: Annotated[
        list[str] | None,
        typer.Option(help=f"task names (built-in, or an experiment file's), {CSV_HELP}"),
    ] = None,
    methods: Annotated[
        list[str] | None,
        typer.Option(help=f"methods, or an experiment file's arms (default: all), {CSV_HELP}"),
    ] = None,
    seeds: Annotated[
        list[str] | None,
        typer.Option(help=f"seeds (default 1,2,3 or the experiment file's), {CSV_HELP}"),
    ] = None,
    output: Annotated[Path, typer.Option(help="the grid's folder")] = Path("runs/compare"),
    experiment: ExperimentOption = None,
    ablation: Annotated[
        bool,
        typer.Option(
            help="run the experiment file's ablation (scored on held-out train-pool examples)"
        ),
    ] = False,
    config: Annotated[
        list[Path] | None,
        typer.Option(
            "--config",
            "-c",
            help="YAML run config; repeat it to compare several tasks, one config per task "
            "(a config whose data.task is a custom task spec brings that task)",
        ),
    ] = None,
    llm: LLMOption = None,
    model: ModelOption = None,
    shots: ShotsOption = None,
    steps: StepsOption = None,
    rounds: RoundsOption = None,
    data_dir: DataDirOption = None,
    max_test_examples: MaxTestOption = None,
    set_: SetOption = None,
    workers: WorkersOption = 1,
    ray: Annotated[
        str | None,
        typer.Option(
            help="run the cells on the Ray cluster at this address ('auto': a local one); "
            + escape("needs pip install 'llm-catalyst[ray]'")  # typer reads help as markup
        ),
    ] = None,
) -> None:
    """Run a task x method x seed grid, or an experiment file's task x arm x seed grid
    (finished cells are skipped), and print the table."""
    from llm_catalyst.rundir import require_folder

    require_folder(output, "--output")
    seed_values = parse_seeds(seeds)
    options = {
        "model": model,
        "shots": shots,
        "steps": steps,
        "rounds": rounds,
        "data_dir": data_dir,
        "max_test_examples": max_test_examples,
    }
    overrides = config_overrides(options, set_, llm)
    task_names = split_list(tasks, [])
    ablation_config = None
    if experiment is not None:
        if config:
            raise ConfigError("give --experiment or --config, not both: the file holds the run")
        from llm_catalyst.experiments.experiment import Experiment

        loaded = Experiment.load(experiment)
        if ablation:
            ablation_config = loaded.config.ablation
            cells = loaded.ablation_cells(output, split_list(methods, []), overrides)
            baseline = cells[0].config.arm or cells[0].config.method
            contrasts = []
        else:
            cells = loaded.cells(
                output, task_names, split_list(methods, []), seed_values, overrides
            )
            baseline = loaded.config.baseline
            contrasts = loaded.config.contrasts
    else:
        if ablation:
            raise ConfigError("--ablation runs an experiment file's ablation: give --experiment")
        from llm_catalyst.catalyst.methods import METHODS
        from llm_catalyst.experiments.grid import grid_cells

        method_names = split_list(methods, list(METHODS))
        cells = grid_cells(
            output, task_names, method_names, seed_values or [1, 2, 3], config or [], overrides
        )
        baseline = "plain"
        contrasts = []
    outcomes = run_grid(cells, output, workers, ray)
    from llm_catalyst.experiments.grid import write_comparison

    out = consoles()[0]
    comparison = write_comparison(output, baseline, contrasts)
    if comparison is not None:
        out.print(comparison.markdown)
        out.print(f"tables: {comparison.markdown_path}, {comparison.csv_path}")
        if ablation_config is not None:
            _print_ablation_choice(out, comparison, output, ablation_config)
    fail_on_failed(outcomes)


def _print_ablation_choice(
    out: Console, comparison: Comparison, output: Path, ablation: AblationConfig
) -> None:
    """The pre-registered rule's verdict on the variants finished so far, kept in ablation.json."""
    from llm_catalyst.experiments.ablation import choice_markdown, choose_variant, write_choice

    choice = choose_variant(comparison.runs, ablation)
    if choice is not None:
        out.print(choice_markdown(choice))
        out.print(f"choice: {write_choice(output, choice)}")
