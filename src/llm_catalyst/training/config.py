"""Optimisation settings for gradient prompt tuning."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrainConfig(BaseModel):
    """How the soft prompt (and head, if any) is optimised.

    The schedule counts optimizer steps, so a run resumed or split into stages keeps the same
    curve.
    """

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(
        100,
        ge=0,
        description="optimizer steps: the gradient budget of every method, probes included "
        "(the catalyst's final stage gets what its stages and probes leave: M = steps - N*m "
        "without probes)",
    )
    batch_size: int = Field(16, ge=1, description="train examples per optimizer step")
    eval_batch_size: int = Field(64, ge=1, description="dev and test examples per scoring batch")
    optimizer: Literal["adamw", "adam", "sgd"] = Field("adamw", description="the optimizer")
    lr: float = Field(3e-3, gt=0, description="learning rate")
    head_lr: float | None = Field(
        None,
        gt=0,
        description="learning rate of an encoder's head (heads usually want a smaller rate "
        "than prompts); null: `lr`",
    )
    weight_decay: float = Field(
        0.0, ge=0, description="weight decay of the head (the prompt is never decayed)"
    )
    betas: tuple[float, float] = Field((0.9, 0.999), description="Adam(W)'s betas")
    momentum: float = Field(0.0, ge=0, lt=1, description="SGD momentum (CoOp uses 0.9)")
    schedule: Literal["constant", "linear", "cosine"] = Field(
        "linear", description="learning-rate schedule over all the run's optimizer steps"
    )
    warmup_steps: int = Field(
        0, ge=0, description="steps of linear warmup at the start (none with `constant`)"
    )
    max_grad_norm: float | None = Field(
        1.0, gt=0, description="clip the gradient's norm to this; null: no clipping"
    )
    eval_every: int = Field(
        10,
        ge=1,
        description="score S on dev every this many steps (and at each stage's end); the best "
        "S so scored is kept",
    )
    select_by: Literal["accuracy", "loss"] = Field(
        "accuracy",
        description="best by dev: `accuracy` (ties broken by loss) or `loss`",
    )
    progress: bool = Field(
        True,
        description="show progress: a live line on a terminal, log lines elsewhere; false: none",
    )

    @model_validator(mode="after")
    def _warmup_fits(self) -> TrainConfig:
        if self.warmup_steps > self.steps > 0:
            raise ValueError(
                f"warmup_steps ({self.warmup_steps}) exceeds steps ({self.steps}); lower it"
            )
        return self
