"""Golden runs: one tiny run per method, interrupted and resumed, reduced to what must not change
when the code is reshaped (results.json without times and paths, events.jsonl without times).

The fixtures in ``fixtures/golden/`` were written by this module before the loop was reshaped;
``test_golden_runs.py`` reruns each method and requires the same outcome. Write them again only
for a change that is meant to change behaviour, and say so in the commit:

    python -m tests.catalyst.golden
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from llm_catalyst.catalyst import RunInterrupted, load_run_config, resume, run
from llm_catalyst.catalyst.methods import METHODS
from llm_catalyst.progress import ProgressUpdate
from tests.catalyst.small_runs import ANSWER, run_settings, script
from tests.torch_threads import one_torch_thread

FIXTURES = Path(__file__).parent / "fixtures" / "golden"

# Every round probes S and its 2 best proposals for 1 step; round 0 asks before any step.
# 2 stages of 3 steps + 3 probed rounds of 3 steps = 15 of 20 steps; 5 final steps.
SETTINGS: dict[str, Any] = {
    "train.steps": 20,
    "train.progress": True,
    "loop.init_round": True,
    "loop.probe_steps": 1,
    "loop.probe_top": 2,
    "loop.selection": "best",
    "loop.margin": 0.0,
    "evaluate_zero_shot": True,
    # The start race of race and random-race: 4 entrants (the random start, the instruction and
    # 2 texts) in rungs of 4 and 2 of 2 steps: 12 of 20 steps. Added with those methods.
    "race.rung_steps": 2,
}

# Where each run is interrupted: a gradient step outside any round (the stop is honoured after
# it), or for llm-only, which takes no step, the start of its test evaluation, after its last
# round (a stop inside a round leaves it, to be done again on resume; the fixture was written
# when a stop in the last round let it end: the run resumed after it, as it does here).
STOP_AT: dict[str, tuple[str, int]] = {
    "llm-only": ("test", 0),
    "race": ("race rung 1", 3),  # the second entrant's first step: stopped after its leg
    "random-race": ("race rung 1", 3),
}
STOP_STEP = 5

RUN_KEYS_DROPPED = ("wall_clock", "run_dir")


class InterruptAt:
    """A progress sink that presses Ctrl-C once, when the run reaches ``stage`` at ``step``."""

    def __init__(self, stage: str, step: int):
        self.stage, self.step, self.fired = stage, step, False

    def update(self, update: ProgressUpdate) -> None:
        if not self.fired and update.stage == self.stage and update.step >= self.step:
            self.fired = True
            os.kill(os.getpid(), signal.SIGINT)

    def close(self) -> None:
        pass


DATA_PLACEHOLDER = "<shared data>"


def golden_outcome(method: str, work: Path, data_dir: Path) -> dict[str, Any]:
    """Run ``method`` in ``work``, interrupt it, resume it, and reduce its run directory."""
    settings = run_settings(work, data_dir, script(work, [ANSWER] * 4), method=method, **SETTINGS)
    config = load_run_config(None, settings)
    stage, step = STOP_AT.get(method, ("gradient", STOP_STEP))
    with one_torch_thread():
        try:
            run(config, name="golden", progress=InterruptAt(stage, step))
        except RunInterrupted:
            pass
        else:
            raise AssertionError(f"{method}: the run was not interrupted at {stage} {step}")
        result = resume(config.output_dir / "golden", progress=InterruptAt("never", 0))
    return reduce(result.run_dir, data_dir)


def reduce(run_dir: Path, data_dir: Path) -> dict[str, Any]:
    """results.json less its times and paths; events.jsonl less its times.

    The data folder is written as ``DATA_PLACEHOLDER`` so that a fixture recorded on one
    machine compares equal on a clone where ``../shared`` lies elsewhere.
    """
    results = json.loads(
        _portable((run_dir / "results.json").read_text(encoding="utf-8"), data_dir)
    )
    for key in RUN_KEYS_DROPPED:
        results.pop(key, None)
    events = []
    for line in (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines():
        event = json.loads(_portable(line, data_dir))
        event.pop("time", None)
        events.append(event)
    return {"results": results, "events": events}


def _portable(text: str, data_dir: Path) -> str:
    return text.replace(json.dumps(str(data_dir.resolve()))[1:-1], DATA_PLACEHOLDER)


def fixture_path(method: str) -> Path:
    return FIXTURES / f"{method}.json"


def main() -> None:
    import tempfile

    data_dir = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for method in sys.argv[1:] or METHODS:
        with tempfile.TemporaryDirectory() as work:
            outcome = golden_outcome(method, Path(work), data_dir)
        text = json.dumps(outcome, indent=1, sort_keys=True, ensure_ascii=False)
        fixture_path(method).write_text(text + "\n", encoding="utf-8")
        print(f"{method}: {len(outcome['events'])} events")


if __name__ == "__main__":
    main()
