"""The algorithm of method.md, readable top to bottom: ``CatalystLoop.run`` (the gradient
methods) and ``HardPromptSearch.run`` (llm-only), which share the round record and the Ctrl-C
stop. Every step calls down into sources, the scorer and the trainer; nothing calls back up.
Probes (method.md, "Beyond the paper") live in ``CatalystLoop._probe``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from llm_catalyst.catalyst.bookkeeping import RoundBook
from llm_catalyst.catalyst.checkpoint import Candidate, TrajectoryPoint
from llm_catalyst.catalyst.config import LoopConfig, Schedule, Selection
from llm_catalyst.catalyst.sources import ProposalSource, RoundInput
from llm_catalyst.prompts.projection import Metric, Projection, Vocabulary, project, project_many
from llm_catalyst.records import (
    DevEvalEvent,
    Metrics,
    ProbeRecord,
    ProjectedPoint,
    RaceStage,
    RestartEvent,
    TrainStepEvent,
    TrajectoryEvent,
)
from llm_catalyst.training.trainer import PromptTrainer


@dataclass(frozen=True)
class Choice:
    candidate: Candidate | None
    reason: str


def _loss(candidate: Candidate) -> float:
    assert candidate.result is not None, "only scored candidates are compared"
    return candidate.result.loss


def choose(
    selection: Selection,
    margin: float,
    current: Candidate,
    pool: Sequence[Candidate],
    proposals: Sequence[Candidate],
) -> Choice:
    """The restart of a round (or None: keep S) and why, all by dev loss (method.md 2e)."""
    if selection == "first":
        return Choice(proposals[0], "selection 'first' (reference rule): the first proposal")
    if selection == "margin":
        best = min(proposals, key=_loss)
        gain = _loss(current) - _loss(best)
        if gain > margin:
            return Choice(
                best,
                f"best proposal: dev loss {_loss(best):.4f}, {gain:.4f} below the current "
                f"prompt's {_loss(current):.4f} (margin {margin})",
            )
        return Choice(
            None,
            f"keep S: the best proposal's dev loss {_loss(best):.4f} is not below the current "
            f"prompt's {_loss(current):.4f} by more than the margin {margin}",
        )
    best = min([current, *pool, *proposals], key=_loss)
    if best is current:
        return Choice(None, "keep S: the current prompt has the lowest dev loss of all scored")
    return Choice(
        best,
        f"lowest dev loss of all scored ({best.source}): {_loss(best):.4f} against the current "
        f"prompt's {_loss(current):.4f}",
    )


def candidate_pool(
    trajectory: Sequence[TrajectoryPoint],
    projections: Sequence[Projection],
    vocab: Vocabulary,
    size: int,
) -> list[Candidate]:
    """The distinct projected texts of a stage (method.md 2b), in stage order.

    At most ``size``: the text with the lowest train loss, and the others spread evenly over
    the stage. Each candidate's rows are the embeddings of its projected tokens, i.e. the hard
    prompt the text stands for (no re-tokenisation, so a text that does not round-trip is
    still scored as the tokens it came from).
    """
    distinct: dict[tuple[int, ...], tuple[TrajectoryPoint, Projection]] = {}
    for point, projection in zip(trajectory, projections, strict=True):
        seen = distinct.get(projection.token_ids)
        if seen is None or point.loss < seen[0].loss:
            distinct[projection.token_ids] = (point, projection)
    entries = sorted(distinct.values(), key=lambda entry: entry[0].step)
    if not entries:
        return []
    lowest = min(entries, key=lambda entry: entry[0].loss)
    if len(entries) > size:
        rest = [entry for entry in entries if entry is not lowest]
        spread = np.linspace(0, len(rest) - 1, size - 1).round().astype(int) if size > 1 else []
        entries = sorted([lowest, *(rest[i] for i in spread)], key=lambda entry: entry[0].step)
    table = vocab.table.detach()
    pool = []
    for point, projection in entries:
        label = f"step {point.step}" + (", lowest train loss" if point is lowest[0] else "")
        rows = table[list(projection.token_ids)].float().clone()
        pool.append(Candidate(projection.text, rows, label))
    return pool


@dataclass(frozen=True)
class Probed:
    """An entrant after its probe: as it entered, as it left (probed rows and dev score), the
    trainer state to continue from, and the trajectory of its steps."""

    entered: Candidate
    left: Candidate
    state: dict[str, Any]
    points: tuple[TrajectoryPoint, ...]

    def record(self, continued: bool) -> ProbeRecord:
        assert self.entered.result is not None and self.left.result is not None
        return ProbeRecord(
            text=self.entered.text,
            source=self.entered.source,
            dev_loss_before=self.entered.result.loss,
            dev_accuracy_before=self.entered.result.accuracy,
            dev_loss=self.left.result.loss,
            dev_accuracy=self.left.result.accuracy,
            train_losses=tuple(p.loss for p in self.points),
            continued=continued,
        )


@dataclass
class CatalystLoop:
    """Steps 2 and 3 of method.md over a trainer whose prompt is S. ``source`` None runs the
    same stages with no rounds: plain prompt tuning.

    Rounds are numbered by position: with ``schedule.init_round`` position 0 is the round
    before any gradient step and regular round r is position r + 1. The final stage runs
    until the run has executed ``schedule.total_steps`` optimizer steps, probes included.
    """

    trainer: PromptTrainer
    schedule: Schedule
    config: LoopConfig
    source: ProposalSource | None
    book: RoundBook
    vocab: Vocabulary
    metric: Metric
    eval_every: int

    def run(self) -> None:
        source, state, schedule = self.source, self.book.state, self.schedule
        positions = schedule.llm_rounds if source is not None else 0
        for position in range(state.rounds_done, positions):
            assert source is not None
            regular = position - schedule.init_round
            if regular >= 0:
                self._gradient_stage(until=schedule.round_end(regular))  # a
            self._round(position, source)
        discarded = state.counters.discarded_probe_steps
        final = "final stage" if positions else "gradient"
        self._gradient_stage(until=schedule.total_steps - discarded, stage=final)  # 3
        self.book.save()

    def _round(self, position: int, source: ProposalSource) -> None:
        """b-f of method.md: score the pool, ask the source, score, (probe,) choose, restart."""
        state, k, progress = self.book.state, self.schedule.probe_steps, self.book.progress
        step = self.trainer.step
        self.book.begin_round()
        progress.stage("scoring the pool", round=self.book.round_label(position))
        current, pool = self._score_pool(position)  # b
        state.trajectory.clear()
        progress.stage("LLM")
        proposals = source.propose(RoundInput(position, current, tuple(pool), tuple(state.tried)))
        progress.stage("scoring proposals")
        scored, finalists, race = self._score_proposals(proposals.candidates)  # c, d, e
        choice, probes = Choice(None, ""), ()
        if finalists and k:
            progress.stage("probes")
            choice, probes = self._probe(position, current, finalists)
        elif finalists:
            choice = choose(self.config.selection, self.config.margin, current, pool, finalists)
            if choice.candidate is not None:
                self.trainer.restart(choice.candidate.rows, self.config.moments == "reset")  # f
                self._restarted(choice.candidate, position, probed=False)
        else:
            # Nothing to compare: S takes the round's k steps on the kept trajectory as usual.
            self._gradient_stage(until=step + k, in_round=True)
        state.tried.extend(c.text for c in [*pool, *scored])
        state.history.extend(scored)  # the LLM's own history, when that ingredient is on
        self.book.end_round(
            position,
            step,
            [current, *pool],
            proposals,
            scored,
            choice.candidate,
            choice.reason,
            self.config.selection,
            probes,
            k if probes else 0,
            race,
        )

    def _score_proposals(
        self, candidates: Sequence[Candidate]
    ) -> tuple[list[Candidate], list[Candidate], tuple[RaceStage, ...]]:
        """The proposals scored, those the choice is made among (all of them, or a race's
        finalists, each scored on the whole dev split either way) and the race's stages."""
        scorer = self.book.scorer
        if not self.config.racing:
            scored = scorer.score(candidates)
            return scored, scored, ()
        race = scorer.race(candidates, self.config.finalists, self.config.race_start)
        return race.scored, race.finalists, race.stages

    # -- a: gradient stage ------------------------------------------------------------------

    def _gradient_stage(self, until: int, in_round: bool = False, stage: str = "gradient") -> None:
        """Steps on S until trajectory step ``until``. ``in_round``: steps inside a round,
        whose end writes the checkpoint and honours Ctrl-C (a checkpoint in the middle of a
        round could not be resumed). ``stage``: what the progress calls the stage."""
        book = self.book
        round_ends = {self.schedule.round_end(r) for r in range(self.schedule.rounds)}
        if not in_round:
            book.progress.stage(stage, round="")
        while self.trainer.step < until:
            before = self.trainer.current_prompt()
            with book.state.clock.phase("gradient_s"):
                record = self.trainer.train_step()
            book.progress.stepped(self._executed(), record.loss)
            book.run_dir.log(
                TrainStepEvent(
                    step=record.step, loss=record.loss, lr=record.lr, grad_norm=record.grad_norm
                )
            )
            if self.source is not None:
                book.state.trajectory.append(TrajectoryPoint(record.step - 1, record.loss, before))
            # A round scores S at its own boundary; there the periodic evaluation would repeat it.
            at_round = self.source is not None and record.step in round_ends
            periodic = record.step % self.eval_every == 0 or record.step == until
            if periodic and not at_round:
                self._dev_eval(self.trainer.prompt)
            if in_round:
                continue
            stopping = book.dist.any(book.stop.requested)
            if record.step in round_ends or stopping:
                book.save()
            book.stop_if(stopping, f"at step {self.trainer.step}")

    def _executed(self) -> int:
        """Optimizer steps executed so far: the kept trajectory's and the discarded probes'."""
        return self.trainer.step + self.book.state.counters.discarded_probe_steps

    def _dev_eval(self, prompt: torch.Tensor, result: Metrics | None = None) -> None:
        """Score S on dev (unless already scored) and offer it to the best-so-far."""
        if result is None:
            result = self.book.scorer.evaluate(prompt)
        step = self.trainer.step
        improved = self.book.offer(step, result, prompt, f"step {step}")
        self.book.run_dir.log(DevEvalEvent(step=step, improved=improved, **result.model_dump()))

    # -- b: candidate pool ------------------------------------------------------------------

    def _score_pool(self, position: int) -> tuple[Candidate, list[Candidate]]:
        """S and the pool of the stage, scored. Round 0 has no stage: S alone, whose dev
        score at step 0 is already recorded."""
        trajectory = self.book.state.trajectory
        prompt = self.trainer.current_prompt()
        current = Candidate(project(prompt, self.vocab, self.metric).text, prompt, "current")
        if not trajectory:
            (current,) = self.book.scorer.score([current])
            return current, []
        projections = project_many([p.prompt for p in trajectory], self.vocab, self.metric)
        self.book.run_dir.log(
            TrajectoryEvent(
                round=self.book.number(position),
                points=tuple(
                    ProjectedPoint(
                        step=p.step, loss=p.loss, text=pr.text, roundtrip_ok=pr.roundtrip_ok
                    )
                    for p, pr in zip(trajectory, projections, strict=True)
                ),
            )
        )
        pool = candidate_pool(trajectory, projections, self.vocab, self.config.pool_size)
        current, *pool = self.book.scorer.score([current, *pool])
        assert current.result is not None
        self._dev_eval(prompt, current.result)
        return current, pool

    # -- probes: restarts judged after k steps ----------------------------------------------

    def _probe(
        self, position: int, current: Candidate, scored: Sequence[Candidate]
    ) -> tuple[Choice, tuple[ProbeRecord, ...]]:
        """S and the t best proposals by dev loss each take k steps on the same next batches
        from fresh prompt moments; the policy compares their probed dev scores (the pool, not
        probed, takes no part). The winner's state continues; the others' steps are spent."""
        state, k = self.book.state, self.schedule.probe_steps
        top = sorted(scored, key=_loss)[: self.schedule.probe_top]
        start = self.trainer.snapshot()
        base = self._executed()
        probed = [
            self._probe_one(entrant, start, base + i * k)
            for i, entrant in enumerate([current, *top])
        ]
        choice = choose(
            self.config.selection,
            self.config.margin,
            probed[0].left,
            [],
            [p.left for p in probed[1:]],
        )
        choice = Choice(choice.candidate, f"after {k} probe step(s): {choice.reason}")
        winner = next((p for p in probed if p.left is choice.candidate), probed[0])
        self.trainer.restore(winner.state)
        discarded = k * (len(probed) - 1)
        self.trainer.advance_schedule(discarded)
        state.counters.probe_steps += k * len(probed)
        state.counters.discarded_probe_steps += discarded
        state.trajectory.extend(winner.points)
        if choice.candidate is None:
            self._dev_eval(winner.left.rows, winner.left.result)
        else:
            self._restarted(choice.candidate, position, probed=True)
        return choice, tuple(p.record(p is winner) for p in probed)

    def _probe_one(self, entrant: Candidate, start: dict[str, Any], executed: int) -> Probed:
        """``entrant`` trained k steps from ``start`` with fresh prompt moments, then scored on
        dev with the head it trained (a backbone with a head trains it too). ``executed``:
        the optimizer steps the run had executed before this entrant's."""
        trainer, clock = self.trainer, self.book.state.clock
        trainer.restore(start)
        trainer.restart(entrant.rows, reset_moments=True)
        points = []
        for i in range(self.schedule.probe_steps):
            before = trainer.current_prompt()
            with clock.phase("gradient_s"):
                record = trainer.train_step()
            self.book.progress.stepped(executed + i + 1, record.loss)
            points.append(TrajectoryPoint(record.step - 1, record.loss, before))
        prompt = trainer.current_prompt()
        result = self.book.scorer.evaluate(prompt)
        left = replace(entrant, rows=prompt, result=result)
        return Probed(entrant, left, trainer.snapshot(), tuple(points))

    # -- f: restart -------------------------------------------------------------------------

    def _restarted(self, chosen: Candidate, position: int, probed: bool) -> None:
        """Record a restart from ``chosen``, which S now is, and offer it to the best-so-far.
        A probed restart continues from the k steps it took from fresh prompt moments."""
        self.book.state.restarts += 1
        assert chosen.result is not None
        step, number = self.trainer.step, self.book.number(position)
        how = f" after {self.schedule.probe_steps} probe steps" if probed else ""
        improved = self.book.offer(
            step, chosen.result, chosen.rows, f"restart of round {number}{how}"
        )
        self.book.run_dir.log(
            RestartEvent(
                **chosen.record().model_dump(),
                step=step,
                round=number,
                moments="reset" if probed else self.config.moments,
                improved=improved,
            )
        )


