"""The catalyst loop of ``method.md``, readable top to bottom in ``CatalystLoop.run``.

    S is initialised by the caller (random vocabulary rows, a text, or a tensor)
    for each round r = 1..N:
      a. gradient stage: m optimizer steps on the train split; after every step the loop
         records (step, train loss, the prompt that loss was measured on)
      b. candidate pool: the distinct projected texts of the stage, at most K (the one with
         the lowest train loss, the rest spread over the stage), each re-embedded as the hard
         prompt it stands for, scored on dev together with the current S in batched passes
      c-d. proposals from the method's source; for the catalyst the LLM reads the task and
         the scored pool, worst to best, and writes C new texts fitted to P slots by the fit
         policy (``methods.LLMSource``); a source with nothing to offer (LLM unavailable,
         budget spent, no usable text) skips the round, which is recorded, and training goes on
      e. proposals scored on dev (batched); the selection policy picks the restart or keeps S
      f. restart: S <- the chosen rows; optimizer moments reset or kept; the LR schedule
         continues
    final stage: M more steps.
    The best S by dev score over the whole run is kept: the periodic dev evaluations, the
    current S of every round and every restart point are offered to it.

A checkpoint is written after every stage, after every round and when Ctrl-C was pressed
(then ``RunInterrupted`` is raised); ``run`` continues from whatever its state says was done.

Under ``accelerate launch`` every process runs this loop in lockstep: the trainer and the scorer
share their work, proposals come from the main process only (``MainProcessSource``), and a
Ctrl-C seen by any process stops all of them at the same step.

Public API:
    RoundInput, Proposals, ProposalSource       what a method's proposal source sees and returns
    MainProcessSource(source, dist)             a source asked on the main process only
    Choice, choose(selection, margin, current, pool, proposals)
    candidate_pool(trajectory, projections, vocab, size) -> list[Candidate]
    DevScorer(backbone, examples, batch_size, state, dist=None)   dev scoring, timed and counted
    CatalystLoop(...).run()
    RunInterrupted
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import numpy as np
import torch

from llm_catalyst.backbones.base import Backbone
from llm_catalyst.catalyst.checkpoint import Candidate, LoopState, StopRequest, TrajectoryPoint
from llm_catalyst.catalyst.config import LoopConfig, Schedule, Selection
from llm_catalyst.data.tasks import Example
from llm_catalyst.distributed import Distributed
from llm_catalyst.prompts.projection import Metric, Projection, Vocabulary, project, project_many
from llm_catalyst.rundir import RunDirectory
from llm_catalyst.training.scoring import EvalResult, evaluate, evaluate_many
from llm_catalyst.training.trainer import PromptTrainer


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run after writing a checkpoint; ``run --resume DIR`` continues it."""


@dataclass(frozen=True)
class RoundInput:
    """What a proposal source sees: the round (0-based), the scored current S and pool, and
    every text tried in earlier rounds."""

    round_index: int
    current: Candidate
    pool: tuple[Candidate, ...]
    tried: tuple[str, ...]


@dataclass(frozen=True)
class Proposals:
    """Restart candidates of one round; none means the round is skipped for ``skip_reason``.

    ``details`` is recorded with the round (LLM status, rejected texts and why, calls)."""

    candidates: tuple[Candidate, ...] = ()
    skip_reason: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


class ProposalSource(Protocol):
    """Where restarts come from: the LLM (catalyst), random tokens, the projected trajectory."""

    def propose(self, request: RoundInput) -> Proposals: ...


