"""What a run tells the world, and the record a round leaves: its events, its checkpoint, its
progress, its messages, and the stop honoured at its boundaries.

The loops compute; ``RunOutput`` is the one way out of them, called from their ``run`` only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from llm_catalyst.catalyst.domain import Candidate, Round
from llm_catalyst.catalyst.sources import Proposals
from llm_catalyst.catalyst.state import LoopState
from llm_catalyst.catalyst.stop import StopRequest
from llm_catalyst.progress import ProgressSink, ProgressUpdate
from llm_catalyst.records import Event, RoundEvent
from llm_catalyst.rundir import RunDirectory

_log = logging.getLogger(__name__)


@dataclass
class RunProgress:
    """What a run tells its progress sink: the loops name the stage and the LLM round and
    report the optimizer steps executed (probe steps included, so ``total`` is
    ``train.steps``; llm-only reports rounds); the prompts scored come from the run's counters.
    """

    sink: ProgressSink
    state: LoopState
    total: int
    step: int = 0
    loss: float | None = None
    round: str = ""
    _stage: str = field(default="start", init=False)

    def stage(self, name: str, round: str | None = None) -> None:
        """Enter stage ``name``; ``round`` sets the LLM round shown ("" once it is over)."""
        self._stage = name
        if round is not None:
            self.round = round
        self._emit()

    def stepped(self, step: int, loss: float | None = None) -> None:
        self.step, self.loss = step, loss if loss is not None else self.loss
        self._emit()

    def _emit(self) -> None:
        spent = self.state.compute
        scored = spent.dev_prompts_scored + spent.dev_prompts_reused + spent.dev_prompts_raced_out
        self.sink.update(
            ProgressUpdate(self._stage, self.step, self.total, self.loss, scored, self.round)
        )


@dataclass(frozen=True)
class RoundRecord:
    """What a round leaves behind: its own record, and the events that happened during it (the
    pool's projections, dev evaluations, a restart, steps), written before it in that order."""

    round: Round
    event: RoundEvent
    events: tuple[Event, ...] = ()

    @property
    def where(self) -> str:
        step = self.event.step
        return f"at step {step}" if step else f"after round {self.round.number}"


def skip_reason(proposals: Proposals, scored: Sequence[Candidate]) -> str | None:
    """Why a round is skipped (the source's reason), or None when it scored proposals."""
    return (proposals.skip_reason or "no proposals") if not scored else None


def round_reason(choice_reason: str, skipped_because: str | None) -> str:
    return choice_reason if skipped_because is None else f"round skipped: {skipped_because}"


@dataclass
class RunOutput:
    """The run directory's events, the checkpoint, the progress shown, the run's messages, and
    the stop request: what a loop's ``run`` writes to and honours. ``is_main``: this process
    says the messages; the other processes of a data-parallel run keep quiet, or every line
    would come once per process."""

    run_dir: RunDirectory
    checkpoint: Callable[[], None]
    stop: StopRequest
    progress: RunProgress
    is_main: bool

    def log(self, *events: Event) -> None:
        for event in events:
            self.run_dir.log(event)

    def say(self, message: str) -> None:
        """A note for the user, as a record of the library's logger: the command line shows it
        on stderr, a host application sends it where its logging goes."""
        if self.is_main:
            _log.info(message)

    def end_round(self, record: RoundRecord) -> None:
        """Write the round, say what it decided, checkpoint, and stop here if asked."""
        self.log(*record.events, record.event)
        step = f" {record.where}" if record.event.step else ""
        self.say(f"round {record.round.label}{step}: {record.event.reason}")
        self.checkpoint()
        self.stop.honour(self.stop.anywhere(), record.where)
