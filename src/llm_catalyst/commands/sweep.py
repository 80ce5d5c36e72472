"""``sweep``: plain prompt tuning's learning rate per task, on held-out train-pool examples."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llm_catalyst.commands.compare import (
    ExperimentOption,
    WorkersOption,
    fail_on_failed,
    run_grid,
)
from llm_catalyst.commands.options import (
    CSV_HELP,
    SetOption,
    config_overrides,
    consoles,
    split_list,
)
from llm_catalyst.errors import ConfigError


def sweep_command(
    experiment: ExperimentOption = None,
    tasks: Annotated[
        list[str] | None, typer.Option(help=f"the experiment's tasks to sweep, {CSV_HELP}")
    ] = None,
    output: Annotated[Path, typer.Option(help="the sweep's folder")] = Path("runs/sweep"),
    set_: SetOption = None,
    workers: WorkersOption = 1,
) -> None:
    """Try the experiment file's learning rates with plain prompt tuning on its sweep seeds,
    score each on held-out train-pool examples (never the test split), print the choice."""
    if experiment is None:
        raise ConfigError("give the experiment file whose tasks to sweep: --experiment FILE")
    # The library is imported here, where it is first needed: --help loads no torch (seconds).
    from llm_catalyst.experiments.experiment import Experiment
    from llm_catalyst.experiments.sweep import (
        choose_rates,
        sweep_cells,
        sweep_markdown,
        write_sweep,
    )
    from llm_catalyst.rundir import require_folder

    require_folder(output, "--output")
    loaded = Experiment.load(experiment)
    cells = sweep_cells(loaded, output, split_list(tasks, []), config_overrides({}, set_))
    outcomes = run_grid(cells, output, workers)
    choices = choose_rates(output)
    if choices:
        out = consoles()[0]
        out.print(sweep_markdown(choices))
        out.print(f"choices: {write_sweep(output, choices)}")
    fail_on_failed(outcomes)
