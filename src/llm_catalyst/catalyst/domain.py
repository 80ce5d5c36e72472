"""The loop's domain types: its rounds (``Round``), the prompts it visits (``TrajectoryPoint``)
and the prompts it may restart from (``Candidate``), and the pool of a stage (method.md 2b)
made from the visited prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from llm_catalyst.prompts.projection import Projection, Vocabulary
from llm_catalyst.records import CandidateRecord, Metrics, Origin, ProbeRecord, origin_text


@dataclass(frozen=True)
class TrajectoryPoint:
    """A prompt visited during a stage: ``step`` updates old, and the train loss it scored."""

    step: int
    loss: float
    prompt: torch.Tensor


@dataclass(frozen=True)
class Candidate:
    """A prompt the loop may restart from: its text, its (P, d) rows, where it came from (one
    of a closed set; ``detail`` says more, e.g. the pool text's step), and its dev score once
    scored."""

    text: str
    rows: torch.Tensor
    origin: Origin
    detail: str = ""
    result: Metrics | None = None

    @property
    def origin_text(self) -> str:
        return origin_text(self.origin, self.detail)

    @property
    def loss(self) -> float:
        assert self.result is not None, "only scored candidates are compared"
        return self.result.loss

    def scored(self, result: Metrics) -> Candidate:
        return replace(self, result=result)

    def record(self) -> CandidateRecord:
        return CandidateRecord(
            text=self.text,
            origin=self.origin,
            detail=self.detail,
            dev_loss=None if self.result is None else self.result.loss,
            dev_accuracy=None if self.result is None else self.result.accuracy,
            dev_n=None if self.result is None else self.result.n,
        )

    def probe_record(
        self, probed: Candidate, train_losses: Sequence[float], continued: bool
    ) -> ProbeRecord:
        """This candidate as it entered a probe, and ``probed``, as it left it."""
        assert self.result is not None and probed.result is not None
        return ProbeRecord(
            **self.record().model_dump(include={"text", "origin", "detail"}),
            dev_loss_before=self.loss,
            dev_accuracy_before=self.result.accuracy,
            **probed.record().model_dump(include={"dev_loss", "dev_accuracy"}),
            train_losses=tuple(train_losses),
            continued=continued,
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
        pool.append(Candidate(projection.text, rows, "pool", label))
    return pool


@dataclass(frozen=True)
class Round:
    """One round that asks the proposal source. ``index`` counts from 0 in the order the rounds
    run; ``number`` is what records and messages say: rounds count from 1, and the
    initialisation round (``loop.init_round``, before any gradient step) is round 0. ``label``
    is ``number/last`` as the progress shows it."""

    index: int
    number: int
    label: str
    is_init: bool


def rounds_of(rounds: int, init_round: bool) -> tuple[Round, ...]:
    """The rounds that ask the source: ``rounds`` regular ones, after round 0 when
    ``init_round`` (an LLM round before the first gradient step)."""
    first = 0 if init_round else 1
    return tuple(
        Round(index, index + first, f"{index + first}/{rounds}", init_round and index == 0)
        for index in range(rounds + init_round)
    )
