"""The ``run``, ``compare`` and ``report`` commands of the command-line interface.

Public API:
    register(app)    adds ``run``, ``compare`` and ``report`` to the typer app

``llm-catalyst run --method catalyst --task sst2 --seed 1`` runs one method on one task and seed
and prints where its run directory is; ``run --resume DIR`` continues a killed or interrupted
run from its last checkpoint. ``compare --tasks sst2,rte --methods plain,catalyst --seeds
1,2,3 --output runs/grid`` runs a grid of cells ``OUTPUT/TASK/METHOD/seedN``, skipping finished
cells and resuming unfinished ones, so an interrupted grid continues when the same command is
given again; it then prints the comparison table (mean +- std, paired deltas against ``plain``)
and writes it as Markdown and CSV. ``compare --workers N`` runs N cells at once on local worker
processes, ``compare --ray ADDRESS`` on a Ray cluster; every cell runs under a lock, so two
grids started on one folder never write the same cell (see ``experiments/workers.py``).
``report DIR`` writes the plots and the HTML page.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

_CSV_HELP = "comma-separated; the option may also be repeated"


def register(app: typer.Typer) -> None:
    # Imported here: cli.py imports this module and calls register() once it is set up.
    from llm_catalyst.cli import friendly_errors

    app.command("run")(friendly_errors(run_command))
    app.command("compare")(friendly_errors(compare_command))
    app.command("report")(friendly_errors(report_command))


ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="run config YAML")]
LLMOption = Annotated[
    Path | None, typer.Option("--llm", help="LLM config YAML (the llm section of a run config)")
]
ModelOption = Annotated[str | None, typer.Option(help="backbone preset, hub id or path")]
ShotsOption = Annotated[int | None, typer.Option(help="train examples per class")]
StepsOption = Annotated[int | None, typer.Option(help="gradient steps (every method)")]
RoundsOption = Annotated[int | None, typer.Option(help="LLM rounds N")]
DataDirOption = Annotated[Path | None, typer.Option(help="benchmark data folder")]
MaxTestOption = Annotated[int | None, typer.Option(help="score only the first N test examples")]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="any config key, e.g. --set loop.selection=best"),
]


def _overrides(
    config: Path | None, llm: Path | None, values: dict[str, Any], sets: list[str] | None
) -> tuple[Path | None, dict[str, Any]]:
    """The YAML path and the dotted overrides of the common options (None values skipped)."""
    from llm_catalyst.config import parse_override
    from llm_catalyst.llm.config import load_llm_config

    overrides = {k: v for k, v in values.items() if v is not None}
    if llm is not None:
        overrides["llm"] = load_llm_config(llm).model_dump(mode="json", exclude_unset=True)
    overrides |= dict(parse_override(item) for item in sets or [])
    return config, overrides


def _consoles() -> tuple[Console, Console]:
    """Results go to stdout, progress and errors to stderr."""
    return (
        Console(soft_wrap=True, highlight=False),
        Console(stderr=True, soft_wrap=True, highlight=False),
    )


def _summary(out: Console, results: dict[str, Any]) -> None:
    test, dev, llm, clock = results["test"], results["dev"], results["llm"], results["wall_clock"]
    out.print(f"run directory: {results['run_dir']}")
    out.print(
        f"{results['method']} on {results['task']} (seed {results['seed']}): test accuracy "
        f"{test['accuracy']:.4f} (n={test['n']}); kept prompt from {results['best_origin']} "
        f"(dev accuracy {dev['accuracy']:.4f}, loss {dev['loss']:.4f})"
    )
    out.print(f"projected prompt: {results['projected_text']!r}")
    out.print(
        f"LLM calls {llm['calls']} ({llm.get('cache_hits', 0)} from cache), skipped rounds "
        f"{llm['skipped_rounds']}; wall-clock {clock['total_s']:.1f} s (gradient "
        f"{clock['gradient_s']:.1f}, scoring {clock['scoring_s']:.1f}, LLM {clock['llm_s']:.1f})"
    )


def run_command(
    config: ConfigOption = None,
    method: Annotated[
        str | None,
        typer.Option(help="plain, random-restart, projection-restart, llm-only or catalyst"),
    ] = None,
    task: Annotated[str | None, typer.Option(help="built-in task name")] = None,
    seed: Annotated[int | None, typer.Option(help="seed for sampling and training")] = None,
    protocol: Annotated[str | None, typer.Option(help="fewshot (default) or paper")] = None,
    llm: LLMOption = None,
    model: ModelOption = None,
    shots: ShotsOption = None,
    steps: StepsOption = None,
    rounds: RoundsOption = None,
    data_dir: DataDirOption = None,
    output_dir: Annotated[Path | None, typer.Option(help="where run directories go")] = None,
    max_test_examples: MaxTestOption = None,
    set_: SetOption = None,
    resume: Annotated[
        Path | None,
        typer.Option(help="continue this run directory from its last checkpoint"),
    ] = None,
) -> None:
    """Run one method on one task and seed (or resume a run); prints the result."""
    from llm_catalyst.catalyst.config import load_run_config
    from llm_catalyst.catalyst.loop import RunInterrupted
    from llm_catalyst.catalyst.run import resume as resume_run
    from llm_catalyst.catalyst.run import run as start_run
    from llm_catalyst.errors import ConfigError

    values = {
        "method": method,
        "protocol": protocol,
        "data.task": task,
        "data.seed": seed,
        "data.shots": shots,
        "data.data_dir": data_dir,
        "backbone.model": model,
        "train.steps": steps,
        "loop.rounds": rounds,
        "output_dir": output_dir,
        "max_test_examples": max_test_examples,
    }
    path, overrides = _overrides(config, llm, values, set_)
    out, err = _consoles()
    try:
        if resume is not None:
            if path is not None or overrides:
                raise ConfigError(
                    "--resume continues a run with the configuration recorded in its "
                    "config.yaml; drop the other options"
                )
            result = resume_run(resume, console=err)
        else:
            result = start_run(load_run_config(path, overrides), console=err)
    except RunInterrupted as stop:
        err.print(str(stop))
        raise typer.Exit(code=130) from None
    if result.is_main:
        _summary(out, result.results.model_dump(mode="json"))


def _split(values: list[str] | None, default: list[str]) -> list[str]:
    items = [part.strip() for value in values or [] for part in value.split(",")]
    return [item for item in items if item] or default


def compare_command(
    tasks: Annotated[list[str], typer.Option(help=f"built-in task names, {_CSV_HELP}")],
    methods: Annotated[
        list[str] | None, typer.Option(help=f"methods (default: all five), {_CSV_HELP}")
    ] = None,
    seeds: Annotated[
        list[str] | None, typer.Option(help=f"seeds (default 1,2,3), {_CSV_HELP}")
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
    from llm_catalyst.catalyst.config import load_run_config
    from llm_catalyst.catalyst.methods import METHODS, get_method
    from llm_catalyst.errors import ConfigError
    from llm_catalyst.experiments.results import collect_runs
    from llm_catalyst.experiments.tables import comparison_table, to_markdown, write_tables
    from llm_catalyst.experiments.workers import Cell, run_cells
    from llm_catalyst.llm.budget import describe_plan

    method_names = _split(methods, list(METHODS))
    unknown = [m for m in method_names if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    try:
        seed_values = [int(s) for s in _split(seeds, ["1", "2", "3"])]
    except ValueError:
        raise ConfigError(f"--seeds must be integers, got {seeds}") from None
    values = {
        "data.shots": shots,
        "data.data_dir": data_dir,
        "backbone.model": model,
        "train.steps": steps,
        "loop.rounds": rounds,
        "max_test_examples": max_test_examples,
    }
    path, overrides = _overrides(config, llm, values, set_)
    out, err = _consoles()
    cells = []
    grid = itertools.product(_split(tasks, []), method_names, seed_values)
    for task, method, seed in dict.fromkeys(grid):  # each cell once, in order
        cell = {**overrides, "data.task": task, "method": method, "data.seed": seed}
        cell["output_dir"] = str(output)
        cells.append(Cell(f"{task}/{method}/seed{seed}", load_run_config(path, cell)))
    todo = [c for c in cells if not (output / c.name / "results.json").is_file()]
    err.print(f"grid: {len(cells)} cell(s), {len(cells) - len(todo)} finished, {len(todo)} to run")
    llm_cells = [c.config for c in cells if get_method(c.config.method).needs_llm]
    if llm_cells:
        first = llm_cells[0]
        plan = describe_plan(
            first.loop.rounds, first.llm.proposer.calls_per_round, first.llm.budget.limits()
        )
        err.print(f"{len(llm_cells)} cell(s) call the LLM; per cell: {plan}")
    outcomes = run_cells(todo, output, workers=workers, ray_address=ray, console=err)
    if any(outcome.status == "interrupted" for outcome in outcomes):
        err.print("give the same compare command again to continue the grid")
        raise typer.Exit(code=130)
    failed = [outcome.name for outcome in outcomes if outcome.status == "failed"]
    finished = collect_runs(output).finished
    if finished:
        table = comparison_table(finished)
        out.print(to_markdown(table))
        markdown_path, csv_path = write_tables(table, output)
        out.print(f"tables: {markdown_path}, {csv_path}")
    if failed:
        err.print(f"{len(failed)} cell(s) failed: {json.dumps(failed)}")
        raise typer.Exit(code=1)


def report_command(
    directory: Annotated[Path, typer.Argument(help="a run directory or a grid folder")],
    out: Annotated[Path | None, typer.Option(help="where to write (default DIR/report)")] = None,
) -> None:
    """Write PNG plots and one self-contained HTML page for a run or a grid."""
    from llm_catalyst.experiments.report import write_report

    console, _ = _consoles()
    console.print(f"report: {write_report(directory, out_dir=out)}")
