"""Command-line interface (typer)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Prompt tuning with an LLM in the loop.")
