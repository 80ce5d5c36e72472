"""llm-only, OPRO-style: the same LLM and rounds as the catalyst searching hard prompts, with no
gradient step. A round computes and returns its record; only ``run`` writes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from llm_catalyst.catalyst.dev_scorer import DevScorer
from llm_catalyst.catalyst.domain import Candidate, Round
from llm_catalyst.catalyst.output import RoundRecord, RunOutput, round_reason, skip_reason
from llm_catalyst.catalyst.sources import ProposalSource, RoundInput
from llm_catalyst.catalyst.state import LoopState
from llm_catalyst.records import DevEvalEvent, RoundEvent


@dataclass
class HardPromptSearch:
    """Each round the LLM sees every prompt scored so far (worst to best) and proposes C new
    ones, scored on dev; the best by dev is kept. The search starts from ``start``, the run's
    initial prompt as text."""

    source: ProposalSource
    scorer: DevScorer
    state: LoopState
    rounds: tuple[Round, ...]
    start: Candidate
    output: RunOutput

    def run(self) -> None:
        """The rounds, each closed by ``RunOutput`` (a stop inside one leaves it at once, to be
        done again from the checkpoint before it)."""
        stop = self.output.stop
        if not self.state.proposal_history:
            with stop.abandonable("the scoring of the initial prompt"):
                event = self._score_start()
            self.output.log(event)
            self.output.checkpoint()
        for round in self.rounds[self.state.rounds_done :]:
            with stop.abandonable(f"round {round.number}"):
                record = self._round(round)
            self.state.rounds_done = round.index + 1
            self.output.end_round(record)
            self.output.progress.stepped(round.index + 1)

    def _score_start(self) -> DevEvalEvent:
        (start,) = self.scorer.score([self.start])
        assert start.result is not None
        self.state.best.offer(0, start.result, start.rows, self.scorer.backbone)
        self.state.proposal_history.append(start)
        return DevEvalEvent(step=0, improved=True, **start.result.model_dump())

    def _round(self, round: Round) -> RoundRecord:
        """Ask with the history so far, score the proposals, keep any that beats the best."""
        spent, state = self.state.compute.model_copy(), self.state
        pool = tuple(state.proposal_history)
        current = min(pool, key=lambda c: c.loss)
        self.output.progress.stage("LLM", round=round.label)
        proposals = self.source.propose(RoundInput(round, current, pool, tuple(state.tried)))
        self.output.progress.stage("scoring proposals")
        scored = self.scorer.score(proposals.candidates)
        chosen = None
        for candidate in scored:
            assert candidate.result is not None
            origin = f"round {round.number}: {candidate.text}"
            if state.offer(0, candidate.result, candidate.rows, origin, self.scorer.backbone):
                chosen = candidate
        state.proposal_history.extend(scored)
        state.tried.extend(c.text for c in scored)
        skipped_because = skip_reason(proposals, scored)
        state.skipped_rounds += skipped_because is not None
        kept = "no proposal beats the best prompt so far"
        event = RoundEvent(
            round=round.number,
            step=0,
            pool=tuple(c.record() for c in pool),
            proposals=tuple(c.record() for c in scored),
            chosen=None if chosen is None else chosen.record(),
            reason=round_reason(
                kept if chosen is None else "the best prompt so far by dev score", skipped_because
            ),
            skipped=skipped_because is not None,
            skip_reason=skipped_because,
            selection="best by dev",
            details=dict(proposals.details),
            dev_prompts_scored=state.compute.dev_prompts_scored - spent.dev_prompts_scored,
            dev_prompts_reused=state.compute.dev_prompts_reused - spent.dev_prompts_reused,
        )
        return RoundRecord(round, event)