@dataclass
class MainProcessSource:
    """A proposal source asked on the main process only; every process gets its proposals.

    Only the main process calls the LLM (and holds its budget and cache); the others pass
    ``source=None`` and receive what the main process got, so all score and choose alike.
    """

    source: ProposalSource | None
    dist: Distributed

    def propose(self, request: RoundInput) -> Proposals:
        return self.dist.on_main(partial(self._ask, request))

    def _ask(self, request: RoundInput) -> Proposals:
        assert self.source is not None, "the main process holds the proposal source"
        return self.source.propose(request)


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
class CatalystLoop:
    """Steps 2 and 3 of method.md over a trainer whose prompt is S.

    ``source`` None runs the same stages with no rounds: plain prompt tuning. ``save`` writes
    a checkpoint of the whole run; ``say`` prints one line for the user; ``dist`` is the
    processes the run is shared by (they agree on when Ctrl-C stops them).
    """

    trainer: PromptTrainer
    schedule: Schedule
    config: LoopConfig
    source: ProposalSource | None
    scorer: DevScorer
    vocab: Vocabulary
    metric: Metric
    state: LoopState
    run_dir: RunDirectory
    save: Callable[[], None]
    stop: StopRequest
    eval_every: int
    say: Callable[[str], None]
    dist: Distributed = field(default_factory=Distributed.single)

    def run(self) -> None:
        source = self.source
        rounds = self.schedule.rounds if source is not None else 0
        for r in range(self.state.rounds_done, rounds):
            assert source is not None
            self._gradient_stage(until=self.schedule.round_end(r))  # a
            current, pool = self._score_pool()  # b
            request = RoundInput(r, current, tuple(pool), tuple(self.state.tried))
            proposals = source.propose(request)  # c, d
            scored = self.scorer.score(proposals.candidates)  # e
            choice = None
            if scored:
                choice = choose(self.config.selection, self.config.margin, current, pool, scored)
                if choice.candidate is not None:
                    self._restart(choice.candidate, r)  # f
            self._end_round(r, current, pool, proposals, scored, choice)
        self._gradient_stage(until=self.schedule.total_steps)  # 3
        self.save()

    # -- a: gradient stage ------------------------------------------------------------------

    def _gradient_stage(self, until: int) -> None:
        round_ends = {self.schedule.round_end(r) for r in range(self.schedule.rounds)}
        while self.trainer.step < until:
            before = self.trainer.current_prompt()
            with self.state.clock.phase("gradient_s"):
                record = self.trainer.train_step()
            self.run_dir.log_event(
                "train_step",
                step=record.step,
                loss=record.loss,
                lr=record.lr,
                grad_norm=record.grad_norm,
            )
            if self.source is not None:
                self.state.trajectory.append(TrajectoryPoint(record.step - 1, record.loss, before))
            # A round scores S at its own boundary; there the periodic evaluation would repeat it.
            at_round = self.source is not None and record.step in round_ends
            periodic = record.step % self.eval_every == 0 or record.step == until
            if periodic and not at_round:
                self._dev_eval()
            stopping = self.dist.any(self.stop.requested)
            if record.step in round_ends or stopping:
                self.save()
            self._stop_if(stopping)

    def _dev_eval(self) -> None:
        result = self.scorer.evaluate(self.trainer.prompt)
        improved = self._offer(result, self.trainer.prompt, f"step {self.trainer.step}")
        self.run_dir.log_event(
            "dev_eval", step=self.trainer.step, improved=improved, **result.as_dict()
        )

    def _offer(self, result: EvalResult, prompt: torch.Tensor, origin: str) -> bool:
        """Offer a scored prompt to the best-so-far; True when it became the best."""
        improved = self.state.best.offer(self.trainer.step, result, prompt, self.scorer.backbone)
        if improved:
            self.state.best_origin = origin
        return improved

    # -- b: candidate pool ------------------------------------------------------------------

    def _score_pool(self) -> tuple[Candidate, list[Candidate]]:
        trajectory = self.state.trajectory
        projections = project_many([p.prompt for p in trajectory], self.vocab, self.metric)
        self.run_dir.log_event(
            "trajectory",
            round=self.state.rounds_done + 1,
            points=[
                {"step": p.step, "loss": p.loss, "text": pr.text, "roundtrip_ok": pr.roundtrip_ok}
                for p, pr in zip(trajectory, projections, strict=True)
            ],
        )
        prompt = self.trainer.current_prompt()
        current = Candidate(project(prompt, self.vocab, self.metric).text, prompt, "current")
        pool = candidate_pool(trajectory, projections, self.vocab, self.config.pool_size)
        current, *pool = self.scorer.score([current, *pool])
        assert current.result is not None
        improved = self._offer(current.result, prompt, f"step {self.trainer.step}")
        self.run_dir.log_event(
            "dev_eval", step=self.trainer.step, improved=improved, **current.result.as_dict()
        )
        return current, pool

    # -- f: restart -------------------------------------------------------------------------

    def _restart(self, chosen: Candidate, round_index: int) -> None:
        self.trainer.restart(chosen.rows, reset_moments=self.config.moments == "reset")
        self.state.restarts += 1
        assert chosen.result is not None
        improved = self._offer(chosen.result, chosen.rows, f"restart of round {round_index + 1}")
        self.run_dir.log_event(
            "restart",
            step=self.trainer.step,
            round=round_index + 1,
            text=chosen.text,
            source=chosen.source,
            dev_loss=chosen.result.loss,
            dev_accuracy=chosen.result.accuracy,
            moments=self.config.moments,
            improved=improved,
        )

    # -- the round's record -----------------------------------------------------------------

    def _end_round(
        self,
        round_index: int,
        current: Candidate,
        pool: Sequence[Candidate],
        proposals: Proposals,
        scored: Sequence[Candidate],
        choice: Choice | None,
    ) -> None:
        skip_reason = (proposals.skip_reason or "no proposals") if not scored else None
        chosen = None if choice is None else choice.candidate
        reason = f"round skipped: {skip_reason}" if choice is None else choice.reason
        self.run_dir.log_event(
            "round",
            round=round_index + 1,
            step=self.trainer.step,
            pool=[c.record() for c in [current, *pool]],
            proposals=[c.record() for c in scored],
            chosen=None if chosen is None else chosen.record(),
            reason=reason,
            skipped=not scored,
            skip_reason=skip_reason,
            selection=self.config.selection,
            details=dict(proposals.details),
        )
        if not scored:
            self.state.skipped_rounds += 1
        self.state.tried.extend(c.text for c in [*pool, *scored])
        self.state.rounds_done = round_index + 1
        self.state.trajectory.clear()
        self.say(
            f"round {round_index + 1}/{self.schedule.rounds} at step {self.trainer.step}: {reason}"
        )
        self.save()
        self._stop_if(self.dist.any(self.stop.requested))

    def _stop_if(self, stopping: bool) -> None:
        if stopping:
            raise RunInterrupted(
                f"interrupted at step {self.trainer.step}; a checkpoint was written: continue "
                f"with `llm-catalyst run --resume {self.run_dir.path}`"
            )
