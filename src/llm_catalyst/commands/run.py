"""``run``: one method on one task and seed, or a resumed run.

``tune`` is an alias: ``run --method plain`` (one pipeline, one results.json).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from llm_catalyst.catalyst.methods import METHODS
from llm_catalyst.commands.options import (
    ConfigOption,
    DataDirOption,
    InitTextOption,
    LLMOption,
    LROption,
    MaxTestOption,
    ModelOption,
    OutputDirOption,
    PromptLengthOption,
    RoundsOption,
    SeedOption,
    SetOption,
    ShotsOption,
    StepsOption,
    TaskOption,
    config_overrides,
    consoles,
)
from llm_catalyst.config import parse_override
from llm_catalyst.errors import ConfigError
from llm_catalyst.records import RunResults

# The run itself is imported inside the commands, where it is first needed: --help and the
# errors found in the options print without loading torch (seconds).


def run_command(
    config: ConfigOption = None,
    method: Annotated[str | None, typer.Option(help=", ".join(METHODS))] = None,
    task: TaskOption = None,
    seed: SeedOption = None,
    protocol: Annotated[str | None, typer.Option(help="fewshot, validation or paper")] = None,
    llm: LLMOption = None,
    model: ModelOption = None,
    shots: ShotsOption = None,
    steps: StepsOption = None,
    lr: LROption = None,
    prompt_length: PromptLengthOption = None,
    init_text: InitTextOption = None,
    rounds: RoundsOption = None,
    data_dir: DataDirOption = None,
    output_dir: OutputDirOption = None,
    max_test_examples: MaxTestOption = None,
    set_: SetOption = None,
    resume_dir: Annotated[
        Path | None,
        typer.Option("--resume", help="continue this run directory from its last checkpoint"),
    ] = None,
) -> None:
    """Run one method on one task and seed (or resume a run); prints the result."""
    options = {
        "method": method,
        "protocol": protocol,
        "task": task,
        "seed": seed,
        "model": model,
        "shots": shots,
        "steps": steps,
        "lr": lr,
        "prompt_length": prompt_length,
        "init_text": init_text,
        "rounds": rounds,
        "data_dir": data_dir,
        "output_dir": output_dir,
        "max_test_examples": max_test_examples,
    }
    overrides = config_overrides(options, set_, llm)
    out, err = consoles()
    if resume_dir is not None and (config is not None or overrides):
        raise ConfigError(
            "--resume continues a run with the configuration recorded in its config.yaml; drop "
            "the other options"
        )
    from llm_catalyst.catalyst.config import load_run_config

    # Validated before the runner (torch) is imported, so a config error prints at once.
    run_config = load_run_config(config, overrides) if resume_dir is None else None
    from llm_catalyst.catalyst.runner import resume, run
    from llm_catalyst.catalyst.stop import RunInterrupted

    try:
        if resume_dir is not None:
            result = resume(resume_dir, console=err)
        else:
            assert run_config is not None
            result = run(run_config, console=err)
    except RunInterrupted as stop:
        err.print(str(stop))
        raise typer.Exit(code=130) from None
    if result.is_main:  # the other processes of a data-parallel run hold the same results
        print_summary(out, result.results)


def print_summary(out: Console, results: RunResults) -> None:
    test, dev, llm, clock = results.test, results.dev, results.llm, results.wall_clock
    assert dev is not None and llm is not None and clock is not None, "written by this version"
    out.print(f"run directory: {results.run_dir}")
    if results.zero_shot_test is not None:
        out.print(f"zero-shot hard prompt: accuracy {results.zero_shot_test.accuracy:.4f} on test")
    out.print(
        f"{results.method} on {results.task} (seed {results.seed}): {results.scored_split} "
        f"accuracy {test.accuracy:.4f} (n={test.n}); kept prompt from {results.best_origin} "
        f"(dev accuracy {dev.accuracy:.4f}, loss {dev.loss:.4f})"
    )
    out.print(f"projected prompt: {results.projected_text!r}")
    out.print(
        f"LLM calls {llm.calls} ({llm.cache_hits} from cache), skipped rounds "
        f"{llm.skipped_rounds}; wall-clock {clock.total_s:.1f} s (gradient "
        f"{clock.gradient_s or 0.0:.1f}, scoring {clock.scoring_s or 0.0:.1f}, "
        f"LLM {clock.llm_s or 0.0:.1f})"
    )


def tune_command(
    config: ConfigOption = None,
    task: TaskOption = None,
    seed: SeedOption = None,
    prompt_length: PromptLengthOption = None,
    init_text: InitTextOption = None,
    model: ModelOption = None,
    shots: ShotsOption = None,
    steps: StepsOption = None,
    lr: LROption = None,
    data_dir: DataDirOption = None,
    output_dir: OutputDirOption = None,
    max_test_examples: MaxTestOption = None,
    set_: SetOption = None,
) -> None:
    """Train a soft prompt on a task (run --method plain); prints the run directory and metrics."""
    options = dict(locals())  # exactly the options above, as run_command names them
    from llm_catalyst.catalyst.plain import PLAIN

    methods = [value for key, value in map(parse_override, set_ or []) if key == "method"]
    if methods and methods[-1] != PLAIN["method"]:
        raise ConfigError(
            f"tune is plain prompt tuning only (--set method={methods[-1]}); run another method "
            f"with llm-catalyst run --method {methods[-1]}"
        )
    run_command(**options, method=PLAIN["method"], rounds=PLAIN["loop.rounds"])
