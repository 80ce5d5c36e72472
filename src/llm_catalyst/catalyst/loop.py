"""Steps 2 and 3 of method.md for the gradient methods, readable top to bottom.

``run`` is the outline: a gradient stage (a), then a round (b-f), round after round, then the
final stage (3). A round computes and returns its record; only ``run`` writes events and
checkpoints, and honours a stop, through ``RunOutput``: after a step, at a round's end, or
inside a round, which it leaves at once (to be done again from the checkpoint before it).
Probes (method.md, "Beyond the paper") are step e when ``loop.probe_steps`` > 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from llm_catalyst.catalyst.config import RunConfig
from llm_catalyst.catalyst.dev_scorer import DevScorer
from llm_catalyst.catalyst.domain import (
    Candidate,
    Round,
    TrajectoryPoint,
    candidate_pool,
    rounds_of,
)
from llm_catalyst.catalyst.output import RoundRecord, RunOutput, round_reason, skip_reason
from llm_catalyst.catalyst.schedule import Schedule
from llm_catalyst.catalyst.selection import Choice, choose
from llm_catalyst.catalyst.sources import Proposals, ProposalSource, RoundInput
from llm_catalyst.catalyst.state import LoopState
from llm_catalyst.prompts.projection import Vocabulary, project, project_many
from llm_catalyst.records import (
    DevEvalEvent,
    Event,
    Metrics,
    ProbeRecord,
    ProjectedPoint,
    RaceStage,
    RestartEvent,
    RoundEvent,
    TrainStepEvent,
    TrajectoryEvent,
)
from llm_catalyst.training.trainer import PromptTrainer


@dataclass(frozen=True)
class Probed:
    """An entrant after its probe: as it entered, as it left (probed rows and dev score), the
    trainer state to continue from, and the trajectory of its steps."""

    entered: Candidate
    left: Candidate
    state: dict[str, Any]
    points: tuple[TrajectoryPoint, ...]


@dataclass(frozen=True)
class Decision:
    """What step e decided: the choice, and with probes the entrants (S first) and the one S
    continues from, whether or not it restarts."""

    choice: Choice
    probed: tuple[Probed, ...] = ()
    winner: Probed | None = None

    def probe_records(self) -> tuple[ProbeRecord, ...]:
        return tuple(
            p.entered.probe_record(p.left, [q.loss for q in p.points], p is self.winner)
            for p in self.probed
        )


@dataclass
class CatalystLoop:
    """Steps 2 and 3 of method.md over a trainer whose prompt is S. ``source`` None runs the
    same stages with no rounds: plain prompt tuning. The final stage runs until the run has
    executed ``schedule.total_steps`` optimizer steps, probes included."""

    trainer: PromptTrainer
    scorer: DevScorer
    state: LoopState
    schedule: Schedule
    config: RunConfig
    vocab: Vocabulary
    source: ProposalSource | None
    output: RunOutput

    def run(self) -> None:
        loop = self.config.loop
        rounds = rounds_of(loop.rounds, loop.init_round) if self.source is not None else ()
        for round in rounds[self.state.rounds_done :]:
            if not round.is_init:
                self._train(until=self.schedule.stage_end(round.number))  # a
            with self.output.stop.abandonable(f"round {round.number}"):
                record = self._round(round)  # b-f
            self.state.rounds_done = round.index + 1
            self.output.end_round(record)
        final_step = self.schedule.total_steps - self.state.compute.discarded_steps
        self._train(until=final_step, stage="final stage" if rounds else "gradient")  # 3
        self.output.checkpoint()

    def _round(self, round: Round) -> RoundRecord:
        """b-f of method.md: score the pool, ask the source, score the proposals, choose (after
        probes), restart. Returns what the round saw and decided; writes nothing."""
        spent, step = self.state.compute.model_copy(), self.trainer.step
        self.output.progress.stage("scoring the pool", round=round.label)
        current, pool, events = self._score_pool(round)  # b
        proposals = self._ask(round, current, pool)  # c, d
        scored, finalists, race = self._score_proposals(proposals)  # e
        decision = self._decide(current, pool, finalists)  # e, with probes
        events += self._restart(round, decision)  # f
        if not finalists:  # nothing to compare: S takes the round's probe steps as usual
            events += self._steps(until=step + self.schedule.probe_steps)
        self.state.tried.extend(c.text for c in [*pool, *scored])
        self.state.proposal_history.extend(scored)  # for the own_history ingredient
        skipped_because = skip_reason(proposals, scored)
        self.state.skipped_rounds += skipped_because is not None
        chosen = decision.choice.candidate
        event = RoundEvent(
            round=round.number,
            step=step,
            pool=tuple(c.record() for c in [current, *pool]),
            proposals=tuple(c.record() for c in scored),
            chosen=None if chosen is None else chosen.record(),
            reason=round_reason(decision.choice.reason, skipped_because),
            skipped=skipped_because is not None,
            skip_reason=skipped_because,
            selection=self.config.loop.selection,
            details=dict(proposals.details),
            probe_steps=self.schedule.probe_steps if decision.probed else 0,
            probes=decision.probe_records(),
            dev_prompts_scored=self.state.compute.dev_prompts_scored - spent.dev_prompts_scored,
            dev_prompts_reused=self.state.compute.dev_prompts_reused - spent.dev_prompts_reused,
            race=race,
        )
        return RoundRecord(round, event, tuple(events))

    # -- a: gradient steps ------------------------------------------------------------------

    def _train(self, until: int, stage: str = "gradient") -> None:
        """A stage of steps on S until trajectory step ``until``, written as it goes: the
        checkpoint at a stage's end and every ``train.eval_every`` steps (so that a run killed
        outright loses little, rounds or none), and a stop honoured after any step."""
        self.output.progress.stage(stage, round="")
        ends, every = self.schedule.stage_ends(), self.config.train.eval_every
        while self.trainer.step < until:
            self.output.log(*self._steps(until, count=1))
            stopping = self.output.stop.anywhere()
            periodic = self.trainer.step % every == 0
            if self.trainer.step in ends or periodic or stopping:
                self.output.checkpoint()
            self.output.stop.honour(stopping, f"at step {self.trainer.step}")

    def _steps(self, until: int, count: int | None = None) -> list[Event]:
        """Steps on S (``count`` of them, or up to trajectory step ``until``), each recorded in
        the trajectory, and S scored on dev every ``train.eval_every`` steps and at ``until``
        (not at a stage's end, where the round scores it); returns their events."""
        events: list[Event] = []
        ends = self.schedule.stage_ends() if self.source is not None else frozenset()
        last = until if count is None else min(until, self.trainer.step + count)
        while self.trainer.step < last:
            before = self.trainer.current_prompt()
            with self.state.clock.phase("gradient_s"):
                record = self.trainer.train_step()
            self.output.progress.stepped(self._executed(), record.loss)
            events.append(
                TrainStepEvent(
                    step=record.step, loss=record.loss, lr=record.lr, grad_norm=record.grad_norm
                )
            )
            if self.source is not None:
                self.state.trajectory.append(TrajectoryPoint(record.step - 1, record.loss, before))
            periodic = record.step % self.config.train.eval_every == 0 or record.step == until
            if periodic and record.step not in ends:
                events.append(self._dev_eval(self.trainer.prompt))
        return events

    def _executed(self) -> int:
        """Optimizer steps executed so far: the kept trajectory's and the discarded copies'."""
        return self.trainer.step + self.state.compute.discarded_steps

    def _dev_eval(self, prompt: torch.Tensor, result: Metrics | None = None) -> DevEvalEvent:
        """S scored on dev (unless already scored) and offered to the best-so-far."""
        if result is None:
            result = self.scorer.evaluate(prompt)
        step = self.trainer.step
        improved = self.state.offer(step, result, prompt, f"step {step}", self.scorer.backbone)
        return DevEvalEvent(step=step, improved=improved, **result.model_dump())

    # -- b: the pool ------------------------------------------------------------------------

    def _score_pool(self, round: Round) -> tuple[Candidate, list[Candidate], list[Event]]:
        """S and the pool of the stage, scored, and the stage's projected trajectory. Round 0
        has no stage: S alone, whose dev score at step 0 is already recorded."""
        trajectory, metric = self.state.trajectory, self.config.prompt.metric
        prompt = self.trainer.current_prompt()
        current = Candidate(project(prompt, self.vocab, metric).text, prompt, "current")
        if not trajectory:
            (current,) = self.scorer.score([current])
            return current, [], []
        projections = project_many([p.prompt for p in trajectory], self.vocab, metric)
        projected = TrajectoryEvent(
            round=round.number,
            points=tuple(
                ProjectedPoint(step=p.step, loss=p.loss, text=pr.text, roundtrip_ok=pr.roundtrip_ok)
                for p, pr in zip(trajectory, projections, strict=True)
            ),
        )
        pool = candidate_pool(trajectory, projections, self.vocab, self.config.loop.pool_size)
        current, *pool = self.scorer.score([current, *pool])
        self.state.trajectory.clear()
        return current, pool, [projected, self._dev_eval(prompt, current.result)]

    # -- c, d: the source's proposals -------------------------------------------------------

    def _ask(self, round: Round, current: Candidate, pool: Sequence[Candidate]) -> Proposals:
        assert self.source is not None, "a round asks the method's source"
        self.output.progress.stage("LLM")
        return self.source.propose(RoundInput(round, current, tuple(pool), tuple(self.state.tried)))

    # -- e: score, probe, choose ------------------------------------------------------------

    def _score_proposals(
        self, proposals: Proposals
    ) -> tuple[list[Candidate], list[Candidate], tuple[RaceStage, ...]]:
        """The proposals scored, those the choice is made among (all of them, or a race's
        finalists, each scored on the whole dev split either way) and the race's stages."""
        self.output.progress.stage("scoring proposals")
        loop = self.config.loop
        if not loop.racing:
            scored = self.scorer.score(proposals.candidates)
            return scored, scored, ()
        race = self.scorer.race(proposals.candidates, loop.finalists, loop.race_start)
        return race.scored, race.finalists, race.stages

    def _decide(
        self, current: Candidate, pool: Sequence[Candidate], finalists: Sequence[Candidate]
    ) -> Decision:
        """The selection policy over the finalists, or over their probed versions."""
        loop = self.config.loop
        if not finalists:
            return Decision(Choice(None, ""))
        if not self.schedule.probe_steps:
            return Decision(choose(loop.selection, loop.margin, current, pool, finalists))
        return self._probe(current, finalists)

    def _probe(self, current: Candidate, finalists: Sequence[Candidate]) -> Decision:
        """S and the t best proposals by dev loss each take k steps on the same next batches,
        S with the moments it has learned, the proposals from fresh ones; the policy compares
        their probed dev scores (the pool, not probed, takes no part). The winner's state
        continues; the others' steps are spent."""
        self.output.progress.stage("probes")
        k, loop = self.schedule.probe_steps, self.config.loop
        top = sorted(finalists, key=lambda c: c.loss)[: self.schedule.probe_top]
        start, executed = self.trainer.snapshot(), self._executed()
        probed = tuple(
            self._probe_one(entrant, start, executed + i * k)
            for i, entrant in enumerate([current, *top])
        )
        left = [p.left for p in probed]
        choice = choose(loop.selection, loop.margin, left[0], [], left[1:])
        winner = next((p for p in probed if p.left is choice.candidate), probed[0])
        reason = f"after {k} probe step(s): {choice.reason}"
        return Decision(Choice(choice.candidate, reason), probed, winner)

    def _probe_one(self, entrant: Candidate, start: dict[str, Any], executed: int) -> Probed:
        """``entrant`` trained k steps from ``start`` (a proposal with fresh prompt moments, S
        with its own: resetting them would throw away what S's stage learned), then scored on
        dev with the head it trained (a backbone with a head trains it too). ``executed``: the
        optimizer steps the run had executed before this entrant's."""
        trainer = self.trainer
        trainer.restore(start)
        if entrant.origin != "current":
            trainer.restart(entrant.rows, reset_moments=True)
        points = []
        for i in range(self.schedule.probe_steps):
            before = trainer.current_prompt()
            with self.state.clock.phase("gradient_s"):
                record = trainer.train_step()
            self.output.progress.stepped(executed + i + 1, record.loss)
            points.append(TrajectoryPoint(record.step - 1, record.loss, before))
        prompt = trainer.current_prompt()
        left = replace(entrant, rows=prompt, result=self.scorer.evaluate(prompt))
        return Probed(entrant, left, trainer.snapshot(), tuple(points))

    # -- f: restart -------------------------------------------------------------------------

    def _restart(self, round: Round, decision: Decision) -> list[Event]:
        """The one place S changes after a round: to the probe winner's state (a kept S too),
        or to the chosen candidate's rows with the moments reset or kept. A restart is offered
        to the best-so-far and recorded; a probed S that is kept is scored as a step."""
        chosen, winner = decision.choice.candidate, decision.winner
        if winner is not None:
            self._continue_from(winner, entrants=len(decision.probed))
        elif chosen is not None:
            self.trainer.restart(chosen.rows, self.config.loop.moments == "reset")
        if chosen is None:
            return [] if winner is None else [self._dev_eval(winner.left.rows, winner.left.result)]
        assert chosen.result is not None
        self.state.restarts += 1
        step = self.trainer.step
        how = f" after {self.schedule.probe_steps} probe steps" if winner else ""
        origin = f"restart of round {round.number}{how}"
        improved = self.state.offer(step, chosen.result, chosen.rows, origin, self.scorer.backbone)
        moments = "reset" if winner else self.config.loop.moments
        return [
            RestartEvent(
                **chosen.record().model_dump(),
                step=step,
                round=round.number,
                moments=moments,
                improved=improved,
            )
        ]

    def _continue_from(self, winner: Probed, entrants: int) -> None:
        """S continues from the probe winner; the other entrants' steps are spent, and the LR
        schedule moves past them."""
        k = self.schedule.probe_steps
        self.trainer.restore(winner.state)
        discarded = k * (entrants - 1)
        self.trainer.advance_schedule(discarded)
        self.state.compute.probe_steps += k * entrants
        self.state.compute.discarded_probe_steps += discarded
        self.state.trajectory.extend(winner.points)
