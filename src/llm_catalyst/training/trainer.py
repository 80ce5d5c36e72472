"""Gradient prompt tuning: the optimiser, the schedule and a deterministic batch stream.

The trainer is built for stages: ``run(n)`` can be called repeatedly, the prompt can be replaced
between stages (``restart``) with the optimiser moments reset or kept, and the LR schedule keeps
counting global steps. The batch of step ``s`` and its dropout masks are pure functions of
``(seed, s)``, so a run resumed at step ``s`` sees exactly what an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from transformers import get_scheduler

from llm_catalyst.backbones.base import Backbone
from llm_catalyst.data.tasks import Example
from llm_catalyst.errors import TrainingError
from llm_catalyst.training.config import TrainConfig


@dataclass(frozen=True)
class StepRecord:
    step: int
    loss: float
    lr: float
    grad_norm: float


class NonFiniteLossError(TrainingError):
    """The training loss became NaN or infinite; the last good state is kept by the caller."""


class BatchStream:
    """An endless stream of shuffled training examples, reshuffled every epoch.

    Example ``i`` of the stream belongs to epoch ``i // n`` and is taken from that epoch's
    permutation, seeded by ``(seed, epoch)``: no hidden state, hence exact resume.
    """

    def __init__(self, examples: Sequence[Example], batch_size: int, seed: int):
        if not examples:
            raise ValueError("the training split is empty")
        self.examples = list(examples)
        self.batch_size = batch_size
        self.seed = seed
        self._epoch_cache: dict[int, np.ndarray] = {}

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._epoch_cache:
            rng = np.random.default_rng([self.seed, epoch])
            self._epoch_cache = {epoch: rng.permutation(len(self.examples))}
        return self._epoch_cache[epoch]

    def batch(self, step: int) -> list[Example]:
        n = len(self.examples)
        start = step * self.batch_size
        indices = range(start, start + self.batch_size)
        return [self.examples[self._permutation(i // n)[i % n]] for i in indices]


def _build_optimizer(
    config: TrainConfig, prompt: torch.nn.Parameter, head: list[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    groups: list[dict] = [{"params": [prompt], "lr": config.lr, "weight_decay": 0.0}]
    if head:
        groups.append(
            {
                "params": head,
                "lr": config.head_lr or config.lr,
                "weight_decay": config.weight_decay,
            }
        )
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr)
    optimizer_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return optimizer_class(groups, lr=config.lr, betas=config.betas)


class PromptTrainer:
    """Trains a soft prompt (and the backbone's head, if it has one) on a training split."""

    def __init__(
        self,
        backbone: Backbone,
        initial_prompt: torch.Tensor,
        train_examples: Sequence[Example],
        config: TrainConfig,
        seed: int,
        total_steps: int | None = None,
    ):
        self.backbone = backbone
        self.config = config
        self.prompt = torch.nn.Parameter(
            initial_prompt.detach().clone().to(backbone.device, backbone.embedding_table.dtype)
        )
        self.head_parameters = backbone.head_parameters()
        self.optimizer = _build_optimizer(config, self.prompt, self.head_parameters)
        self.scheduler = get_scheduler(
            config.schedule,
            self.optimizer,
            num_warmup_steps=config.warmup_steps,
            num_training_steps=max(total_steps or config.steps, 1),
        )
        self.stream = BatchStream(train_examples, config.batch_size, seed)
        self.step = 0

    def _trainable(self) -> list[torch.nn.Parameter]:
        return [self.prompt, *self.head_parameters]

    def train_step(self) -> StepRecord:
        """One optimizer step on the stream's next batch."""
        batch = self.backbone.collate(self.stream.batch(self.step)).to(self.backbone.device)
        self.backbone.train(True)
        self.optimizer.zero_grad(set_to_none=True)
        with torch.random.fork_rng(devices=[]):
            # Dropout draws from a generator seeded by (seed, step): exact resume, no RNG state.
            torch.manual_seed(self.stream.seed * 1_000_003 + self.step)
            scores = self.backbone.class_scores(self.prompt, batch)
        loss = F.cross_entropy(scores.float(), batch.labels)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss is {loss.item()} at step {self.step + 1}; lower the learning "
                "rate or initialise the prompt from vocabulary rows instead of zeros"
            )
        loss.backward()
        if self.config.max_grad_norm is not None:
            grad_norm = torch.nn.utils.clip_grad_norm_(self._trainable(), self.config.max_grad_norm)
        else:
            grad_norm = torch.linalg.vector_norm(
                torch.stack([p.grad.norm() for p in self._trainable() if p.grad is not None])
            )
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return StepRecord(self.step, loss.item(), lr, float(grad_norm))

    def run(self, steps: int, on_step: Callable[[StepRecord], None] | None = None) -> None:
        for _ in range(steps):
            record = self.train_step()
            if on_step is not None:
                on_step(record)

    def current_prompt(self) -> torch.Tensor:
        return self.prompt.detach().clone()

    def restart(self, prompt: torch.Tensor, reset_moments: bool) -> None:
        """Replace the prompt in place; the LR schedule keeps counting global steps."""
        with torch.no_grad():
            self.prompt.copy_(prompt.to(self.prompt.device, self.prompt.dtype))
        if reset_moments:
            self.optimizer.state.pop(self.prompt, None)

    def state_dict(self) -> dict:
        return {
            "prompt": self.current_prompt(),
            "head": self.backbone.head_state(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
        }

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.prompt.copy_(state["prompt"])
        self.backbone.load_head_state(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
