"""What both loops of ``loop.py`` share besides the algorithm: dev scoring that is timed and
counted, the record of a round, and the Ctrl-C stop after a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from llm_catalyst.backbones.base import Backbone
from llm_catalyst.catalyst.checkpoint import Candidate, LoopState, StopRequest
from llm_catalyst.catalyst.sources import Proposals
from llm_catalyst.data.tasks import Example
from llm_catalyst.distributed import Distributed
from llm_catalyst.records import ProbeRecord, RoundEvent
from llm_catalyst.rundir import RunDirectory
from llm_catalyst.training.scoring import EvalResult, evaluate, evaluate_many


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run after writing a checkpoint; ``run --resume DIR`` continues it."""


class DevScorer:
    """Scores prompts on the dev split, timing it and counting the forward passes spent."""

    def __init__(
        self,
        backbone: Backbone,
        examples: Sequence[Example],
        batch_size: int,
        state: LoopState,
        dist: Distributed | None = None,
    ):
        self.backbone = backbone
        self.examples = examples
        self.batch_size = batch_size
        self.state = state
        self.dist = dist or Distributed.single()

    def _spent(self, prompts: int) -> None:
        self.state.counters.dev_prompts += prompts
        self.state.counters.dev_forward_passes += prompts * len(self.examples)

    def evaluate(self, prompt: torch.Tensor) -> EvalResult:
        with self.state.clock.phase("scoring_s"):
            result = evaluate(self.backbone, prompt, self.examples, self.batch_size, self.dist)
        self._spent(1)
        return result

    def score(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """Every unscored candidate scored in shared forward passes; order kept."""
        todo = [i for i, c in enumerate(candidates) if c.result is None]
        if not todo:
            return list(candidates)
        with self.state.clock.phase("scoring_s"):
            results = evaluate_many(
                self.backbone,
                [candidates[i].rows for i in todo],
                self.examples,
                self.batch_size,
                self.dist,
            )
        self._spent(len(todo))
        scored = list(candidates)
        for i, result in zip(todo, results, strict=True):
            scored[i] = candidates[i].scored(result)
        return scored


@dataclass
class RoundBook:
    """What both loops share: the run's state and records, and how a round ends (recorded,
    checkpointed, reported, and the stop honoured when Ctrl-C was pressed)."""

    state: LoopState
    scorer: DevScorer
    run_dir: RunDirectory
    rounds: int
    save: Callable[[], None]
    stop: StopRequest
    say: Callable[[str], None]
    dist: Distributed = field(default_factory=Distributed.single)
    first_round: int = 1

    def number(self, round_index: int) -> int:
        """The recorded number of the round at 0-based position ``round_index``: rounds count
        from 1, or from 0 when the first is the initialisation round (``loop.init_round``)."""
        return round_index + self.first_round

    def offer(self, step: int, result: EvalResult, prompt: torch.Tensor, origin: str) -> bool:
        """Offer a scored prompt to the best-so-far; True when it became the best."""
        improved = self.state.best.offer(step, result, prompt, self.scorer.backbone)
        if improved:
            self.state.best_origin = origin
        return improved

    def end_round(
        self,
        round_index: int,
        step: int,
        pool: Sequence[Candidate],
        proposals: Proposals,
        scored: Sequence[Candidate],
        chosen: Candidate | None,
        reason: str,
        selection: str,
        probes: Sequence[ProbeRecord] = (),
        probe_steps: int = 0,
    ) -> None:
        """``reason`` is why ``chosen`` (or nothing) was taken; a round with nothing scored is
        recorded as skipped for the source's own reason. ``step`` 0: a search without steps.
        The caller has already added the round's texts to ``state.tried`` as its method wants."""
        skip_reason = (proposals.skip_reason or "no proposals") if not scored else None
        if skip_reason is not None:
            reason = f"round skipped: {skip_reason}"
            self.state.skipped_rounds += 1
        number = self.number(round_index)
        self.run_dir.log(
            RoundEvent(
                round=number,
                step=step,
                pool=tuple(c.record() for c in pool),
                proposals=tuple(c.record() for c in scored),
                chosen=None if chosen is None else chosen.record(),
                reason=reason,
                skipped=not scored,
                skip_reason=skip_reason,
                selection=selection,
                details=dict(proposals.details),
                probe_steps=probe_steps,
                probes=tuple(probes),
            )
        )
        self.state.rounds_done = round_index + 1
        last = self.number(self.rounds - 1)
        where = f"at step {step}" if step else f"after round {number}"
        self.say(f"round {number}/{last}{' ' + where if step else ''}: {reason}")
        self.save()
        self.stop_if(self.dist.any(self.stop.requested), where)

    def stop_if(self, stopping: bool, where: str) -> None:
        if stopping:
            raise RunInterrupted(
                f"interrupted {where}; a checkpoint was written: continue with "
                f"`llm-catalyst run --resume {self.run_dir.path}`"
            )
