"""The state a run carries between steps, and the checkpoints that let it survive a kill.

Batches and dropout are pure functions of (seed, step) and LLM answers replay from the response
cache, so a run resumed from its last checkpoint ends exactly where the uninterrupted run would.
"""

from __future__ import annotations

import hashlib
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from llm_catalyst.errors import ConfigError
from llm_catalyst.llm.budget import Budget
from llm_catalyst.records import CandidateRecord, ComputeSpent, Metrics
from llm_catalyst.rundir import RunDirectory
from llm_catalyst.training.best import BestTracker
from llm_catalyst.training.trainer import PromptTrainer

FORMAT_VERSION = 1
PHASES = ("gradient_s", "scoring_s", "llm_s")


@dataclass(frozen=True)
class TrajectoryPoint:
    """A prompt visited during a stage: ``step`` updates old, and the train loss it scored."""

    step: int
    loss: float
    prompt: torch.Tensor


@dataclass(frozen=True)
class Candidate:
    """A prompt the loop may restart from: its text, its (P, d) rows, where it came from, and
    its dev score once scored."""

    text: str
    rows: torch.Tensor
    source: str
    result: Metrics | None = None

    def scored(self, result: Metrics) -> Candidate:
        return replace(self, result=result)

    def record(self) -> CandidateRecord:
        return CandidateRecord(
            text=self.text,
            source=self.source,
            dev_loss=None if self.result is None else self.result.loss,
            dev_accuracy=None if self.result is None else self.result.accuracy,
            dev_n=None if self.result is None else self.result.n,
        )


@dataclass
class Counters:
    """Evaluation spent besides gradient steps (prompts scored on the whole dev split, those
    whose score was reused instead, those a race dropped after a part of it; sequences run;
    train sequences score the current prompt on train to show its errors to the LLM), and the
    optimizer steps taken in probes: all of them, and those of entrants that did not continue."""

    dev_prompts: int = 0
    dev_prompts_reused: int = 0
    dev_prompts_raced_out: int = 0
    dev_forward_passes: int = 0
    test_forward_passes: int = 0
    probe_steps: int = 0
    discarded_probe_steps: int = 0
    train_forward_passes: int = 0

    def spent(self, gradient_steps: int, batch_size: int) -> ComputeSpent:
        """results.json's record of the work, with ``gradient_steps`` every optimizer step."""
        return ComputeSpent(
            gradient_steps=gradient_steps,
            train_examples_seen=gradient_steps * batch_size,
            dev_prompts_scored=self.dev_prompts,
            dev_prompts_reused=self.dev_prompts_reused,
            dev_prompts_raced_out=self.dev_prompts_raced_out,
            dev_forward_passes=self.dev_forward_passes,
            train_forward_passes=self.train_forward_passes,
            test_forward_passes=self.test_forward_passes,
            probe_steps=self.probe_steps,
            discarded_probe_steps=self.discarded_probe_steps,
        )


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

    ``history`` holds every scored proposal: llm-only's search history, and the catalyst's
    proposals that the meta-prompt's ``own_history`` shows (so it survives a resume).
    ``scores`` holds the dev score of every prompt scored on the whole dev split, by
    ``DevScorer`` key: kept in the checkpoint so that a resumed run reuses what the killed one
    had scored, and counts its reuse as the uninterrupted run does."""

    best: BestTracker
    clock: Clock
    counters: Counters = field(default_factory=Counters)
    rounds_done: int = 0
    trajectory: list[TrajectoryPoint] = field(default_factory=list)
    tried: list[str] = field(default_factory=list)
    history: list[Candidate] = field(default_factory=list)
    skipped_rounds: int = 0
    restarts: int = 0
    best_origin: str = "initial prompt"
    zero_shot: dict[str, float] | None = None
    scores: dict[str, Metrics] = field(default_factory=dict)

    @classmethod
    def fresh(cls, select_by: str) -> LoopState:
        return cls(best=BestTracker(select_by), clock=Clock())

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
            "counters": vars(self.counters).copy(),
            "rounds_done": self.rounds_done,
            "trajectory": [
                {"step": p.step, "loss": p.loss, "prompt": p.prompt} for p in self.trajectory
            ],
            "tried": list(self.tried),
            "history": [
                {"text": h.text, "rows": h.rows, "source": h.source, "result": _dict(h.result)}
                for h in self.history
            ],
            "skipped_rounds": self.skipped_rounds,
            "restarts": self.restarts,
            "zero_shot": self.zero_shot,
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
            counters=Counters(**payload["counters"]),
            rounds_done=payload["rounds_done"],
            trajectory=[TrajectoryPoint(**p) for p in payload["trajectory"]],
            tried=list(payload["tried"]),
            history=[
                Candidate(h["text"], h["rows"], h["source"], _result(h["result"]))
                for h in payload["history"]
            ],
            skipped_rounds=payload["skipped_rounds"],
            restarts=payload["restarts"],
            best_origin=saved["origin"],
            zero_shot=payload["zero_shot"],
            scores={key: Metrics.model_validate(v) for key, v in payload.get("scores", {}).items()},
        )


def _dict(result: Metrics | None) -> dict[str, float] | None:
    return None if result is None else result.model_dump()


def _result(values: Mapping[str, Any] | None) -> Metrics | None:
    if values is None:
        return None
    return Metrics.model_validate(values)


def config_digest(run: RunDirectory) -> str:
    """sha256 of config.yaml: a checkpoint only resumes the configuration it was made with."""
    return hashlib.sha256((run.path / "config.yaml").read_bytes()).hexdigest()


def _rng_state() -> dict[str, Any]:
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), position, has_gauss, cached],
    }


def _restore_rng(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))


def _tuples(value: Any) -> Any:
    """random.setstate wants the nested tuples getstate gave; a checkpoint may hold lists."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list | tuple) else value


