"""Library errors as one message and exit code 2: a user sees what to fix, not a traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from llm_catalyst.commands.options import consoles
from llm_catalyst.errors import LLMCatalystError

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(command: F) -> F:
    """Print library errors as messages (exit code 2) instead of tracebacks."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except LLMCatalystError as error:
            _, err = consoles()
            err.print(f"[bold red]error:[/] {error}", markup=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]
