"""Evaluation of one or many prompts on a split, without gradients.

Examples are sorted by length so that dynamic padding wastes little; the metrics do not depend on
the order, nor on the number of processes (docs/design.md, "Data-parallel runs").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from llm_catalyst.backbones.base import Backbone, Batch
from llm_catalyst.data.tasks import Example
from llm_catalyst.distributed import Distributed
from llm_catalyst.records import Metrics


def _length_sorted(backbone: Backbone, examples: Sequence[Example]) -> list[Example]:
    return sorted(examples, key=lambda ex: len(backbone.task.render(ex)))


@torch.inference_mode()
def evaluate(
    backbone: Backbone,
    prompt: torch.Tensor,
    examples: Sequence[Example],
    batch_size: int = 64,
    dist: Distributed | None = None,
) -> Metrics:
    """Mean cross-entropy and accuracy of ``prompt`` (P, d) on ``examples``."""
    if not examples:
        raise ValueError("cannot evaluate on an empty split")
    dist = dist or Distributed.single()
    backbone.train(False)
    ordered = _length_sorted(backbone, examples)
    total_loss = 0.0
    correct = 0
    for start in dist.shard(range(0, len(ordered), batch_size)):
        batch = backbone.collate(ordered[start : start + batch_size]).to(backbone.device)
        with dist.autocast():
            scores = backbone.class_scores(prompt, batch).float()
        total_loss += F.cross_entropy(scores, batch.labels, reduction="sum").item()
        correct += int((scores.argmax(dim=-1) == batch.labels).sum())
    if dist.world_size > 1:
        summed = dist.sum(torch.tensor([total_loss, correct], dtype=torch.float64))
        total_loss, correct = float(summed[0]), round(float(summed[1]))
    return Metrics(loss=total_loss / len(ordered), accuracy=correct / len(ordered), n=len(ordered))


@torch.inference_mode()
def predict(
    backbone: Backbone, prompt: torch.Tensor, examples: Sequence[Example], batch_size: int = 64
) -> list[int]:
    """The class ``prompt`` makes the backbone pick for each example, in the given order.

    One process only: it serves the meta-prompt's errors, which the main process alone writes.
    """
    backbone.train(False)
    classes: list[int] = []
    for start in range(0, len(examples), batch_size):
        batch = backbone.collate(examples[start : start + batch_size]).to(backbone.device)
        classes.extend(backbone.class_scores(prompt, batch).argmax(dim=-1).tolist())
    return classes


def _repeat(batch: Batch, copies: int) -> Batch:
    """``copies`` copies of a batch stacked along the rows (candidate-major)."""
    return Batch(
        inputs={k: v.repeat(copies, *([1] * (v.dim() - 1))) for k, v in batch.inputs.items()},
        labels=batch.labels.repeat(copies),
        meta=batch.meta,
    )


@torch.inference_mode()
def evaluate_many(
    backbone: Backbone,
    prompts: torch.Tensor | Sequence[torch.Tensor],
    examples: Sequence[Example],
    batch_size: int = 64,
    dist: Distributed | None = None,
) -> list[Metrics]:
    """``evaluate`` for K candidate prompts at once: candidates x examples share forward passes.

    ``prompts`` is (K, P, d) or a list of (P, d) tensors of one length. Each forward pass holds
    up to ``batch_size`` rows: a group of length-sorted examples, tokenised once and repeated for
    every candidate, with a (rows, P, d) prompt stack. Results are in the order of ``prompts``.
    """
    stack = prompts if isinstance(prompts, torch.Tensor) else torch.stack(list(prompts))
    if stack.dim() != 3:
        raise ValueError(f"prompts must be (K, P, d) or a list of (P, d), got {tuple(stack.shape)}")
    if not examples:
        raise ValueError("cannot evaluate on an empty split")
    k = stack.shape[0]
    if k == 0:
        return []
    dist = dist or Distributed.single()
    backbone.train(False)
    stack = stack.to(backbone.device)
    per_pass = max(1, batch_size // k)
    candidates_per_pass = max(1, batch_size // per_pass)
    ordered = _length_sorted(backbone, examples)
    losses = torch.zeros(k, dtype=torch.float64)
    correct = torch.zeros(k, dtype=torch.long)
    for start in dist.shard(range(0, len(ordered), per_pass)):
        batch = backbone.collate(ordered[start : start + per_pass]).to(backbone.device)
        rows = len(batch)
        for first in range(0, k, candidates_per_pass):
            group = stack[first : first + candidates_per_pass]
            copies = group.shape[0]
            with dist.autocast():
                scores = backbone.class_scores(
                    group.repeat_interleave(rows, dim=0), _repeat(batch, copies)
                ).float()
            labels = batch.labels.repeat(copies)
            loss = F.cross_entropy(scores, labels, reduction="none").view(copies, rows)
            hits = (scores.argmax(dim=-1) == labels).view(copies, rows)
            losses[first : first + copies] += loss.sum(dim=1).double().cpu()
            correct[first : first + copies] += hits.sum(dim=1).cpu()
    losses, correct = dist.sum(losses), dist.sum(correct)
    n = len(ordered)
    return [
        Metrics(loss=float(loss) / n, accuracy=int(hit) / n, n=n)
        for loss, hit in zip(losses, correct, strict=True)
    ]


def evaluate_hard_prompt(
    backbone: Backbone,
    examples: Sequence[Example],
    batch_size: int = 64,
    dist: Distributed | None = None,
) -> Metrics:
    """The task's template alone, with no soft prompt: the zero-shot baseline."""
    table = backbone.embedding_table
    return evaluate(backbone, table.new_zeros(0, table.shape[1]), examples, batch_size, dist)
