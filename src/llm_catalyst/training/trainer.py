"""Gradient prompt tuning: the optimiser, the schedule and a deterministic batch stream.

Built for stages with restarts between them, and for exact resume: the batch of step ``s`` is a
pure function of ``(seed, s)``; docs/design.md, "Gradient prompt tuning in stages".
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from transformers import get_scheduler

from llm_catalyst.backbones.base import Backbone
from llm_catalyst.data.tasks import Example
from llm_catalyst.distributed import Distributed
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
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
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
        dist: Distributed | None = None,
    ):
        self.backbone = backbone
        self.config = config
        self.dist = dist or Distributed.single()
        # Trained in float32 at least: a half-precision backbone gets the prompt cast in its
        # forward pass, while Adam's small updates accumulate at full precision.
        dtype = torch.promote_types(backbone.embedding_table.dtype, torch.float32)
        self.prompt = torch.nn.Parameter(initial_prompt.detach().clone().to(backbone.device, dtype))
        self.head_parameters = backbone.head_parameters()
        for parameter in self._trainable():
            self.dist.broadcast_(parameter)  # one starting point, whatever each process drew
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
        if self.dist.active:
            return self._shared_step()
        batch = self.backbone.collate(self.stream.batch(self.step)).to(self.backbone.device)
        self.backbone.train(True)
        self.optimizer.zero_grad(set_to_none=True)
        with torch.random.fork_rng(devices=[]):
            # Dropout draws from a generator seeded by (seed, step): exact resume, no RNG state.
            torch.manual_seed(self.stream.seed * 1_000_003 + self.step)
            scores = self.backbone.class_scores(self.prompt, batch)
        loss = F.cross_entropy(scores.float(), batch.labels)
        loss.backward()
        return self._finish_step(loss.item())

    def _finish_step(self, loss: float) -> StepRecord:
        """The end of every step, once its gradients are in place: a shared step knows its loss
        only after the all-reduce, so both ways of stepping check it here."""
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss is {loss} at step {self.step + 1}; lower the learning "
                "rate or initialise the prompt from vocabulary rows instead of zeros"
            )
        self.dist.unscale_(self.optimizer)
        grad_norm = self._clip_gradients()
        lr = self.optimizer.param_groups[0]["lr"]
        self.dist.step(self.optimizer)
        self.scheduler.step()
        self.step += 1
        return StepRecord(self.step, loss, lr, float(grad_norm))

    def _clip_gradients(self) -> torch.Tensor:
        """Clip to ``max_grad_norm`` if set; the gradient norm before clipping either way."""
        if self.config.max_grad_norm is not None:
            return torch.nn.utils.clip_grad_norm_(self._trainable(), self.config.max_grad_norm)
        return torch.linalg.vector_norm(
            torch.stack([p.grad.norm() for p in self._trainable() if p.grad is not None])
        )

    def _shared_step(self) -> StepRecord:
        """The step as one of several processes (or under mixed precision or accumulation).

        Every process draws the same global batch, takes its share, and backpropagates micro-
        batch by micro-batch the summed loss divided by the GLOBAL batch size; the gradients
        summed over processes are then those of the global batch's mean loss, whatever the
        shares' sizes. Dropout masks are seeded per (seed, step, process, micro-batch).
        """
        dist = self.dist
        examples = self.stream.batch(self.step)
        share = dist.shard(examples)
        size = max(1, -(-len(share) // dist.accumulation_steps))
        self.backbone.train(True)
        self.optimizer.zero_grad(set_to_none=True)
        local_loss = torch.zeros((), dtype=torch.float64)
        for micro, start in enumerate(range(0, len(share), size)):
            batch = self.backbone.collate(share[start : start + size]).to(self.backbone.device)
            entropy = [self.stream.seed, self.step, dist.rank, micro]
            with torch.random.fork_rng(devices=[]), dist.autocast():
                torch.manual_seed(int(np.random.SeedSequence(entropy).generate_state(1)[0]))
                scores = self.backbone.class_scores(self.prompt, batch)
            loss = F.cross_entropy(scores.float(), batch.labels, reduction="sum") / len(examples)
            dist.backward(loss)
            local_loss += loss.detach().double().cpu()
        return self._finish_step(self._sum_gradients(local_loss))

    def _sum_gradients(self, local_loss: torch.Tensor) -> float:
        """Sum the gradients (in float64) and the loss over processes in one all-reduce.

        A process whose share was empty contributes zeros. Returns the global batch's loss.
        """
        parameters = self._trainable()
        flat = torch.cat(
            [
                *(
                    (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).double()
                    for p in parameters
                ),
                local_loss.reshape(1).to(self.prompt.device),
            ]
        )
        total = self.dist.sum(flat)
        offset = 0
        for p in parameters:
            p.grad = total[offset : offset + p.numel()].view_as(p).to(p.dtype)
            offset += p.numel()
        return float(total[-1])

    def current_prompt(self) -> torch.Tensor:
        return self.prompt.detach().clone()

    def restart(self, prompt: torch.Tensor, reset_moments: bool) -> None:
        """Replace the prompt in place; the LR schedule keeps counting global steps."""
        with torch.no_grad():
            self.prompt.copy_(prompt.to(self.prompt.device, self.prompt.dtype))
        self.dist.broadcast_(self.prompt)  # every process restarts from the same rows
        if reset_moments:
            self.optimizer.state.pop(self.prompt, None)

    def advance_schedule(self, steps: int) -> None:
        """Move the LR schedule past ``steps`` optimizer steps taken on discarded copies."""
        for _ in range(steps):
            self.scheduler.step()

    def snapshot(self) -> dict:
        """``state_dict`` detached from the live tensors: later steps cannot change it."""
        return copy.deepcopy(self.state_dict())

    def restore(self, snapshot: dict) -> None:
        """Go back to a snapshot, which stays untouched (the optimizer would otherwise update
        the snapshot's moment tensors in place), so it can be restored again."""
        self.load_state_dict(copy.deepcopy(snapshot))

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
