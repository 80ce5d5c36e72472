"""The best prompt (and head) by dev score seen so far in a run: what a run keeps and tests."""

from __future__ import annotations

import torch

from llm_catalyst.backbones.base import Backbone
from llm_catalyst.records import Metrics


def _better(candidate: Metrics, incumbent: Metrics | None, select_by: str) -> bool:
    if incumbent is None:
        return True
    if select_by == "loss":
        return candidate.loss < incumbent.loss
    return (candidate.accuracy, -candidate.loss) > (incumbent.accuracy, -incumbent.loss)


class BestTracker:
    """Keeps the prompt (and head) with the best dev score seen so far."""

    def __init__(self, select_by: str):
        self.select_by = select_by
        self.result: Metrics | None = None
        self.step = 0
        self.prompt: torch.Tensor | None = None
        self.head: dict[str, torch.Tensor] = {}

    def offer(self, step: int, result: Metrics, prompt: torch.Tensor, backbone: Backbone) -> bool:
        if not _better(result, self.result, self.select_by):
            return False
        self.result, self.step, self.prompt = result, step, prompt.detach().clone()
        self.head = {k: v.detach().clone() for k, v in backbone.head_state().items()}
        return True
