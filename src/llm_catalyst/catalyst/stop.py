"""Stopping a run cleanly: Ctrl-C asks, the loop stops at its next boundary after a checkpoint."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any

from llm_catalyst.distributed import Distributed


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run after writing a checkpoint; ``run --resume DIR`` continues it."""


class StopRequest:
    """Ctrl-C (SIGINT) handling for a run: the first press asks the loop to stop at the next
    step boundary, after writing a checkpoint; a second press aborts at once.

    Used as a context manager; outside the main thread (where signals cannot be caught) it
    installs nothing and a Ctrl-C interrupts as usual. In a data-parallel run a press in any
    process stops them all at the same boundary.
    """

    def __init__(self, run_dir: Path, dist: Distributed | None = None) -> None:
        self.run_dir = run_dir
        self.dist = dist or Distributed.single()
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def anywhere(self) -> bool:
        """Whether any process of the run was asked to stop (a collective call)."""
        return self.dist.any(self.requested)

    def honour(self, stopping: bool, where: str) -> None:
        """Stop here if ``stopping`` (the checkpoint is written by then)."""
        if stopping:
            raise RunInterrupted(
                f"interrupted {where}; a checkpoint was written: continue with "
                f"`llm-catalyst run --resume {self.run_dir}`"
            )

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\nCtrl-C: stopping after the current step with a checkpoint "
            "(press Ctrl-C again to abort without one)",
            file=sys.stderr,
            flush=True,
        )
