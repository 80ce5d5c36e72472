"""``--set`` options of a small catalyst run (see tests/catalyst/small_runs.py) for the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from tests.catalyst.small_runs import ANSWER, run_settings, script


def small_run_sets(tmp_path: Path, data_dir: Path, **extra) -> list[str]:
    """1 round after 2 steps, 2 final steps; the task and output folder are left to options."""
    settings = run_settings(
        tmp_path,
        data_dir,
        script(tmp_path, [ANSWER] * 8),
        **{"train.steps": 4, "loop.rounds": 1, "loop.stage_steps": 2, **extra},
    )
    for key in ("data.task", "output_dir"):
        settings.pop(key)
    return [arg for k, v in settings.items() for arg in ("--set", f"{k}={json.dumps(v)}")]
