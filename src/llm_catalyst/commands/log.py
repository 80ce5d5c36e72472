"""What the command line shows of the library's log: one rich handler on stderr, for the length
of one command.

The library logs through the ``llm_catalyst`` logger and prints nothing itself (its package
logger holds only a NullHandler, so a host application decides where records go); a command
shows them at INFO, so a long load is never silent, or only the warnings with ``--quiet``.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import traceback
from collections.abc import Callable

from rich.console import Console
from rich.logging import RichHandler

LIBRARY_LOGGER = "llm_catalyst"


class _StderrNow(io.TextIOBase):
    """``sys.stderr`` as it is at each write. A test runner replaces it, and so does a run's
    live progress bar while it is drawn, with a proxy that prints above the bar: a console
    given ``stderr=True`` would see through that proxy and write under the bar, where its
    next redraw splits or erases the line."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()

    def fileno(self) -> int:
        return sys.stderr.fileno()


class _NoTraceback(logging.Formatter):
    """The message, and for a record that carries an exception its type and message alone: the
    command line reports an error in one line (commands/errors.py), never a library's
    traceback."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info is not None and record.exc_info[1] is not None:
            exception = traceback.format_exception_only(record.exc_info[1])[-1].strip()
            message += f" ({exception})"
        return message


def show_library_log(quiet: bool = False) -> Callable[[], None]:
    """Show the library's records on stderr (INFO and up; ``quiet``: WARNING and up) until the
    returned function is called, which puts the logger back as it was: a test or a host
    application that calls the app keeps its own logging."""
    handler = RichHandler(
        console=Console(file=_StderrNow()),
        markup=False,  # messages quote paths and texts that may hold brackets
        rich_tracebacks=False,
        show_path=False,
        log_time_format="[%X]",  # the time of day: a command's records share their date
    )
    handler.setFormatter(_NoTraceback())
    logger = logging.getLogger(LIBRARY_LOGGER)
    previous = logger.level
    logger.setLevel(logging.WARNING if quiet or not _first_process() else logging.INFO)
    logger.addHandler(handler)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous)

    return restore


def _first_process() -> bool:
    """False in the other processes of a multi-process launch (torchrun and ``accelerate
    launch`` set RANK): their notes (a model loading) would repeat the first process's, so they
    show only warnings. A run's own messages are logged by its main process alone
    (catalyst/runner.py)."""
    return os.environ.get("RANK", "0") == "0"
