"""``project``: a saved prompt's projected text, slot by slot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from llm_catalyst.commands.options import consoles


def project_command(
    artifact: Annotated[Path, typer.Argument(help="an artifact directory (RUN/artifact)")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show a saved prompt's projected text with each slot's token and distance."""
    from llm_catalyst.prompts.artifact import load_prompt  # torch: imported when needed

    console, _ = consoles()
    loaded = load_prompt(artifact)
    projection = loaded.metadata["projection"]
    if as_json:
        console.print_json(json.dumps(projection))
        return
    console.print(f"backbone: {loaded.backbone_name}   slots: {loaded.prompt.length}")
    console.print(f"text: {projection['text']!r}")
    table = Table("slot", "token id", "token", f"{projection['metric']} distance")
    rows = zip(projection["token_ids"], projection["tokens"], projection["distances"], strict=True)
    for slot, (token_id, token, distance) in enumerate(rows):
        table.add_row(str(slot), str(token_id), repr(token), f"{distance:.4f}")
    console.print(table)
    if projection["roundtrip_ok"]:
        console.print("round trip: decode -> encode gives the same token ids")
    else:
        mismatches = "; ".join(projection["mismatches"])
        console.print(Text.assemble(("round trip differs:", "yellow"), f" {mismatches}"))
