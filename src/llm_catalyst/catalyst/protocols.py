"""What a run's protocol decides: its splits, the split selections are made on, its name.

``fewshot`` is the default; ``validation`` swaps the test split for held-out train-pool
examples so a recipe can be chosen without it; ``paper`` reproduces the reference code.
"""

from __future__ import annotations

from pathlib import Path

from llm_catalyst.catalyst.config import RunConfig
from llm_catalyst.data.config import load_data, load_splits
from llm_catalyst.data.sampling import (
    FewShotSplits,
    evaluation_subset,
    held_out_validation,
    sample_splits,
)


def protocol_splits(config: RunConfig) -> FewShotSplits:
    """fewshot: k-shot train and dev from the train pool; validation: the same, scored at the
    end on other train-pool examples instead of the evaluation split (for choosing a recipe);
    paper: the whole pool for training and the evaluation split as dev too (the reference
    code's leak, reproduced on purpose)."""
    if config.protocol == "fewshot":
        return load_splits(config.data)
    data = load_data(config.data)
    if config.protocol == "validation":
        splits = sample_splits(data, config.data.shots, config.data.seed, config.data.dev_shots)
        return held_out_validation(data, splits)
    test = evaluation_subset(data.test, config.max_test_examples)
    return FewShotSplits(
        task=data.task,
        train=data.train,
        dev=test,
        test=test,
        seed=config.data.seed,
        shots=None,
        dev_shots=0,
        source=data.source,
    )


def selection_split(config: RunConfig) -> str:
    return "test" if config.protocol == "paper" else "dev"


def run_name(config: RunConfig) -> str:
    task = config.data.task if isinstance(config.data.task, str) else config.data.task.name
    model = Path(config.backbone.model).name
    return f"{task}-{model}-{config.method}-s{config.data.seed}"
