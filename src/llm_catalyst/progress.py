"""Progress of a run as it goes: the library reports it, a renderer shows it.

The loops call a ``ProgressSink`` with a ``ProgressUpdate`` (stage, step/total, loss, candidates
scored, LLM round) at every stage change and step, and know nothing of how it is shown.
``RichProgress`` draws a live bar on a terminal; ``PlainProgress`` writes one line per stage,
and one every ``interval`` seconds within a long stage, where stderr is a file or a pipe or
several workers share it (a live bar there would be a wall of redrawn frames).
``progress_for`` picks one for a console.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn


@dataclass(frozen=True)
class ProgressUpdate:
    """Where a run is: its stage (``gradient``, ``LLM``, ...), the optimizer steps done of the
    run's total (llm-only: rounds done of its rounds), the last train loss, the candidate
    prompts scored on dev so far (reused scores included) and the LLM round (``1/3``, or "")."""

    stage: str
    step: int
    total: int
    loss: float | None = None
    scored: int = 0
    round: str = ""


class ProgressSink(Protocol):
    def update(self, update: ProgressUpdate) -> None: ...

    def close(self) -> None: ...


class NoProgress:
    """Shows nothing: ``train.progress: false``, a quiet console, the other processes of a
    data-parallel run."""

    def update(self, update: ProgressUpdate) -> None:
        pass

    def close(self) -> None:
        pass


def _describe(update: ProgressUpdate) -> str:
    return f"round {update.round}: {update.stage}" if update.round else update.stage


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {rest:02d}s"


class PlainProgress:
    """One log line per stage change, and one every ``interval`` seconds within a stage:
    ``[label] round 1/3: LLM: step 16/48, loss 0.6512, 9 scored, ETA 2m 10s``. The ETA is the
    time per step so far (rounds included) times the steps left."""

    def __init__(
        self,
        console: Console,
        label: str = "",
        interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.console = console
        self.label = label
        self.interval = interval
        self.clock = clock
        self._stage: tuple[str, str] | None = None
        self._last = 0.0
        self._start: tuple[float, int] | None = None

    def update(self, update: ProgressUpdate) -> None:
        now = self.clock()
        if self._start is None:
            self._start = (now, update.step)
        stage = (update.round, update.stage)
        if stage == self._stage and now - self._last < self.interval:
            return
        self._stage, self._last = stage, now
        self.console.print(self._line(update, now), markup=False, highlight=False)

    def _line(self, update: ProgressUpdate, now: float) -> str:
        assert self._start is not None
        fields = [f"step {update.step}/{update.total}"]
        if update.loss is not None:
            fields.append(f"loss {update.loss:.4f}")
        fields.append(f"{update.scored} scored")
        started, first_step = self._start
        done = update.step - first_step
        if done > 0 and update.step < update.total:
            fields.append(f"ETA {_duration((now - started) / done * (update.total - update.step))}")
        prefix = f"[{self.label}] " if self.label else ""
        return f"{prefix}{_describe(update)}: {', '.join(fields)}"

    def close(self) -> None:
        pass


def _literal(text: str) -> str:
    """``text`` as a TextColumn format that prints it as written."""
    return text.replace("{", "{{").replace("}", "}}")


class RichProgress:
    """A live bar on a terminal: label, round and stage, steps, loss, candidates scored, ETA.
    The run's messages, log records written to stderr meanwhile, scroll above it: the live
    display takes over stdout and stderr while it is drawn."""

    def __init__(self, console: Console, label: str = ""):
        self._bar = Progress(
            # The label names a cell (a user's task name): text, neither markup nor a format.
            *([TextColumn(_literal(label), style="bold", markup=False)] if label else []),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[loss]}"),
            TextColumn("{task.fields[scored]} scored"),
            TimeRemainingColumn(),
            console=console,
        )
        self._task: TaskID | None = None

    def update(self, update: ProgressUpdate) -> None:
        loss = "" if update.loss is None else f"loss {update.loss:.4f}"
        fields = {"description": _describe(update), "loss": loss, "scored": update.scored}
        if self._task is None:
            self._bar.start()
            self._task = self._bar.add_task(total=update.total, completed=update.step, **fields)
        else:
            self._bar.update(self._task, total=update.total, completed=update.step, **fields)

    def close(self) -> None:
        if self._task is not None:
            self._bar.stop()
            self._task = None


def progress_for(console: Console, label: str = "", plain: bool | None = None) -> ProgressSink:
    """Nothing on a quiet console; else a live bar on a terminal and log lines elsewhere
    (``plain`` forces one or the other)."""
    if console.quiet:
        return NoProgress()
    if plain if plain is not None else not console.is_terminal:
        return PlainProgress(console, label)
    return RichProgress(console, label)
