"""Options shared by the commands: each option's config key, and options -> config overrides.

``OPTION_KEYS`` is the one table from a command-line option to the dotted ``RunConfig`` key it
sets; ``config_overrides`` turns option values, ``--set key=value`` items and an ``--llm FILE``
into the overrides ``load_run_config`` applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from llm_catalyst.config import parse_override
from llm_catalyst.llm.config import load_llm_config

OPTION_KEYS: dict[str, str] = {
    "method": "method",
    "protocol": "protocol",
    "task": "data.task",
    "seed": "data.seed",
    "shots": "data.shots",
    "data_dir": "data.data_dir",
    "model": "backbone.model",
    "steps": "train.steps",
    "lr": "train.lr",
    "prompt_length": "prompt.length",
    "init_text": "prompt.init_text",
    "rounds": "loop.rounds",
    "output_dir": "output_dir",
    "max_test_examples": "max_test_examples",
    "num": "llm.proposer.num_proposals",
    "max_words": "llm.proposer.max_words",
    "template": "llm.proposer.template",
    "cache": "llm.cache.enabled",
}


def config_overrides(
    options: Mapping[str, Any], sets: list[str] | None = None, llm: Path | None = None
) -> dict[str, Any]:
    """Dotted RunConfig overrides: the LLM file's section, then the options given (None means
    not given), then ``--set`` items, each later one winning."""
    overrides: dict[str, Any] = {}
    if llm is not None:
        overrides["llm"] = load_llm_config(llm).model_dump(mode="json", exclude_unset=True)
    overrides |= {OPTION_KEYS[name]: value for name, value in options.items() if value is not None}
    if options.get("init_text") is not None:
        overrides["prompt.init"] = "text"  # a text init is what --init-text asks for
    overrides |= dict(parse_override(item) for item in sets or [])
    return overrides


def consoles() -> tuple[Console, Console]:
    """Results go to stdout, progress and errors to stderr. Both print text as written, never
    as rich markup: paths, labels and messages hold brackets (``[/x]``, ``llm-catalyst[ray]``)
    that markup would drop or fail on; what is styled on purpose is a ``rich.text.Text``."""
    return (
        Console(soft_wrap=True, highlight=False, markup=False),
        Console(stderr=True, soft_wrap=True, highlight=False, markup=False),
    )


def split_list(values: list[str] | None, default: list[str]) -> list[str]:
    """Values of an option given comma-separated, repeated, or both."""
    items = [part.strip() for value in values or [] for part in value.split(",")]
    return [item for item in items if item] or default


CSV_HELP = "comma-separated; the option may also be repeated"
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="any config key, e.g. --set train.warmup_steps=5"),
]

# Where a run's settings, data and model come from, and where it goes.
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config")]
LLMOption = Annotated[
    Path | None, typer.Option("--llm", help="LLM config YAML (the llm section of a run config)")
]
DataDirOption = Annotated[Path | None, typer.Option(help="benchmark data folder")]
ModelOption = Annotated[str | None, typer.Option(help="backbone preset, hub id or path")]
OutputDirOption = Annotated[Path | None, typer.Option(help="where run directories go")]

# What a run samples and scores.
TaskOption = Annotated[str | None, typer.Option(help="built-in task name")]
SeedOption = Annotated[int | None, typer.Option(help="seed for sampling and training")]
ShotsOption = Annotated[int | None, typer.Option(help="train examples per class")]
MaxTestOption = Annotated[
    int | None,
    typer.Option(help="score a fixed seeded draw of N test examples, the same for every run"),
]

# The prompt and its budget.
PromptLengthOption = Annotated[int | None, typer.Option(help="soft-prompt slots P")]
InitTextOption = Annotated[str | None, typer.Option(help="initialise the prompt from this text")]
StepsOption = Annotated[int | None, typer.Option(help="gradient steps (every method)")]
LROption = Annotated[float | None, typer.Option(help="prompt learning rate")]
RoundsOption = Annotated[int | None, typer.Option(help="LLM rounds N")]
