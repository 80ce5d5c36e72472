"""Stopping a run or a grid cleanly, whoever asks: Ctrl-C (SIGINT), or SIGTERM from ``kill``,
Slurm or Kubernetes (which send SIGKILL after a grace period).

A run stops at its next step with a checkpoint, or at once inside work that a resume redoes
exactly from the last checkpoint (a round, the set-up, the test evaluation; an LLM call is part
of a round); docs/design.md, "Stopping".
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from llm_catalyst.distributed import Distributed

STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class RunInterrupted(KeyboardInterrupt):
    """A stop ended the run after its last checkpoint; ``run --resume DIR`` continues it."""


@dataclass
class _Asked:
    """What this process was asked, shared by the stop scopes nested in it."""

    requested: bool = False
    presses: int = 0  # of Ctrl-C: the second aborts


class StopSignals:
    """SIGINT and SIGTERM while the scope is entered: the first asks this process to stop (said
    once on stderr, with ``announce``; then ``on_request`` is called); a second Ctrl-C aborts
    at once (KeyboardInterrupt). SIGTERM never aborts: Slurm sends it to every process of a
    job, a grid forwards it to its workers, and what comes after it is SIGKILL anyway.

    Scopes nest, as a run inside a grid's scope: the inner one handles the signals, a stop
    asked before it was entered holds in it, and one asked in it holds outside it afterwards.
    Outside the main thread, where signals cannot be caught, a scope installs nothing.
    """

    _innermost: ClassVar[StopSignals | None] = None

    def __init__(self, announce: str, on_request: Callable[[], None] | None = None) -> None:
        self.announce = announce
        self.on_request = on_request
        self._asked = _Asked()
        self._outer: StopSignals | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self._asked.requested

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._outer = StopSignals._innermost
            if self._outer is not None:
                self._asked = self._outer._asked
            StopSignals._innermost = self
            self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        if self._previous:
            StopSignals._innermost = self._outer

    def _handle(self, signum: int, frame: object) -> None:
        asked = self._asked
        if signum == signal.SIGINT:
            asked.presses += 1
            if asked.presses > 1:
                raise KeyboardInterrupt
        if not asked.requested:
            asked.requested = True
            print(f"\n{STOP_SIGNALS[signum]}: {self.announce}", file=sys.stderr, flush=True)
            if self.on_request is not None:
                self.on_request()
        self._stopping()

    def _stopping(self) -> None:
        """Called in the main thread on every stop signal, once the stop is asked."""


class StopRequest(StopSignals):
    """A run's stop: honoured at the next step boundary after a checkpoint is written, or at
    once inside ``abandonable`` work. In a data-parallel run a stop asked in any process stops
    them all at the same step or round boundary, and only there: one process leaving a round
    alone would leave the others waiting in a collective.
    """

    def __init__(self, run_dir: Path, dist: Distributed | None = None) -> None:
        super().__init__(
            "stopping at the next step with a checkpoint, or at once inside a round (resumed "
            "from the checkpoint before it); a second Ctrl-C aborts without one"
        )
        self.run_dir = run_dir
        self.dist = dist or Distributed.single()
        self._abandoning: str | None = None

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

    @contextmanager
    def abandonable(self, what: str) -> Iterator[None]:
        """Work that a stop leaves at once, raising ``RunInterrupted`` wherever it is (a scoring
        pass, a probe, an LLM call: even a blocking one, which the signal interrupts).

        Exact because the work writes nothing a resume keeps: events and checkpoints are
        written outside it, so the run continues from the checkpoint written before it and
        does the work again, alike (batches are functions of (seed, step), LLM answers replay
        from the cache); a stop is then no worse than a SIGKILL at that moment, and nothing
        is written after it.
        """
        if self.dist.world_size > 1 or not self._previous:
            yield
            return
        if self.requested:
            raise self._abandoned(what)
        outer, self._abandoning = self._abandoning, what
        try:
            yield
        finally:
            self._abandoning = outer

    def _stopping(self) -> None:
        if self._abandoning is not None:
            what, self._abandoning = self._abandoning, None
            raise self._abandoned(what)

    def _abandoned(self, what: str) -> RunInterrupted:
        if not self.run_dir.is_dir():  # a new run is made once its set-up has passed
            return RunInterrupted(f"interrupted during {what}: no run directory was made yet")
        return RunInterrupted(
            f"interrupted during {what}, which a resume does again from the last checkpoint: "
            f"continue with `llm-catalyst run --resume {self.run_dir}`"
        )
