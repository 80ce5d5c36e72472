"""``tasks``: the built-in tasks, their label words and where their data is read from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

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
    table = Table("task", "kind", "label words as scored (label)", "data")
    for info in list_tasks(data_dir):
        task = get_task(info.name)
        # Quoted as scored: a causal LM scores " great", whose leading space is part of the token.
        # The word comes first on its line, so a narrow column never wraps it at that space.
        labels = "(the options)"  # a multiple-choice task scores each option's own text
        if task.label_words:
            pairs = zip(task.label_words, task.label_names, strict=True)
            labels = "\n".join(f"{word!r} ({name})" for word, name in pairs)
        table.add_row(info.name, info.kind, labels, info.data.replace(", ", "\n"))
    console.print(table)
    if describe:
        for info in list_tasks(data_dir):
            console.print(Text.assemble((info.name, "bold"), f": {info.description}"))
