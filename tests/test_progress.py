"""Progress renderers: log lines where stderr is not a terminal, a live bar where it is."""

from __future__ import annotations

import io

from rich.console import Console

from llm_catalyst.progress import (
    NoProgress,
    PlainProgress,
    ProgressUpdate,
    RichProgress,
    progress_for,
)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _console(terminal: bool = False) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, force_terminal=terminal), buffer


def test_plain_lines_at_stage_changes_and_every_interval_within_a_stage():
    console, buffer = _console()
    clock = _Clock()
    progress = PlainProgress(console, "cell 2/6 sst2/catalyst/seed1", interval=30, clock=clock)
    progress.update(ProgressUpdate("gradient", 0, 48))
    clock.now += 10
    progress.update(ProgressUpdate("gradient", 4, 48, loss=0.6931, scored=1))  # within 30 s
    clock.now += 30
    progress.update(ProgressUpdate("gradient", 8, 48, loss=0.6512, scored=1))
    progress.update(ProgressUpdate("scoring the pool", 8, 48, 0.6512, 1, round="1/2"))
    clock.now += 5
    progress.update(ProgressUpdate("LLM", 8, 48, 0.6512, 6, round="1/2"))
    assert buffer.getvalue().splitlines() == [
        "[cell 2/6 sst2/catalyst/seed1] gradient: step 0/48, 0 scored",
        "[cell 2/6 sst2/catalyst/seed1] gradient: step 8/48, loss 0.6512, 1 scored, ETA 3m 20s",
        "[cell 2/6 sst2/catalyst/seed1] round 1/2: scoring the pool: step 8/48, loss 0.6512, "
        "1 scored, ETA 3m 20s",
        "[cell 2/6 sst2/catalyst/seed1] round 1/2: LLM: step 8/48, loss 0.6512, 6 scored, "
        "ETA 3m 45s",
    ]


def test_the_eta_counts_from_the_first_step_seen_and_stops_at_the_end():
    """A resumed run starts at its checkpoint's step: the steps before are not timed here."""
    console, buffer = _console()
    clock = _Clock()
    progress = PlainProgress(console, clock=clock)
    progress.update(ProgressUpdate("gradient", 20, 40))
    clock.now += 100
    progress.update(ProgressUpdate("final stage", 30, 40))
    progress.update(ProgressUpdate("test", 40, 40))
    assert buffer.getvalue().splitlines() == [
        "gradient: step 20/40, 0 scored",
        "final stage: step 30/40, 0 scored, ETA 1m 40s",
        "test: step 40/40, 0 scored",
    ]


def test_a_live_bar_on_a_terminal_and_lines_elsewhere():
    terminal, buffer = _console(terminal=True)
    bar = progress_for(terminal, "run")
    assert isinstance(bar, RichProgress)
    bar.update(ProgressUpdate("gradient", 3, 12, loss=0.5, scored=2))
    bar.update(ProgressUpdate("LLM", 6, 12, loss=0.4, scored=5, round="1/2"))
    bar.close()
    shown = buffer.getvalue()
    assert "round 1/2: LLM" in shown and "6/12" in shown and "loss 0.4000" in shown
    assert "5 scored" in shown
    assert isinstance(progress_for(_console()[0]), PlainProgress)
    assert isinstance(progress_for(terminal, plain=True), PlainProgress)
    assert isinstance(progress_for(Console(quiet=True)), NoProgress)


def test_a_live_bar_shows_its_label_as_written():
    """The label names a cell, whose task name is the user's: neither markup nor a format."""
    console, buffer = _console(terminal=True)
    progress = RichProgress(console, "cell 1/1 my[/i]{task}/plain/seed1")
    progress.update(ProgressUpdate("gradient", 1, 4, loss=0.5))
    progress.close()
    assert "my[/i]{task}/plain/seed1" in buffer.getvalue()
