"""Dev scoring, timed and counted: every selection of the loop is made by these scores."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import zip_longest

import numpy as np
import torch

from llm_catalyst.backbones.base import Backbone
from llm_catalyst.catalyst.config import ScoringPath
from llm_catalyst.catalyst.domain import Candidate
from llm_catalyst.catalyst.state import LoopState
from llm_catalyst.data.tasks import Example
from llm_catalyst.distributed import Distributed
from llm_catalyst.records import Metrics, RaceStage
from llm_catalyst.training.scoring import evaluate, evaluate_many


class DevScorer:
    """Scores prompts on the dev split, timing it and counting the forward passes spent.

    A prompt's dev score is a pure function of its rows, the backbone's head and the way it was
    scored, so a prompt scored again (the pool repeats its projected texts round after round
    at small learning rates; round 0 scores the initial S once more) reuses the score kept in
    ``state.scores`` instead: the same number, counted as reused. Several candidates are
    scored one packed pass each (``sequential``) or stacked in shared passes (``stacked``); the
    two agree to float rounding, and each is faster on its own kind of device
    (docs/design.md, "Candidate scoring").
    """

    def __init__(
        self,
        backbone: Backbone,
        examples: Sequence[Example],
        batch_size: int,
        state: LoopState,
        dist: Distributed | None = None,
        path: ScoringPath = "auto",
        seed: int = 0,
    ):
        self.backbone = backbone
        self.examples = examples
        self.batch_size = batch_size
        self.state = state
        self.dist = dist or Distributed.single()
        self.stacked = stacked_scoring(path, backbone.device)
        self.seed = seed

    def _spent(self, prompts: int) -> None:
        self.state.compute.dev_prompts_scored += prompts
        self.state.compute.dev_forward_passes += prompts * len(self.examples)

    def _key(self, prompt: torch.Tensor, way: str) -> str:
        """What determines a score besides the fixed dev split and batch size: the way it was
        computed, the exact prompt rows and the head's state (a backbone with a head trains it
        along with the prompt, so the same rows score differently later)."""
        digest = hashlib.sha256(way.encode())
        for tensor in [prompt, *(v for _, v in sorted(self.backbone.head_state().items()))]:
            value = tensor.detach().to("cpu", torch.float32).contiguous()
            digest.update(str(tuple(value.shape)).encode())
            digest.update(value.numpy().tobytes())
        return digest.hexdigest()

    def evaluate(self, prompt: torch.Tensor) -> Metrics:
        """One prompt's score on the whole dev split, reused when already known."""
        key = self._key(prompt, "sequential")
        known = self.state.scores.get(key)
        if known is not None:
            self.state.compute.dev_prompts_reused += 1
            return known
        with self.state.clock.phase("scoring_s"):
            result = evaluate(self.backbone, prompt, self.examples, self.batch_size, self.dist)
        self._spent(1)
        self.state.scores[key] = result
        return result

    def score(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """Every unscored candidate scored on the whole dev split; order kept."""
        if not self.stacked:
            return [
                c if c.result is not None else c.scored(self.evaluate(c.rows)) for c in candidates
            ]
        scored = list(candidates)
        keys = {
            i: self._key(c.rows, "stacked") for i, c in enumerate(candidates) if c.result is None
        }
        todo = []
        for i, key in keys.items():
            known = self.state.scores.get(key)
            if known is None:
                todo.append(i)
            else:
                scored[i] = candidates[i].scored(known)
                self.state.compute.dev_prompts_reused += 1
        if todo:
            with self.state.clock.phase("scoring_s"):
                results = evaluate_many(
                    self.backbone,
                    [candidates[i].rows for i in todo],
                    self.examples,
                    self.batch_size,
                    self.dist,
                )
            self._spent(len(todo))
            for i, result in zip(todo, results, strict=True):
                scored[i] = candidates[i].scored(result)
                self.state.scores[keys[i]] = result
        return scored

    def race(self, candidates: Sequence[Candidate], finalists: int, start: int) -> Race:
        """Successive halving on dev: the candidates are scored on the first ``start``
        examples of the dev split's seeded order, the better half by loss (never fewer than
        ``finalists``) on the next as many, and so on while the subset is smaller than the
        split; the survivors, the finalists, are then scored on the whole dev split exactly as
        ``score`` scores them. Dropped candidates keep the score of the subset they reached
        (its size is their result's ``n``)."""
        order = self._race_order()
        alive = list(range(len(candidates)))
        totals = dict.fromkeys(alive, (0.0, 0))
        partial: dict[int, Metrics] = {}
        stages: list[RaceStage] = []
        done, size = 0, min(start, len(order))
        while len(alive) > finalists and size < len(order):
            part = [self.examples[j] for j in order[done:size]]
            for i, result in zip(alive, self._score_part(candidates, alive, part), strict=True):
                loss, correct = totals[i]
                loss += result.loss * result.n
                correct += round(result.accuracy * result.n)
                totals[i] = (loss, correct)
                partial[i] = Metrics(loss=loss / size, accuracy=correct / size, n=size)
            kept = max(finalists, -(-len(alive) // 2))
            stages.append(RaceStage(examples=size, entrants=len(alive), kept=kept))
            alive = sorted(sorted(alive, key=lambda i: (partial[i].loss, i))[:kept])
            done, size = size, size * 2
        final = dict(zip(alive, self.score([candidates[i] for i in alive]), strict=True))
        self.state.compute.dev_prompts_raced_out += len(candidates) - len(alive)
        scored = [final.get(i) or c.scored(partial[i]) for i, c in enumerate(candidates)]
        return Race(scored, [final[i] for i in alive], tuple(stages))

    def _score_part(
        self, candidates: Sequence[Candidate], chosen: Sequence[int], part: Sequence[Example]
    ) -> list[Metrics]:
        """The chosen candidates' scores on a part of the dev split (never reused: the reused
        scores are over the whole split)."""
        rows = [candidates[i].rows for i in chosen]
        with self.state.clock.phase("scoring_s"):
            if self.stacked:
                results = evaluate_many(self.backbone, rows, part, self.batch_size, self.dist)
            else:
                results = [
                    evaluate(self.backbone, r, part, self.batch_size, self.dist) for r in rows
                ]
        self.state.compute.dev_forward_passes += len(rows) * len(part)
        return results

    def _race_order(self) -> list[int]:
        """The dev split in a seeded order that takes each label in turn, so that a race's
        first subsets hold every class; the same order every round."""
        rng = np.random.default_rng([self.seed, 0x7ACE])
        by_label: dict[int, list[int]] = {}
        for i in rng.permutation(len(self.examples)).tolist():
            by_label.setdefault(self.examples[i].label, []).append(i)
        turns = zip_longest(*(by_label[label] for label in sorted(by_label)))
        return [i for turn in turns for i in turn if i is not None]


@dataclass(frozen=True)
class Race:
    """A race's outcome: every candidate scored (in the order given), the finalists scored on
    the whole dev split, and the stages before."""

    scored: list[Candidate]
    finalists: list[Candidate]
    stages: tuple[RaceStage, ...]


def stacked_scoring(path: ScoringPath, device: torch.device) -> bool:
    """Whether several candidates are stacked in shared passes: ``auto`` stacks them on a GPU,
    which one packed prompt leaves under-filled, and not on a CPU, where the packed single-
    prompt passes are faster (benchmarks/candidate_scoring.py: 8.9 s against 13.1 s)."""
    if path == "auto":
        return device.type != "cpu"
    return path == "stacked"
