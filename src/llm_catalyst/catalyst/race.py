"""The start race (methods race, random-race and llm-init): where the LLM's value was measured
to lie, in the start (docs/results.md), chosen on dev inside the gradient budget.

The field is the seed's random start, the task's instruction and K texts from the method's
source, each fitted to the P slots (cut, never rejected for length), duplicates merged.
Successive halving on dev: every surviving entrant takes ``race.rung_steps`` steps from its own
state, on the same batches as its rivals, and the best 1/``race.eta`` by dev loss (ties by dev
accuracy) go on; the last one continues with its state. Every entrant's step counts against
``train.steps``. llm-init ranks the field once by dev loss before any step. Each leg and cut is
written and checkpointed as it ends, so a killed race resumes leg by leg to the same result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from llm_catalyst.catalyst.config import RaceConfig
from llm_catalyst.catalyst.dev_scorer import DevScorer
from llm_catalyst.catalyst.domain import Candidate, Round
from llm_catalyst.catalyst.output import RunOutput
from llm_catalyst.catalyst.schedule import survivors
from llm_catalyst.catalyst.sources import ProposalSource, RoundInput
from llm_catalyst.catalyst.state import LoopState, RaceProgress
from llm_catalyst.data.tasks import Task
from llm_catalyst.prompts.config import PromptConfig
from llm_catalyst.prompts.projection import Vocabulary, project
from llm_catalyst.prompts.soft_prompt import SoftPrompt, prompt_from_text
from llm_catalyst.records import (
    DevEvalEvent,
    Metrics,
    RaceCut,
    RaceCutEvent,
    RaceEntrantsEvent,
    RaceLeg,
    RaceLegEvent,
)
from llm_catalyst.training.trainer import PromptTrainer

# The round a race's source is asked in: before any step, like the catalyst's round 0.
RACE_ROUND = Round(index=0, number=0, label="race", is_init=True)


@dataclass(frozen=True)
class RaceField:
    """The entrants before the race (``written``: the source's text where the fit cut it) and
    what the source said about its answer."""

    entrants: tuple[Candidate, ...]
    written: tuple[str | None, ...]
    details: dict[str, Any]


def race_field(
    initial: SoftPrompt,
    task: Task,
    vocab: Vocabulary,
    prompt: PromptConfig,
    with_instruction: bool,
    source: ProposalSource,
) -> RaceField:
    """The random start, the instruction (``with_instruction`` and the task has one) and the
    source's texts, each fitted to the slots; an entrant whose slots equal an earlier one's is
    merged into it (recorded among the details' ``merged``)."""
    start_text = project(initial.embeddings, vocab, prompt.metric).text
    start = Candidate(start_text, initial.embeddings, "initial")
    field: list[tuple[Candidate, str | None]] = [(start, None)]
    if with_instruction and task.instruction:
        fitted = prompt_from_text(task.instruction, vocab, prompt.length, prompt.fit_policy())
        kept = vocab.tokenizer.decode([i for i in fitted.init_token_ids or () if i is not None])
        cut = kept.strip() != task.instruction.strip()
        text = kept.strip() if cut else task.instruction
        field.append(
            (Candidate(text, fitted.embeddings, "instruction"), task.instruction if cut else None)
        )
    proposals = source.propose(RoundInput(RACE_ROUND, start, (), ()))
    # A text may be cut twice: by the proposer to the word cap, then by the fit to the slots.
    written_by = {c["kept"]: c["text"] for c in proposals.details.get("cut", ())}
    fitted_as = {t["text"]: t["kept"] for t in proposals.details.get("truncated", ())}
    merged = []
    for candidate in proposals.candidates:
        same = next((c for c, _ in field if torch.equal(c.rows, candidate.rows)), None)
        if same is not None:
            merged.append({"text": candidate.text, "into": same.text})
            continue
        text = fitted_as.get(candidate.text, candidate.text)
        written = written_by.get(candidate.text, candidate.text)
        entrant = Candidate(text, candidate.rows, candidate.origin)
        field.append((entrant, written if written != text else None))
    details = {**proposals.details, "merged": merged}
    if proposals.skip_reason:
        details["skip_reason"] = proposals.skip_reason
    return RaceField(tuple(c for c, _ in field), tuple(w for _, w in field), details)


def _ranking(legs: Sequence[RaceLeg]) -> list[int]:
    """Entrants best first: by dev loss, ties by dev accuracy, then by entry order."""
    ordered = sorted(legs, key=lambda leg: (leg.dev_loss, -leg.dev_accuracy, leg.entrant))
    return [leg.entrant for leg in ordered]


@dataclass
class StartRace:
    """A start race over a trainer that stands at step 0; afterwards the trainer holds the
    winner's state, its LR schedule moved past the steps the cut entrants took, so the final
    stage (the catalyst loop without rounds) trains it for what the budget leaves."""

    trainer: PromptTrainer
    scorer: DevScorer
    state: LoopState
    race: RaceConfig
    rungs: bool
    output: RunOutput

    def run(self, field: Callable[[], RaceField]) -> None:
        progress = self.state.race
        if progress is None:
            progress = self._enter(field)
        if progress.winner is not None:
            return
        alive = list(range(len(progress.entrants)))
        if len(alive) > 1 and (self.race.zero_step_rung or not self.rungs):
            alive = self._zero_step_rung(progress, alive)
        rung = 1
        while self.rungs and len(alive) > 1:
            for entrant in alive:
                if progress.leg(rung, entrant) is None:
                    self._leg(progress, rung, entrant)
            alive = self._cut(progress, rung, alive, survivors(len(alive), self.race.eta))
            rung += 1
        self._finish(progress, alive[0])

    def _enter(self, field: Callable[[], RaceField]) -> RaceProgress:
        """Ask the source once (abandoned at once on a stop: nothing is written before it)."""
        self.output.progress.stage("race entrants", round="race")
        with self.output.stop.abandonable("the race's entrants"):
            entered = field()
        progress = RaceProgress(
            list(entered.entrants), list(entered.written), self.trainer.snapshot()
        )
        self.state.race = progress
        self.output.log(
            RaceEntrantsEvent(entrants=progress.entrant_records(), details=entered.details)
        )
        names = ", ".join(c.origin for c in progress.entrants)
        self.output.say(f"race: {len(progress.entrants)} entrant(s) ({names})")
        self.output.checkpoint()
        return progress

    def _zero_step_rung(self, progress: RaceProgress, alive: list[int]) -> list[int]:
        """Rung 0: the entrants' dev scores before any step; llm-init keeps only the best."""
        done = progress.cut(0)
        if done is not None:
            return list(done.survivors)
        self.output.progress.stage("race rung 0")
        with self.output.stop.abandonable("the race's rung 0"):
            scored = self.scorer.score([progress.entrants[i] for i in alive])
        for entrant, candidate in zip(alive, scored, strict=True):
            assert candidate.result is not None
            progress.entrants[entrant] = candidate
            self._record_leg(progress, 0, entrant, 0, (), candidate.result)
        keep = survivors(len(alive), self.race.eta) if self.rungs else 1
        return self._cut(progress, 0, alive, keep)

    def _leg(self, progress: RaceProgress, rung: int, entrant: int) -> None:
        """``entrant`` takes ``race.rung_steps`` steps from its own state (the shared start with
        fresh moments the first time), then is scored on dev."""
        trainer, state = self.trainer, self.state
        self.output.progress.stage(f"race rung {rung}")
        if entrant in progress.states:
            trainer.restore(progress.states[entrant])
        else:
            trainer.restore(progress.start)
            trainer.restart(progress.entrants[entrant].rows, reset_moments=True)
        losses = []
        for _ in range(self.race.rung_steps):
            with state.clock.phase("gradient_s"):
                record = trainer.train_step()
            state.compute.race_steps += 1
            self.output.progress.stepped(state.compute.race_steps, record.loss)
            losses.append(record.loss)
        result = self.scorer.evaluate(trainer.current_prompt())
        progress.states[entrant] = trainer.snapshot()
        self._record_leg(progress, rung, entrant, trainer.step, tuple(losses), result)
        self.output.checkpoint()
        self.output.stop.honour(
            self.output.stop.anywhere(), f"in race rung {rung} after entrant {entrant}"
        )

    def _record_leg(
        self,
        progress: RaceProgress,
        rung: int,
        entrant: int,
        steps: int,
        losses: tuple[float, ...],
        result: Metrics,
    ) -> None:
        leg = RaceLeg(
            rung=rung,
            entrant=entrant,
            steps=steps,
            train_losses=losses,
            dev_loss=result.loss,
            dev_accuracy=result.accuracy,
            dev_n=result.n,
        )
        progress.legs.append(leg)
        self.output.log(RaceLegEvent(**leg.model_dump()))

    def _cut(self, progress: RaceProgress, rung: int, alive: list[int], keep: int) -> list[int]:
        done = progress.cut(rung)
        if done is not None:
            return list(done.survivors)
        ranking = _ranking([g for g in progress.legs if g.rung == rung and g.entrant in alive])
        kept = sorted(ranking[:keep])
        cut = RaceCut(rung=rung, ranking=tuple(ranking), survivors=tuple(kept))
        progress.cuts.append(cut)
        for dropped in ranking[keep:]:
            progress.states.pop(dropped, None)
        self.output.log(RaceCutEvent(**cut.model_dump()))
        texts = ", ".join(repr(progress.entrants[i].text) for i in kept)
        self.output.say(f"race rung {rung}: {len(ranking)} -> {len(kept)}: {texts}")
        self.output.checkpoint()
        return kept

    def _finish(self, progress: RaceProgress, winner: int) -> None:
        """The trainer takes the winner's state; the cut entrants' steps are spent budget, so
        the LR schedule moves past them. The winner's last dev score is offered to the
        best-so-far (at the step it reached)."""
        trainer, state = self.trainer, self.state
        if winner in progress.states:
            trainer.restore(progress.states[winner])
        else:
            trainer.restore(progress.start)
            trainer.restart(progress.entrants[winner].rows, reset_moments=True)
        discarded = state.compute.race_steps - trainer.step
        trainer.advance_schedule(discarded)
        state.compute.discarded_race_steps = discarded
        progress.winner = winner
        progress.states.clear()
        legs = [g for g in progress.legs if g.entrant == winner]
        if legs:
            last = legs[-1]
            result = Metrics(loss=last.dev_loss, accuracy=last.dev_accuracy, n=last.dev_n)
            entrant = progress.entrants[winner]
            origin = f"race winner ({entrant.origin_text or entrant.origin})"
            prompt = trainer.current_prompt()
            improved = state.offer(trainer.step, result, prompt, origin, self.scorer.backbone)
            self.output.log(
                DevEvalEvent(step=trainer.step, improved=improved, **result.model_dump())
            )
        self.output.say(f"race won by entrant {winner}: {progress.entrants[winner].text!r}")
        self.output.checkpoint()
