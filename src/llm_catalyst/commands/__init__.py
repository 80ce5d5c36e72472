"""The ``llm-catalyst`` command line: one typer app over the library's commands.

Each command turns the library's typed errors into one message and exit code 2 (``errors``).
The command modules import the library inside their functions, so ``--help`` and the errors in
the options print at once, without loading torch; the library's log records ("loading
backbone <model>…") go to stderr through a rich handler (``log.py``), so a long load is never
silent; ``--quiet`` leaves only its warnings.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import typer

from llm_catalyst.commands.compare import compare_command
from llm_catalyst.commands.errors import friendly_errors
from llm_catalyst.commands.log import show_library_log
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


def _print_version(requested: bool) -> None:
    """``--version``: the installed distribution's version, read without importing the library."""
    if requested:
        try:
            installed = version("llm-catalyst")
        except PackageNotFoundError:  # a source tree on sys.path, never installed
            installed = "unknown"
        print(f"llm-catalyst {installed}")
        raise typer.Exit()


@app.callback()
def _show_library_log(
    ctx: typer.Context,
    show_version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the installed version and exit.",
    ),
    quiet: bool = typer.Option(
        False,
        "--quiet",
        "-q",
        help="Show only the library's warnings on stderr, not its notes (the model loading, "
        "a run's directory and rounds); progress still shows.",
    ),
) -> None:
    """For the command's run only: a test calling ``app`` leaves the logger as it found it."""
    ctx.call_on_close(show_library_log(quiet))
