"""Library errors as one message and exit code 2: a user sees what to fix, not a traceback.

The message is printed as text: it quotes paths and values the user gave, which may hold
brackets that rich markup would drop or fail on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.text import Text

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
            err.print(Text.assemble(("error:", "bold red"), " ", str(error)))
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]
