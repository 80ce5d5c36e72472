"""The configuration of one run: which method, which protocol, and the loop's knobs.

One place for each decision: the gradient budget is ``train.steps`` optimizer steps for every
method, probe steps included (the final stage gets what the stages and probes leave), C is
``llm.proposer.num_proposals`` and a restart's fit policy is ``prompt.fit``. ``protocol:
paper`` reproduces the reference code's choices (``PAPER_CHOICES``) unless the user set the
key, so the difference can be measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llm_catalyst.backbones.config import BackboneConfig
from llm_catalyst.catalyst.methods import METHODS
from llm_catalyst.catalyst.selection import Selection
from llm_catalyst.config import load_config
from llm_catalyst.data.config import DataConfig
from llm_catalyst.llm.config import LLMConfig
from llm_catalyst.prompts.config import PromptConfig
from llm_catalyst.tracking.config import TrackingConfig
from llm_catalyst.training.config import TrainConfig

Protocol = Literal["fewshot", "validation", "paper"]
ScoringPath = Literal["auto", "sequential", "stacked"]

# What ``protocol: paper`` sets unless the user set the key (dotted keys of RunConfig).
PAPER_CHOICES: dict[str, Any] = {
    "loop.rounds": 3,
    "loop.stage_steps": "epoch",
    "loop.selection": "first",
    "loop.moments": "keep",
    "llm.proposer.template": "paper",
    "llm.proposer.num_proposals": 3,
    "llm.proposer.spare": 0,
    "llm.sampling.dry_multiplier": 0,
}


class LoopConfig(BaseModel):
    """The interleaving of gradient stages and LLM rounds (method.md, "The loop, precisely").

    Every gradient step comes out of ``train.steps``: the stages, the probes and the final
    stage, which gets what the others leave. Probes and races compare proposals, so selection
    ``first``, which compares nothing, refuses both. C is ``llm.proposer.num_proposals``.
    """

    model_config = ConfigDict(extra="forbid")

    rounds: int = Field(3, ge=0, description="LLM rounds N (`init_round` adds a round 0)")
    stage_steps: int | Literal["epoch"] | None = Field(
        None,
        description="gradient steps per stage m: a number, `epoch` (one pass over the train "
        "split) or null (the budget split evenly: m = train.steps // (rounds + 1))",
    )
    pool_size: int = Field(
        8, ge=1, description="projected trajectory texts scored on dev per round K (the pool)"
    )
    selection: Selection = Field(
        "margin",
        description="which text restarts S: `margin` (the best proposal by dev loss, if it "
        "beats S's by more than `margin`), `best` (the best of the pool, the proposals and S) "
        "or `first` (the first proposal unconditionally: the reference code's behaviour)",
    )
    margin: float = Field(0.01, ge=0, description="dev-loss margin of selection `margin`")
    moments: Literal["reset", "keep"] = Field(
        "reset",
        description="whether a restart resets S's optimizer moments (`reset`) or keeps them "
        "(`keep`); the LR schedule continues either way",
    )
    probe_steps: int = Field(
        0,
        ge=0,
        description="probe steps k (0: no probes): S and the `probe_top` best proposals by dev "
        "loss each take k steps on the same next k batches (S with its own moments, the proposals "
        "from fresh ones), and the "
        "selection compares them scored again; the winner continues from its probed state, the "
        "others' steps are spent budget",
    )
    probe_top: int = Field(2, ge=1, description="proposals probed per round t")
    init_round: bool = Field(
        False,
        description="ask for C prompts before the first gradient step (round 0) and start "
        "from the one the selection picks (with probes: after probing)",
    )
    scoring: ScoringPath = Field(
        "auto",
        description="how several candidates are scored on dev: `sequential` (one packed pass "
        "per candidate, faster on a CPU), `stacked` (candidates share passes, which fills a GPU "
        "better) or `auto` (sequential on a CPU, stacked on a GPU); the scores agree to float "
        'rounding (docs/design.md, "Candidate scoring")',
    )
    racing: bool = Field(
        False,
        description="race the round's proposals on growing seeded dev subsets, halving the "
        "field each time, so only the finalists are scored on the whole dev split and compared",
    )
    race_start: int = Field(8, ge=1, description="dev examples of a race's first subset")
    race_finalists: int = Field(
        2,
        ge=1,
        description="proposals a race leaves for the whole dev split (at least `probe_top` "
        "with probes)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> LoopConfig:
        if isinstance(self.stage_steps, int) and self.stage_steps < 1:
            raise ValueError(f"stage_steps must be at least 1, got {self.stage_steps}")
        if self.probe_steps and self.selection == "first":
            raise ValueError(
                "selection 'first' takes the first proposal unconditionally, so probe steps "
                "would be spent without being compared: set probe_steps to 0 or selection to "
                "margin or best"
            )
        if self.racing and self.selection == "first":
            raise ValueError(
                "selection 'first' takes the first proposal unconditionally, so a race would "
                "compare proposals for nothing: set racing to false or selection to margin or best"
            )
        return self

    @property
    def finalists(self) -> int:
        """Proposals a race keeps for the whole dev split: enough for every probe."""
        return max(self.race_finalists, self.probe_top if self.probe_steps else 1)


class RaceConfig(BaseModel):
    """The start race of methods race and random-race (docs/design.md, "The start race").

    Before any gradient step the entrants are the seed's random start, the task's instruction
    (where the task has one) and K = ``llm.proposer.num_proposals`` texts from the source (the
    LLM, or random tokens for random-race). Successive halving on dev: every surviving entrant
    takes ``rung_steps`` steps from its own state (its own moments, never reset), the best
    1/``eta`` by dev loss go on, and the last one continues for the rest of ``train.steps``,
    which counts every entrant's steps. llm-init ranks the same entrants by their dev loss
    before any step and starts from the best, with no rung of steps.
    """

    model_config = ConfigDict(extra="forbid")

    rung_steps: int = Field(4, ge=1, description="steps r each surviving entrant takes per rung")
    eta: int = Field(
        2, ge=2, description="the field is cut to its best 1/eta (rounded up) after each rung"
    )
    zero_step_rung: bool = Field(
        False,
        description="cut the field once by the entrants' dev loss before any step, then race",
    )
    instruction: bool = Field(
        True, description="the task's hand-written instruction enters (where the task has one)"
    )


class RunConfig(BaseModel):
    """Everything one run needs; written verbatim (protocol choices applied) to config.yaml."""

    model_config = ConfigDict(extra="forbid")

    method: str = Field(
        "catalyst",
        description="the method: " + ", ".join(f"`{name}`" for name in METHODS) + " (the "
        "registry in `catalyst/methods.py`)",
    )
    arm: str | None = Field(
        None,
        description="the run's name in an experiment's tables (set by experiment files; null: "
        "the method)",
    )
    protocol: Protocol = Field(
        "fewshot",
        description="the splits: `fewshot` (k-shot train and dev from the train pool, test on "
        "the evaluation split); `validation` (the same, but the end of the run is scored on "
        "`max_test_examples` held-out train-pool examples instead, for choosing a recipe); "
        "`paper` (the reference code: the whole pool for training and the evaluation split as "
        "dev too, a leak reproduced on purpose, with its choices for the keys the config leaves "
        "unset: " + ", ".join(f"`{key}: {value}`" for key, value in PAPER_CHOICES.items()) + ")",
    )
    data: DataConfig
    backbone: BackboneConfig = BackboneConfig()
    prompt: PromptConfig = PromptConfig()
    train: TrainConfig = TrainConfig()
    loop: LoopConfig = LoopConfig()
    race: RaceConfig = RaceConfig()
    llm: LLMConfig = LLMConfig()
    tracking: TrackingConfig = TrackingConfig()
    output_dir: Path = Field(Path("runs"), description="where run directories go")
    evaluate_zero_shot: bool = Field(
        True,
        description="also score the task's hard prompt (no soft prompt) on test",
    )
    max_test_examples: int | None = Field(
        None,
        ge=1,
        description="score N examples of the evaluation split: a fixed seeded draw, the same "
        "for every seed and method (MR and CR list one class first, so the first N would be "
        "one class); null: all of it",
    )

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

    @model_validator(mode="after")
    def _validation_protocol(self) -> RunConfig:
        if self.protocol != "validation":
            return self
        if self.max_test_examples is None:
            raise ValueError(
                "protocol 'validation' scores the end of the run on held-out train-pool "
                "examples: set max_test_examples to how many (e.g. 300)"
            )
        if self.data.image_spec_name() is not None:
            raise ValueError("protocol 'validation' is for text tasks; use protocol fewshot")
        return self


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
    """Read an optional YAML file, apply dotted overrides (a None value sets null), validate."""
    return load_config(RunConfig, path, overrides)
