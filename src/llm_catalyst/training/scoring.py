"""Evaluation of one or many prompts on a split, without gradients.

Examples are sorted by length before batching so that dynamic padding wastes little; the
metrics are order-independent, so sorting changes nothing but speed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from llm_catalyst.backbones.base import Backbone
from llm_catalyst.data.tasks import Example


@dataclass(frozen=True)
class EvalResult:
    loss: float
    accuracy: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"loss": self.loss, "accuracy": self.accuracy, "n": self.n}


def _length_sorted(backbone: Backbone, examples: Sequence[Example]) -> list[Example]:
    return sorted(examples, key=lambda ex: len(backbone.task.render(ex)))


@torch.inference_mode()
def evaluate(
    backbone: Backbone, prompt: torch.Tensor, examples: Sequence[Example], batch_size: int = 64
) -> EvalResult:
    """Mean cross-entropy and accuracy of ``prompt`` (P, d) on ``examples``."""
    if not examples:
        raise ValueError("cannot evaluate on an empty split")
    backbone.train(False)
    ordered = _length_sorted(backbone, examples)
    total_loss = 0.0
    correct = 0
    for start in range(0, len(ordered), batch_size):
        batch = backbone.collate(ordered[start : start + batch_size]).to(backbone.device)
        scores = backbone.class_scores(prompt, batch).float()
        total_loss += F.cross_entropy(scores, batch.labels, reduction="sum").item()
        correct += int((scores.argmax(dim=-1) == batch.labels).sum())
    return EvalResult(total_loss / len(ordered), correct / len(ordered), len(ordered))