def checkpoint_payload(
    run: RunDirectory,
    state: LoopState,
    trainer: PromptTrainer | None,
    budget: Budget | None,
) -> dict[str, Any]:
    """Trainer, loop state, LLM usage, RNG states, the config's hash and the size of
    events.jsonl at this moment (a resumed run drops the events logged after it)."""
    return {
        "version": FORMAT_VERSION,
        "config_sha256": config_digest(run),
        "state": state.to_payload(),
        "trainer": None if trainer is None else trainer.state_dict(),
        "budget": None if budget is None else budget.state_dict(),
        "events_size": run.events_size(),
        "rng": _rng_state(),
    }


def restore_checkpoint(
    run: RunDirectory,
    payload: Mapping[str, Any],
    trainer: PromptTrainer | None,
    budget: Budget | None,
) -> None:
    """Load the trainer, LLM usage and RNG states, and cut events.jsonl back to the checkpoint.

    The loop state is read separately (``LoopState.from_payload``) because it is needed before
    the trainer exists. Refuses a checkpoint of another format or of an edited config.yaml.
    """
    if payload.get("version") != FORMAT_VERSION:
        raise ConfigError(
            f"{run.checkpoint_path}: checkpoint format {payload.get('version')} is not "
            f"{FORMAT_VERSION}; it was written by another version of llm-catalyst: resume it "
            "with that version or delete the checkpoint to rerun from the start"
        )
    if payload["config_sha256"] != config_digest(run):
        raise ConfigError(
            f"{run.path / 'config.yaml'} changed after the checkpoint was written; a resumed "
            "run must use the configuration it started with: restore the file, or start a new "
            "run with the new configuration"
        )
    if trainer is not None:
        trainer.load_state_dict(payload["trainer"])
    if budget is not None and payload["budget"] is not None:
        budget.load_state_dict(payload["budget"])
    _restore_rng(payload["rng"])
    run.truncate_events(payload["events_size"])


class StopRequest:
    """Ctrl-C (SIGINT) handling for a run: the first press asks the loop to stop at the next
    step boundary, after writing a checkpoint; a second press aborts at once.

    Used as a context manager; outside the main thread (where signals cannot be caught) it
    installs nothing and a Ctrl-C interrupts as usual.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\nCtrl-C: stopping after the current step with a checkpoint "
            "(press Ctrl-C again to abort without one)",
            file=sys.stderr,
            flush=True,
        )