@dataclass
class HardPromptSearch:
    """llm-only, OPRO-style: each round the LLM sees every prompt scored so far (worst to best)
    and proposes C new ones, scored on dev; the best by dev is kept. No gradient step."""

    source: ProposalSource
    book: RoundBook
    start: Candidate

    def run(self) -> None:
        state = self.book.state
        if not state.history:
            (start,) = self.book.scorer.score([self.start])
            assert start.result is not None
            state.best.offer(0, start.result, start.rows, self.book.scorer.backbone)
            state.history.append(start)
            self.book.run_dir.log(DevEvalEvent(step=0, improved=True, **start.result.model_dump()))
            self.book.save()
        progress = self.book.progress
        for r in range(state.rounds_done, self.book.rounds):
            self.book.begin_round()
            current = min(state.history, key=_loss)
            progress.stage("LLM", round=self.book.round_label(r))
            proposals = self.source.propose(
                RoundInput(r, current, tuple(state.history), tuple(state.tried))
            )
            progress.stage("scoring proposals")
            scored = self.book.scorer.score(proposals.candidates)
            chosen = None
            for candidate in scored:
                assert candidate.result is not None
                if state.best.offer(0, candidate.result, candidate.rows, self.book.scorer.backbone):
                    chosen = candidate
                    state.best_origin = f"round {r + 1}: {candidate.text}"
            reason = (
                "no proposal beats the best prompt so far"
                if chosen is None
                else "the best prompt so far by dev score"
            )
            pool = list(state.history)
            state.history.extend(scored)
            state.tried.extend(c.text for c in scored)
            self.book.end_round(r, 0, pool, proposals, scored, chosen, reason, "best by dev")
            progress.stepped(r + 1)
