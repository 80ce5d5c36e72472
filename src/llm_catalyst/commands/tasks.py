"""``tasks``: the built-in tasks, their label words and where their data is read from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from llm_catalyst.commands.options import consoles
from llm_catalyst.data.registry import get_task, list_tasks


def tasks_command(
    data_dir: Annotated[
        Path | None, typer.Option(help="benchmark data folder (else $LLM_CATALYST_DATA)")
    ] = None,
    describe: Annotated[bool, typer.Option(help="also print each task's description")] = False,
) -> None:
    """List the built-in tasks and where their data would be read from."""
    console, _ = consoles()
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
