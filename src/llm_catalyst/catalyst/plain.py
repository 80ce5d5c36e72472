"""Plain prompt tuning from Python: ``tune`` is ``run`` with method plain, nothing else.

``llm-catalyst tune`` is the same alias on the command line; both write a run's results.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_catalyst.catalyst.config import RunConfig, load_run_config

if TYPE_CHECKING:
    # Types only: the runner (torch) is imported by ``tune``, so ``PLAIN`` and loading a config
    # (``llm-catalyst tune`` and its config errors) load no model code.
    from rich.console import Console

    from llm_catalyst.catalyst.runner import RunResult

# Plain tuning has no LLM rounds: N = 0 leaves every step to one stage whatever train.steps is.
PLAIN: dict[str, Any] = {"method": "plain", "loop.rounds": 0}


def load_tune_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> RunConfig:
    """``load_run_config`` with method plain (the overrides may still set any key)."""
    return load_run_config(None if path is None else Path(path), {**PLAIN, **(overrides or {})})


def tune(config: RunConfig, console: Console | None = None) -> RunResult:
    """Run ``config`` as plain prompt tuning (its method and rounds set so)."""
    from llm_catalyst.catalyst.runner import run

    plain = config.model_copy(
        update={"method": "plain", "loop": config.loop.model_copy(update={"rounds": 0})}
    )
    return run(plain, console=console)
