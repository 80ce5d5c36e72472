"""An experiment file: the settings every cell shares, per-task and per-arm settings, seeds.

A grid of methods compares methods under one configuration; an experiment compares *arms*
(a method with its own settings, such as the catalyst with the paper's meta-prompt) on tasks
that may each need their own settings (a learning rate chosen by ``sweep``, a custom task spec,
fewer shots), so that one committed file reproduces every cell. Each cell's configuration is a
pure function of the file, the task, the arm and the seed.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llm_catalyst.catalyst.config import RunConfig
from llm_catalyst.config import load_config
from llm_catalyst.errors import ConfigError
from llm_catalyst.experiments.workers import Cell

Overrides = dict[str, Any]


class SweepConfig(BaseModel):
    """The learning rates tried for plain prompt tuning, on seeds the experiment does not use,
    scored on ``validation_examples`` held-out train-pool examples (protocol ``validation``)."""

    model_config = ConfigDict(extra="forbid")

    learning_rates: list[float] = Field(default=[3e-3, 1e-2, 3e-2, 1e-1], min_length=1)
    seeds: list[int] = Field(default=[101, 102], min_length=1)
    validation_examples: int = Field(300, ge=1)
    arm: str = Field("plain", description="the arm whose settings the sweep runs")


class AblationConfig(BaseModel):
    """Variants of an arm tried before the experiment, on a few tasks and seeds, each scored on
    ``validation_examples`` held-out train-pool examples (protocol ``validation``), so the
    recipe is chosen without the test split. ``arms`` are settings over ``base_arm``'s."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[str] = Field(min_length=1)
    seeds: list[int] = Field(default=[1, 2, 3], min_length=1)
    base_arm: str = "catalyst"
    arms: dict[str, Overrides] = Field(min_length=1)
    validation_examples: int = Field(300, ge=1)
    tolerance: float = Field(
        0.005,
        ge=0,
        description="a variant this close to the best mean that the tie-break prefers wins instead",
    )
    tie_break: Literal["fewer_ingredients", "listed_first"] = Field(
        "fewer_ingredients",
        description="which of the variants within the tolerance wins: the one with the fewest "
        "`llm.proposer.ingredients` (then the best mean), or the one listed first (list the "
        "cheapest first)",
    )


class ExperimentConfig(BaseModel):
    """An experiment file's sections; ``run`` is a run configuration (validated per cell)."""

    model_config = ConfigDict(extra="forbid")

    run: dict[str, Any] = Field(default_factory=dict)
    tasks: dict[str, Overrides] = Field(min_length=1)
    arms: dict[str, Overrides] = Field(min_length=1)
    seeds: list[int] = Field(default=[1, 2, 3], min_length=1)
    baseline: str = "plain"
    contrasts: list[tuple[str, str]] = Field(
        default_factory=list, description="(arm, baseline) pairs reported per task and overall"
    )
    sweep: SweepConfig = SweepConfig()
    ablation: AblationConfig | None = None

    @field_validator("tasks", "arms", mode="before")
    @classmethod
    def _empty_means_no_settings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {name: settings or {} for name, settings in value.items()}
        return value


class Experiment:
    """A loaded experiment file, turned into cells on request."""

    def __init__(self, path: Path, config: ExperimentConfig):
        self.path = path
        self.config = config
        if config.baseline not in config.arms:
            raise ConfigError(
                f"{path}: baseline {config.baseline!r} is not one of the arms "
                f"({', '.join(config.arms)}); name an arm as `baseline`"
            )
        named = {"sweep.arm": config.sweep.arm}
        named |= {
            f"contrasts[{i}][{j}]": arm
            for i, pair in enumerate(config.contrasts)
            for j, arm in enumerate(pair)
        }
        if config.ablation is not None:
            named["ablation.base_arm"] = config.ablation.base_arm
        for key, arm in named.items():
            if arm not in config.arms:
                raise ConfigError(
                    f"{path}: {key} {arm!r} is not one of the arms ({', '.join(config.arms)})"
                )

    @classmethod
    def load(cls, path: Path) -> Experiment:
        try:
            tree = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"experiment file {path} does not exist") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML ({error})") from None
        if not isinstance(tree, dict):
            raise ConfigError(f"{path}: an experiment file is a mapping with tasks, arms, seeds")
        try:
            return cls(Path(path), ExperimentConfig.model_validate(tree))
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors()
            )
            raise ConfigError(f"{path}: {problems}") from None

    def _pick(self, kind: str, names: Sequence[str] | None, known: Sequence[Any]) -> list[Any]:
        if not names:
            return list(known)
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ConfigError(
                f"{self.path} has no {kind} {', '.join(map(str, unknown))}; it defines "
                f"{', '.join(map(str, known))}"
            )
        return list(dict.fromkeys(names))

    def run_config(
        self, task: str, seed: int, output: Path, *layers: Mapping[str, Any]
    ) -> RunConfig:
        """The run configuration of ``task`` and ``seed`` with ``layers`` of dotted settings
        applied in order over the task's own (later layers win)."""
        settings: dict[str, Any] = {"data.task": task}
        settings.update(self.config.tasks[task])
        for layer in layers:
            settings.update(layer)
        settings.update({"data.seed": seed, "output_dir": str(output)})
        path = self.path if self.config.run else None  # no `run` section: every key is a default
        return load_config(RunConfig, path, settings, section="run")

    def cells(
        self,
        output: Path,
        tasks: Sequence[str] | None = None,
        arms: Sequence[str] | None = None,
        seeds: Sequence[int] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> list[Cell]:
        """Every (task, arm, seed) chosen, in the file's order; ``overrides`` (the command
        line's) apply to every cell, over the file's settings."""
        chosen = itertools.product(
            self._pick("task", tasks, list(self.config.tasks)),
            self._pick("arm", arms, list(self.config.arms)),
            self._pick("seed", seeds, self.config.seeds),
        )
        return [
            Cell(
                f"{task}/{arm}/seed{seed}",
                self.run_config(
                    task, seed, output, self.config.arms[arm], {"arm": arm}, overrides or {}
                ),
            )
            for task, arm, seed in chosen
        ]

    def ablation_cells(
        self,
        output: Path,
        arms: Sequence[str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> list[Cell]:
        """The ablation's (task, variant, seed) cells, scored on held-out train-pool examples."""
        ablation = self.config.ablation
        if ablation is None:
            raise ConfigError(f"{self.path} has no `ablation` section")
        base = self.config.arms[ablation.base_arm]
        validation = {"protocol": "validation", "max_test_examples": ablation.validation_examples}
        chosen = itertools.product(
            self._pick("ablation task", ablation.tasks, list(self.config.tasks)),
            self._pick("ablation arm", arms, list(ablation.arms)),
            ablation.seeds,
        )
        return [
            Cell(
                f"{task}/{arm}/seed{seed}",
                self.run_config(
                    task,
                    seed,
                    output,
                    base,
                    ablation.arms[arm],
                    {"arm": arm},
                    overrides or {},
                    validation,
                ),
            )
            for task, arm, seed in chosen
        ]

    def task_names(self, tasks: Sequence[str] | None = None) -> list[str]:
        return self._pick("task", tasks, list(self.config.tasks))
