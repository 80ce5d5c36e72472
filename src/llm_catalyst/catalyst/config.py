"""The configuration of one run: which method, which protocol, and the loop's knobs.

One place for each decision: the gradient budget is ``train.steps`` for every method (the final
stage gets M = train.steps - N * m), C is ``llm.proposer.num_proposals`` and a restart's fit
policy is ``prompt.fit``. ``protocol: paper`` reproduces the reference code's choices
(``PAPER_CHOICES``) unless the user set the key, so the difference can be measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llm_catalyst.backbones.config import BackboneConfig
from llm_catalyst.catalyst.methods import METHODS
from llm_catalyst.config import load_config
from llm_catalyst.data.config import DataConfig
from llm_catalyst.errors import ConfigError
from llm_catalyst.llm.config import LLMConfig
from llm_catalyst.prompts.config import PromptConfig
from llm_catalyst.training.config import TrainConfig

Protocol = Literal["fewshot", "paper"]
Selection = Literal["margin", "best", "first"]

# What ``protocol: paper`` sets unless the user set the key (dotted keys of RunConfig).
PAPER_CHOICES: dict[str, Any] = {
    "loop.rounds": 3,
    "loop.stage_steps": "epoch",
    "loop.selection": "first",
    "loop.moments": "keep",
    "llm.proposer.template": "paper",
    "llm.proposer.num_proposals": 3,
}


class LoopConfig(BaseModel):
    """The interleaving of gradient stages and LLM rounds (method.md, "The loop, precisely").

    ``stage_steps`` (m): an int, ``"epoch"`` (one pass over the train split, resolved when the
    data is loaded) or None (the budget split evenly: m = train.steps // (rounds + 1)).
    ``selection``: ``margin`` takes the best proposal by dev loss only if it beats the current
    prompt's dev loss by more than ``margin``; ``best`` takes the best of the pool, the
    proposals and the current prompt; ``first`` takes the first proposal unconditionally (the
    reference code's behaviour). ``moments``: whether a restart resets the optimizer moments of
    the prompt or keeps them; the LR schedule continues either way.
    """

    model_config = ConfigDict(extra="forbid")

    rounds: int = Field(3, ge=0, description="LLM rounds N")
    stage_steps: int | Literal["epoch"] | None = Field(
        None, description="gradient steps per stage m"
    )
    pool_size: int = Field(8, ge=1, description="projected trajectory texts scored per round K")
    selection: Selection = "margin"
    margin: float = Field(0.01, ge=0, description="dev-loss margin of the margin policy")
    moments: Literal["reset", "keep"] = "reset"

    @model_validator(mode="after")
    def _positive_stage(self) -> LoopConfig:
        if isinstance(self.stage_steps, int) and self.stage_steps < 1:
            raise ValueError(f"stage_steps must be at least 1, got {self.stage_steps}")
        return self

    def schedule(self, total_steps: int, steps_per_epoch: int) -> Schedule:
        """N, m and M for a budget of ``total_steps``; raises ConfigError when they do not fit."""
        if self.stage_steps == "epoch":
            stage = steps_per_epoch
        elif self.stage_steps is None:
            stage = total_steps // (self.rounds + 1)
        else:
            stage = self.stage_steps
        if self.rounds and stage < 1:
            raise ConfigError(
                f"train.steps={total_steps} is too small for loop.rounds={self.rounds}: every "
                "round needs a gradient stage of at least one step; raise train.steps"
            )
        if self.rounds * stage > total_steps:
            raise ConfigError(
                f"loop.rounds={self.rounds} stages of {stage} steps (loop.stage_steps="
                f"{self.stage_steps}) need {self.rounds * stage} steps but train.steps="
                f"{total_steps}; raise train.steps or lower loop.rounds / loop.stage_steps"
            )
        return Schedule(self.rounds, stage, total_steps - self.rounds * stage)


@dataclass(frozen=True)
class Schedule:
    """Round r (1-based) follows the stage that ends at step r * m; M steps close the run."""

    rounds: int
    stage_steps: int
    final_steps: int

    @property
    def total_steps(self) -> int:
        return self.rounds * self.stage_steps + self.final_steps

    def round_end(self, round_index: int) -> int:
        """The step after which round ``round_index`` (0-based) runs."""
        return (round_index + 1) * self.stage_steps

    def as_dict(self) -> dict[str, int]:
        return {
            "rounds": self.rounds,
            "stage_steps": self.stage_steps,
            "final_steps": self.final_steps,
            "total_steps": self.total_steps,
        }


class RunConfig(BaseModel):
    """Everything one run needs; written verbatim (protocol choices applied) to config.yaml."""

    model_config = ConfigDict(extra="forbid")

    method: str = "catalyst"
    protocol: Protocol = "fewshot"
    data: DataConfig
    backbone: BackboneConfig = BackboneConfig()
    prompt: PromptConfig = PromptConfig()
    train: TrainConfig = TrainConfig()
    loop: LoopConfig = LoopConfig()
    llm: LLMConfig = LLMConfig()
    output_dir: Path = Path("runs")
    evaluate_zero_shot: bool = True
    max_test_examples: int | None = Field(None, ge=1)

    @field_validator("method")
    @classmethod
    def _known_method(cls, name: str) -> str:
        if name not in METHODS:
            raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
        return name

    @model_validator(mode="before")
    @classmethod
    def _protocol_choices(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("protocol") != "paper":
            return data
        tree = _plain_tree(data)
        for key, value in PAPER_CHOICES.items():
            _set_default(tree, key, value)
        return tree


def _plain_tree(data: dict[str, Any]) -> dict[str, Any]:
    """A copy in which sections given as models are dicts, so defaults can be merged in."""
    return {
        key: value.model_dump(exclude_unset=True) if isinstance(value, BaseModel) else value
        for key, value in data.items()
    }


def _set_default(tree: dict[str, Any], dotted_key: str, value: Any) -> None:
    *parents, leaf = dotted_key.split(".")
    node = tree
    for part in parents:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif isinstance(child, BaseModel):
            child = node[part] = child.model_dump(exclude_unset=True)
        if not isinstance(child, dict):
            return
        node = child
    node.setdefault(leaf, value)


def load_run_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read an optional YAML file, apply dotted overrides (None values are skipped), validate."""
    return load_config(RunConfig, path, overrides)
