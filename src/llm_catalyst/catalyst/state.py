"""What a run mutates besides the trainer and the LLM gateway, and how it is written into a
checkpoint and read back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from llm_catalyst.backbones.base import Backbone
from llm_catalyst.catalyst.domain import Candidate, TrajectoryPoint
from llm_catalyst.records import (
    ComputeSpent,
    Metrics,
    RaceCut,
    RaceEntrant,
    RaceLeg,
    RaceRecord,
)
from llm_catalyst.training.best import BestTracker

PHASES = ("gradient_s", "scoring_s", "llm_s")


class Clock:
    """Seconds per phase plus the total, continued from ``spent`` when a run is resumed.

    The total counts the time of every process that worked on the run, not the time between
    a kill and the resume; work redone after a kill is counted again.
    """

    def __init__(self, spent: Mapping[str, float] | None = None):
        spent = dict(spent or {})
        self.phases = {name: float(spent.get(name, 0.0)) for name in PHASES}
        self._earlier_total = float(spent.get("total_s", 0.0))
        self._start = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] += time.perf_counter() - start

    def totals(self) -> dict[str, float]:
        total = self._earlier_total + time.perf_counter() - self._start
        return {"total_s": round(total, 3), **{k: round(v, 3) for k, v in self.phases.items()}}


@dataclass
class RaceProgress:
    """A start race as far as it has gone (catalyst/race.py): its entrants (``written``: the
    source's text where the fit cut it), the trainer state every entrant starts from, each
    surviving entrant's state after its last leg, the legs and cuts so far, and the winner once
    the race is over. Kept in the checkpoint, so a killed race resumes leg by leg."""

    entrants: list[Candidate]
    written: list[str | None]
    start: dict[str, Any]
    states: dict[int, dict[str, Any]] = field(default_factory=dict)
    legs: list[RaceLeg] = field(default_factory=list)
    cuts: list[RaceCut] = field(default_factory=list)
    winner: int | None = None

    def leg(self, rung: int, entrant: int) -> RaceLeg | None:
        return next((g for g in self.legs if (g.rung, g.entrant) == (rung, entrant)), None)

    def cut(self, rung: int) -> RaceCut | None:
        return next((c for c in self.cuts if c.rung == rung), None)

    def entrant_records(self) -> tuple[RaceEntrant, ...]:
        return tuple(
            RaceEntrant(text=c.text, origin=c.origin, detail=c.detail, index=i, written=w)
            for i, (c, w) in enumerate(zip(self.entrants, self.written, strict=True))
        )

    def record(self, steps: int, discarded: int) -> RaceRecord:
        assert self.winner is not None, "a race is recorded once it has a winner"
        return RaceRecord(
            entrants=self.entrant_records(),
            legs=tuple(self.legs),
            cuts=tuple(self.cuts),
            winner=self.winner,
            steps=steps,
            discarded_steps=discarded,
        )

    def to_payload(self) -> dict[str, Any]:
        return {
            "entrants": [_candidate_payload(c) for c in self.entrants],
            "written": list(self.written),
            "start": self.start,
            "states": {str(i): state for i, state in self.states.items()},
            "legs": [leg.model_dump() for leg in self.legs],
            "cuts": [cut.model_dump() for cut in self.cuts],
            "winner": self.winner,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> RaceProgress:
        return cls(
            entrants=[_candidate(c) for c in payload["entrants"]],
            written=list(payload["written"]),
            start=payload["start"],
            states={int(i): state for i, state in payload["states"].items()},
            legs=[RaceLeg.model_validate(leg) for leg in payload["legs"]],
            cuts=[RaceCut.model_validate(cut) for cut in payload["cuts"]],
            winner=payload["winner"],
        )


@dataclass
class LoopState:
    """Everything a run mutates besides the trainer and the LLM gateway.

    ``compute`` counts the work besides gradient steps as it is done (results.json's
    ``compute`` once the run sets its gradient steps). ``trajectory`` is the current stage's
    visited prompts, from which the round's pool is made. ``proposal_history`` holds every
    scored proposal: llm-only's search history, and the catalyst's proposals that the
    meta-prompt's ``own_history`` shows (so it survives a resume). ``scores`` holds the dev
    score of every prompt scored on the whole dev split, by ``DevScorer`` key: kept in the
    checkpoint so that a resumed run reuses what the killed one had scored, and counts its
    reuse as the uninterrupted run does."""

    best: BestTracker
    clock: Clock
    compute: ComputeSpent = field(default_factory=ComputeSpent)
    rounds_done: int = 0
    trajectory: list[TrajectoryPoint] = field(default_factory=list)
    tried: list[str] = field(default_factory=list)
    proposal_history: list[Candidate] = field(default_factory=list)
    skipped_rounds: int = 0
    restarts: int = 0
    best_origin: str = "initial prompt"
    zero_shot: Metrics | None = None
    scores: dict[str, Metrics] = field(default_factory=dict)
    race: RaceProgress | None = None

    @classmethod
    def fresh(cls, select_by: str) -> LoopState:
        return cls(best=BestTracker(select_by), clock=Clock())

    def offer(
        self, step: int, result: Metrics, prompt: torch.Tensor, origin: str, backbone: Backbone
    ) -> bool:
        """Offer a scored prompt to the best-so-far; True when it became the best (``origin``
        then says where it came from)."""
        improved = self.best.offer(step, result, prompt, backbone)
        if improved:
            self.best_origin = origin
        return improved

    def to_payload(self) -> dict[str, Any]:
        best = self.best
        return {
            "best": {
                "select_by": best.select_by,
                "result": _dict(best.result),
                "step": best.step,
                "prompt": best.prompt,
                "head": best.head,
                "origin": self.best_origin,
            },
            "clock": self.clock.totals(),
            "compute": self.compute.model_dump(),
            "rounds_done": self.rounds_done,
            "trajectory": [
                {"step": p.step, "loss": p.loss, "prompt": p.prompt} for p in self.trajectory
            ],
            "tried": list(self.tried),
            "proposal_history": [_candidate_payload(c) for c in self.proposal_history],
            "skipped_rounds": self.skipped_rounds,
            "restarts": self.restarts,
            "zero_shot": _dict(self.zero_shot),
            "scores": {key: result.model_dump() for key, result in self.scores.items()},
            "race": None if self.race is None else self.race.to_payload(),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> LoopState:
        saved = payload["best"]
        best = BestTracker(saved["select_by"])
        best.result = _result(saved["result"])
        best.step, best.prompt, best.head = saved["step"], saved["prompt"], saved["head"]
        return cls(
            best=best,
            clock=Clock(payload["clock"]),
            compute=ComputeSpent.model_validate(payload["compute"]),
            rounds_done=payload["rounds_done"],
            trajectory=[TrajectoryPoint(**p) for p in payload["trajectory"]],
            tried=list(payload["tried"]),
            proposal_history=[_candidate(c) for c in payload["proposal_history"]],
            skipped_rounds=payload["skipped_rounds"],
            restarts=payload["restarts"],
            best_origin=saved["origin"],
            zero_shot=_result(payload["zero_shot"]),
            scores={key: Metrics.model_validate(v) for key, v in payload["scores"].items()},
            race=None
            if payload.get("race") is None
            else RaceProgress.from_payload(payload["race"]),
        )


def _dict(result: Metrics | None) -> dict[str, Any] | None:
    return None if result is None else result.model_dump()


def _result(values: Mapping[str, Any] | None) -> Metrics | None:
    return None if values is None else Metrics.model_validate(values)


def _candidate_payload(candidate: Candidate) -> dict[str, Any]:
    return {
        "text": candidate.text,
        "rows": candidate.rows,
        "origin": candidate.origin,
        "detail": candidate.detail,
        "result": _dict(candidate.result),
    }


def _candidate(payload: Mapping[str, Any]) -> Candidate:
    return Candidate(
        payload["text"],
        payload["rows"],
        payload["origin"],
        payload["detail"],
        _result(payload["result"]),
    )
