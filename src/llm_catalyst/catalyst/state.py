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
from llm_catalyst.records import ComputeSpent, Metrics
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
            "proposal_history": [
                {
                    "text": c.text,
                    "rows": c.rows,
                    "origin": c.origin,
                    "detail": c.detail,
                    "result": _dict(c.result),
                }
                for c in self.proposal_history
            ],
            "skipped_rounds": self.skipped_rounds,
            "restarts": self.restarts,
            "zero_shot": _dict(self.zero_shot),
            "scores": {key: result.model_dump() for key, result in self.scores.items()},
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
            proposal_history=[
                Candidate(c["text"], c["rows"], c["origin"], c["detail"], _result(c["result"]))
                for c in payload["proposal_history"]
            ],
            skipped_rounds=payload["skipped_rounds"],
            restarts=payload["restarts"],
            best_origin=saved["origin"],
            zero_shot=_result(payload["zero_shot"]),
            scores={key: Metrics.model_validate(v) for key, v in payload["scores"].items()},
        )


def _dict(result: Metrics | None) -> dict[str, Any] | None:
    return None if result is None else result.model_dump()


def _result(values: Mapping[str, Any] | None) -> Metrics | None:
    return None if values is None else Metrics.model_validate(values)
