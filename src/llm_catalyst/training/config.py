"""Optimisation settings for gradient prompt tuning."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrainConfig(BaseModel):
    """How the soft prompt (and head, if any) is optimised.

    ``head_lr`` defaults to ``lr``; heads usually want a smaller rate than prompts. The schedule
    counts optimizer steps, so a run resumed or split into stages keeps the same curve.
    """

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(100, ge=0, description="optimizer steps")
    batch_size: int = Field(16, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = Field(3e-3, gt=0)
    head_lr: float | None = Field(None, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = Field(0.0, ge=0, lt=1, description="SGD momentum (CoOp uses 0.9)")
    schedule: Literal["constant", "linear", "cosine"] = "linear"
    warmup_steps: int = Field(0, ge=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    eval_every: int = Field(10, ge=1, description="dev evaluation period in steps")
    select_by: Literal["accuracy", "loss"] = "accuracy"
    progress: bool = True

    @model_validator(mode="after")
    def _warmup_fits(self) -> TrainConfig:
        if self.warmup_steps > self.steps > 0:
            raise ValueError(
                f"warmup_steps ({self.warmup_steps}) exceeds steps ({self.steps}); lower it"
            )
        return self
