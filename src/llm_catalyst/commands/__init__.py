"""The ``llm-catalyst`` command line: one typer app over the library's commands.

Each command turns the library's typed errors into one message and exit code 2 (``errors``).
"""

from __future__ import annotations

import typer

from llm_catalyst.commands.compare import compare_command
from llm_catalyst.commands.errors import friendly_errors
from llm_catalyst.commands.project import project_command
from llm_catalyst.commands.propose import propose_command
from llm_catalyst.commands.report import report_command
from llm_catalyst.commands.run import run_command, tune_command
from llm_catalyst.commands.sweep import sweep_command
from llm_catalyst.commands.tasks import tasks_command

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Prompt tuning where a gradient optimizer and an LLM work together.",
)
COMMANDS = {
    "tasks": tasks_command,
    "tune": tune_command,
    "run": run_command,
    "compare": compare_command,
    "sweep": sweep_command,
    "report": report_command,
    "project": project_command,
    "propose": propose_command,
}
for name, command in COMMANDS.items():
    app.command(name)(friendly_errors(command))
