"""Command-line interface: ``llm-catalyst tasks | tune | project | propose``.

Every command turns the library's typed errors into a one-paragraph message and exit code 2,
so a user sees what went wrong and how to fix it, never a traceback for their own mistakes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from llm_catalyst.errors import LLMCatalystError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Prompt tuning where a gradient optimizer and an LLM work together.",
)
console = Console(soft_wrap=True)
error_console = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(command: F) -> F:
    """Print library errors as messages (exit code 2) instead of tracebacks."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except LLMCatalystError as error:
            error_console.print(f"[bold red]error:[/] {error}", markup=True, highlight=False)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


@app.command()
@friendly_errors
def tasks(
    data_dir: Annotated[
        Path | None, typer.Option(help="benchmark data folder (else $LLM_CATALYST_DATA)")
    ] = None,
    describe: Annotated[bool, typer.Option(help="also print each task's description")] = False,
) -> None:
    """List the built-in tasks and where their data would be read from."""
    from llm_catalyst.data.registry import get_task, list_tasks

    table = Table("task", "kind", "labels -> label words", "data")
    for info in list_tasks(data_dir):
        task = get_task(info.name)
        words = task.label_words or ("(options)",) * task.num_classes
        labels = ", ".join(
            f"{n}->{w.strip()!r}" for n, w in zip(task.label_names, words, strict=True)
        )
        table.add_row(info.name, info.kind, labels, info.data.replace(", ", "\n"))
    console.print(table)
    if describe:
        for info in list_tasks(data_dir):
            console.print(f"[bold]{info.name}[/]: {info.description}")


@app.command()
@friendly_errors
def tune(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config")] = None,
    task: Annotated[str | None, typer.Option(help="built-in task name")] = None,
    model: Annotated[str | None, typer.Option(help="backbone preset, hub id or path")] = None,
    shots: Annotated[int | None, typer.Option(help="train examples per class")] = None,
    seed: Annotated[int | None, typer.Option(help="seed for sampling and training")] = None,
    steps: Annotated[int | None, typer.Option(help="gradient steps")] = None,
    lr: Annotated[float | None, typer.Option(help="prompt learning rate")] = None,
    prompt_length: Annotated[int | None, typer.Option(help="soft-prompt slots P")] = None,
    init_text: Annotated[
        str | None, typer.Option(help="initialise the prompt from this text")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="benchmark data folder")] = None,
    output_dir: Annotated[Path | None, typer.Option(help="where run directories go")] = None,
    max_test_examples: Annotated[
        int | None, typer.Option(help="score only the first N test examples")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="any config key, e.g. --set train.warmup_steps=5"),
    ] = None,
) -> None:
    """Train a soft prompt on a task; prints the run directory and the metrics."""
    from llm_catalyst.config import load_tune_config, parse_override
    from llm_catalyst.training.tune import tune as run_tune

    overrides: dict[str, Any] = {
        "data.task": task,
        "data.shots": shots,
        "data.seed": seed,
        "data.data_dir": data_dir,
        "backbone.model": model,
        "train.steps": steps,
        "train.lr": lr,
        "prompt.length": prompt_length,
        "output_dir": output_dir,
        "max_test_examples": max_test_examples,
    }
    if init_text is not None:
        overrides |= {"prompt.init": "text", "prompt.init_text": init_text}
    overrides |= dict(parse_override(item) for item in set_ or [])
    result = run_tune(load_tune_config(config, overrides), console=error_console)
    if not result.is_main:  # another process of a data-parallel run: the main one reports
        return
    console.print(f"run directory: {result.run_dir}")
    if result.zero_shot_test is not None:
        console.print(f"zero-shot test accuracy: {result.zero_shot_test.accuracy:.4f}")
    console.print(
        f"best dev accuracy {result.best_dev.accuracy:.4f} at step {result.best_step}; "
        f"test accuracy {result.test.accuracy:.4f}"
    )
    console.print(f"projected prompt: {result.projected_text!r}", highlight=False)


@app.command()
@friendly_errors
def project(
    artifact: Annotated[Path, typer.Argument(help="an artifact directory (RUN/artifact)")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show a saved prompt's projected text with each slot's token and distance."""
    from llm_catalyst.prompts.artifact import load_prompt

    loaded = load_prompt(artifact)
    projection = loaded.metadata["projection"]
    if as_json:
        console.print_json(json.dumps(projection))
        return
    console.print(f"backbone: {loaded.backbone_name}   slots: {loaded.prompt.length}")
    console.print(f"text: {projection['text']!r}", highlight=False)
    table = Table("slot", "token id", "token", f"{projection['metric']} distance")
    rows = zip(projection["token_ids"], projection["tokens"], projection["distances"], strict=True)
    for slot, (token_id, token, distance) in enumerate(rows):
        table.add_row(str(slot), str(token_id), repr(token), f"{distance:.4f}")
    console.print(table)
    if projection["roundtrip_ok"]:
        console.print("round trip: decode -> encode gives the same token ids")
    else:
        console.print("[yellow]round trip differs:[/] " + "; ".join(projection["mismatches"]))


def _register_subsystem_commands() -> None:
    """The LLM and catalyst subsystems own their commands; the CLI only mounts them."""
    from llm_catalyst.catalyst.commands import register as register_catalyst
    from llm_catalyst.llm.commands import register as register_llm

    register_llm(app)
    register_catalyst(app)


_register_subsystem_commands()
