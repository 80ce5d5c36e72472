"""``report``: PNG plots and one self-contained HTML page for a run or a grid."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llm_catalyst.commands.options import consoles


def report_command(
    directory: Annotated[Path, typer.Argument(help="a run directory or a grid folder")],
    out: Annotated[Path | None, typer.Option(help="where to write (default DIR/report)")] = None,
) -> None:
    """Write PNG plots and one self-contained HTML page for a run or a grid."""
    from llm_catalyst.experiments.report import write_report  # matplotlib: when needed
    from llm_catalyst.rundir import require_folder

    if out is not None:
        require_folder(out, "--out")
    console, _ = consoles()
    console.print(f"report: {write_report(directory, out_dir=out)}")
