"""Grids on worker processes: the same table as one process, and cells that never collide."""

from __future__ import annotations

import csv
import io
import json
import logging
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from llm_catalyst.catalyst.config import load_run_config
from llm_catalyst.commands import app
from llm_catalyst.errors import ConfigError
from llm_catalyst.experiments.workers import Cell, CellLocked, cell_lock, run_cell, run_cells
from tests.catalyst.small_runs import ANSWER, run_settings, script
from tests.catalyst.test_resume import _outcome
from tests.torch_threads import one_torch_thread


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread here, hence one per worker: both grids compute alike, bit for bit."""
    with one_torch_thread():
        yield


def _compare(tmp_path: Path, data_dir: Path, grid: str, *extra: str):
    settings = run_settings(tmp_path, data_dir, script(tmp_path, [ANSWER] * 8, f"{grid}.json"))
    settings["llm.cache.directory"] = str(tmp_path / f"{grid}-cache")
    for key in ("data.task", "output_dir"):
        settings.pop(key)
    sets = [arg for k, v in settings.items() for arg in ("--set", f"{k}={json.dumps(v)}")]
    args = ["compare", "--tasks", "sst2", "--methods", "plain,catalyst", "--seeds", "1,2"]
    return CliRunner().invoke(app, [*args, "--output", str(tmp_path / grid), *sets, *extra])


def _table_without_timings(grid: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO((grid / "comparison.csv").read_text())))
    for row in rows:
        del row["mean_wall_clock_s"], row["llm_share"]
    return rows


@pytest.mark.slow
def test_two_workers_give_the_table_of_one_process(tmp_path, shared_data_dir, one_thread):
    sequential = _compare(tmp_path, shared_data_dir, "sequential")
    assert sequential.exit_code == 0, sequential.output
    parallel = _compare(tmp_path, shared_data_dir, "parallel", "--workers", "2")
    assert parallel.exit_code == 0, parallel.output
    assert "4 cell(s) on 2 worker process(es), 1 thread(s) each" in parallel.output
    assert parallel.output.count(": finished after") == 4

    rows = _table_without_timings(tmp_path / "parallel")
    assert rows == _table_without_timings(tmp_path / "sequential")
    assert [(r["method"], r["n_seeds"]) for r in rows] == [("plain", "2"), ("catalyst", "2")]
    for cell in ("plain/seed1", "plain/seed2", "catalyst/seed1", "catalyst/seed2"):
        results = [
            json.loads((tmp_path / grid / "sst2" / cell / "results.json").read_text())
            for grid in ("sequential", "parallel")
        ]
        for key in ("test", "dev", "best_step", "projected_text", "restarts"):
            assert results[0][key] == results[1][key], (cell, key)
    assert not list((tmp_path / "parallel").rglob("*.lock*"))  # every lock was released

    again = _compare(tmp_path, shared_data_dir, "parallel", "--workers", "2")
    assert again.exit_code == 0, again.output
    assert "grid: 4 cell(s), 4 finished, 0 to run" in again.output


def _steps_logged(run_dir: Path) -> int:
    events = run_dir / "events.jsonl"
    lines = events.read_text().splitlines() if events.exists() else []
    return sum('"train_step"' in line for line in lines)


@pytest.mark.slow
def test_ctrl_c_stops_a_grid_on_workers_without_starting_the_queued_cells(
    tmp_path, shared_data_dir
):
    """Ctrl-C in a terminal reaches the grid and its workers: the running cells stop with a
    checkpoint, and the cell the pool had already handed to a worker never starts."""
    settings = run_settings(tmp_path, shared_data_dir, script(tmp_path, [ANSWER]), method="plain")
    settings |= {"train.steps": 2000, "train.eval_every": 1000}
    for key in ("data.task", "output_dir", "method"):
        settings.pop(key)
    sets = [arg for k, v in settings.items() for arg in ("--set", f"{k}={json.dumps(v)}")]
    grid = tmp_path / "grid"
    grid_args = ["--tasks", "sst2", "--methods", "plain", "--seeds", "1,2,3,4,5", "--workers", "2"]
    child = subprocess.Popen(
        [sys.executable, "-m", "llm_catalyst", "compare", *grid_args, "--output", str(grid), *sets],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    running = [grid / "sst2" / "plain" / f"seed{seed}" for seed in (1, 2)]
    try:
        deadline = time.monotonic() + 180
        while not all(_steps_logged(run_dir) >= 2 for run_dir in running):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the first two cells made no progress in 180 s"
            time.sleep(0.05)
        os.killpg(child.pid, signal.SIGINT)
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:  # a grid that went on after Ctrl-C must not outlive the test
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()

    assert "Ctrl-C: running cells stop" in stderr
    for run_dir in running:
        assert (run_dir / "checkpoint.pt").exists() and not (run_dir / "results.json").exists()
    assert sorted(p.name for p in (grid / "sst2" / "plain").iterdir() if p.is_dir()) == [
        "seed1",
        "seed2",
    ], stderr
    assert "not started: the grid was stopped" in stderr


def _stoppable_grid(tmp_path: Path, data_dir: Path, grid: str, answers: list) -> list[str]:
    """compare over catalyst then plain cells, seeds 1 and 2 (the small runs: 2 rounds, the
    second after step 6), the LLM answering as ``answers`` say, in the folder ``grid``."""
    settings = run_settings(tmp_path, data_dir, script(tmp_path, answers, f"{grid}.json"))
    settings["llm.cache.directory"] = str(tmp_path / f"{grid}-cache")
    for key in ("data.task", "output_dir"):
        settings.pop(key)
    sets = [arg for k, v in settings.items() for arg in ("--set", f"{k}={json.dumps(v)}")]
    grid_args = ["--tasks", "sst2", "--methods", "catalyst,plain", "--seeds", "1,2"]
    return ["compare", *grid_args, "--output", str(tmp_path / grid), *sets]


GRID_CELLS = ("catalyst/seed1", "catalyst/seed2", "plain/seed1", "plain/seed2")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, shared_data_dir) -> dict[str, tuple[dict, list[dict]]]:
    """Each cell of the stoppable grid, run to its end in this process with one thread."""
    tmp_path = tmp_path_factory.mktemp("uninterrupted")
    with one_torch_thread():
        arguments = _stoppable_grid(tmp_path, shared_data_dir, "grid", [ANSWER] * 2)
        outcome = CliRunner().invoke(app, arguments)
    assert outcome.exit_code == 0, outcome.output
    return {cell: _outcome(tmp_path / "grid" / "sst2" / cell) for cell in GRID_CELLS}


def _left_in_group(group: int) -> list[str]:
    """The processes of process group ``group`` still running (a zombie, which only waits for
    its parent to collect it, runs nothing)."""
    left = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, rest = stat.read_text().rsplit(")", 1)
        except OSError:  # it ended while we looked
            continue
        state, _, pgrp = rest.split()[:3]
        if int(pgrp) == group and state != "Z":
            left.append(f"{stat.parent.name} {name.split('(', 1)[1]} ({state})")
    return left


@pytest.mark.parametrize(
    ("workers", "stop"),
    [(2, signal.SIGTERM), (2, signal.SIGKILL), (1, signal.SIGTERM)],
    ids=["sigterm-2-workers", "sigkill-2-workers", "sigterm-1-process"],
)
def test_a_grid_stopped_by_a_signal_leaves_nothing_running_and_resumes_exactly(
    tmp_path, shared_data_dir, one_thread, uninterrupted, workers, stop
):
    """The signal reaches the grid's main process alone (``kill PID``; SIGKILL as the end of a
    grace period), while each running cell waits 120 s for its second LLM answer. SIGTERM
    stops the grid like Ctrl-C: the running cells stop at once, no other cell starts, the
    command says how to continue; after SIGKILL the workers stop their cells and exit by
    themselves. Nothing of the grid is left running, and the same command again (the LLM now
    answering at once) gives every cell the uninterrupted result."""
    slow = [ANSWER, {"texts": [ANSWER], "delay_s": 120}]
    arguments = _stoppable_grid(tmp_path, shared_data_dir, "grid", slow)
    child = subprocess.Popen(
        [sys.executable, "-m", "llm_catalyst", *arguments, "--workers", str(workers)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,  # its own process group: every process it starts is in it
    )
    cells = tmp_path / "grid" / "sst2"
    running = [cells / cell for cell in GRID_CELLS[:workers]]
    try:
        deadline = time.monotonic() + 120
        while not all(_steps_logged(run_dir) >= 6 for run_dir in running):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the running cells made no progress in 120 s"
            time.sleep(0.05)
        time.sleep(1.0)  # into round 2's LLM call
        os.kill(child.pid, stop)
        _, stderr = child.communicate(timeout=60)
        deadline = time.monotonic() + 20
        while _left_in_group(child.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _left_in_group(child.pid) == [], stderr
    finally:
        if _left_in_group(child.pid):  # a process that outlived the test's patience
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()

    if stop == signal.SIGTERM:
        assert child.returncode == 130, stderr
        assert "SIGTERM: " in stderr and "interrupted during round 2" in stderr
        assert "give the same command again to continue the grid" in stderr
    started = sorted(str(p.relative_to(cells)) for p in cells.glob("*/seed*") if p.is_dir())
    assert started == list(GRID_CELLS[:workers]), stderr
    for run_dir in running:
        assert _checkpoint_step(run_dir) == 6 and not (run_dir / "results.json").exists()

    script(tmp_path, [ANSWER] * 2, "grid.json")  # the same answers, at once: for the new cells
    again = CliRunner().invoke(app, arguments)
    assert again.exit_code == 0, again.output
    for cell in GRID_CELLS:
        assert _outcome(cells / cell) == uninterrupted[cell], cell


def _checkpoint_step(run_dir: Path) -> int:
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["trainer"]["step"]


def _small_cell(tmp_path: Path, data_dir: Path) -> Cell:
    settings = run_settings(tmp_path, data_dir, script(tmp_path, [ANSWER] * 2), method="plain")
    return Cell("sst2/plain/seed1", load_run_config(None, settings))


def test_a_locked_cell_is_refused_with_the_holder_named(tmp_path, shared_data_dir):
    cell = _small_cell(tmp_path, shared_data_dir)
    directory = tmp_path / "grid" / cell.name
    with cell_lock(directory):
        with pytest.raises(CellLocked, match=f"process {os.getpid()} on "), cell_lock(directory):
            pass
        outcome = run_cell(cell, tmp_path / "grid")
        assert outcome.status == "failed"
        assert f"process {os.getpid()}" in outcome.message
        assert not directory.exists()  # the second worker wrote nothing
    assert not directory.with_name("seed1.lock").exists()
    assert not directory.with_name("seed1.lock.json").exists()


def test_the_cell_lock_needs_no_fcntl(tmp_path):
    """Windows has no ``fcntl``: the grid's module must import there and its lock still refuse."""
    code = (
        "import sys; from pathlib import Path\n"
        "sys.modules['fcntl'] = None  # what `import fcntl` sees on Windows\n"
        "from llm_catalyst.experiments.workers import CellLocked, cell_lock\n"
        "directory = Path(sys.argv[1])\n"
        "with cell_lock(directory):\n"
        "    try:\n"
        "        with cell_lock(directory): sys.exit('taken twice')\n"
        "    except CellLocked as error: print(error)\n"
    )
    directory = tmp_path / "grid" / "sst2" / "plain" / "seed1"
    done = subprocess.run(
        [sys.executable, "-c", code, str(directory)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "is being run by process " in done.stdout


def test_the_lock_of_a_killed_worker_is_taken_over(tmp_path):
    directory = tmp_path / "grid" / "sst2" / "plain" / "seed1"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path\n"
            "from llm_catalyst.experiments.workers import cell_lock\n"
            "with cell_lock(Path(sys.argv[1])):\n"
            "    print('locked', flush=True); time.sleep(120)",
            str(directory),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(CellLocked, match=f"process {holder.pid} on "), cell_lock(directory):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    holder_file = directory.with_name("seed1.lock.json")
    assert str(holder.pid) in holder_file.read_text()  # left behind by the dead worker
    with cell_lock(directory):
        assert str(os.getpid()) in holder_file.read_text()
    assert not holder_file.exists()
    assert not directory.with_name("seed1.lock").exists()


def _relayed_from_a_worker(level: int, *calls: tuple[str, str, str]) -> list[logging.LogRecord]:
    """The library's records that reach this process when a spawned worker, set up as a grid
    sets up its workers (at the grid's ``level``), makes each ``(logger, method, message)``
    call."""
    from llm_catalyst.experiments.workers import _relayed_library_log, _send_library_log

    kept: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = kept.append  # type: ignore[method-assign]
    library = logging.getLogger("llm_catalyst")
    library.addHandler(handler)
    context = multiprocessing.get_context("spawn")
    records = context.Queue()
    try:
        with (
            _relayed_library_log(records),
            ProcessPoolExecutor(1, context, _send_library_log, (records, level)) as pool,
        ):
            for name, method, message in calls:
                pool.submit(getattr(logging.getLogger(name), method), message).result()
    finally:
        library.removeHandler(handler)
    return kept


def test_a_worker_process_logs_through_the_grid_process():
    """A spawned worker inherits no handler: its library records at the grid's level are relayed
    and handled here by the logger that made them, so the command line (or a host application)
    shows a worker's warnings as it shows its own."""
    kept = _relayed_from_a_worker(
        logging.WARNING,
        ("llm_catalyst.llm.openai_compat", "info", "a note below the grid's level"),
        ("llm_catalyst.llm.openai_compat", "warning", "structured answers refused"),
    )
    assert [(r.name, r.getMessage()) for r in kept] == [
        ("llm_catalyst.llm.openai_compat", "structured answers refused")
    ]
    assert kept[0].process != os.getpid()


def test_a_workers_run_notes_stay_in_its_records_and_its_warnings_come_through():
    """Several workers' round decisions would interleave without naming their cell: at the
    command line's INFO level a worker relays its loading notes and every warning, not a run's
    own notes (its events.jsonl holds them)."""
    kept = _relayed_from_a_worker(
        logging.INFO,
        ("llm_catalyst.weights.presets", "info", "loading backbone"),
        ("llm_catalyst.catalyst.output", "info", "round 1/3 at step 10: keep S"),
        ("llm_catalyst.catalyst.output", "warning", "a label word of two tokens"),
    )
    assert [(r.name, r.getMessage()) for r in kept] == [
        ("llm_catalyst.weights.presets", "loading backbone"),
        ("llm_catalyst.catalyst.output", "a label word of two tokens"),
    ]


def test_ray_that_is_not_installed_is_named_with_the_fix(tmp_path, shared_data_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees without the package
    cell = _small_cell(tmp_path, shared_data_dir)
    with pytest.raises(ConfigError, match=r"pip install 'llm-catalyst\[ray\]'"):
        run_cells([cell], tmp_path / "grid", ray_address="auto")
    assert not (tmp_path / "grid").exists()


def test_workers_are_checked_before_anything_runs(tmp_path, shared_data_dir):
    cell = _small_cell(tmp_path, shared_data_dir)
    with pytest.raises(ConfigError, match="at least 1"):
        run_cells([cell], tmp_path, workers=0)
    with pytest.raises(ConfigError, match="not both"):
        run_cells([cell], tmp_path, workers=2, ray_address="auto")
    with pytest.raises(ConfigError, match=r"repeated: \['sst2/plain/seed1'\]"):
        run_cells([cell, cell], tmp_path, workers=2)


def test_a_cell_run_with_other_settings_is_neither_skipped_nor_resumed(tmp_path, shared_data_dir):
    cell = _small_cell(tmp_path, shared_data_dir)
    grid = Path(cell.config.output_dir)  # where compare puts its cells
    assert run_cell(cell, grid).status == "finished"
    assert run_cell(cell, grid).message == "finished earlier"

    more_steps = cell.config.model_copy(
        update={
            "train": cell.config.train.model_copy(update={"steps": cell.config.train.steps + 1})
        }
    )
    outcome = run_cell(Cell(cell.name, more_steps), grid)

    assert outcome.status == "failed"
    steps = cell.config.train.steps
    assert f"train.steps: {steps} there, {steps + 1} now" in outcome.message
    assert "delete that directory" in outcome.message


def test_a_grid_copied_to_another_folder_keeps_its_finished_cells(tmp_path, shared_data_dir):
    """Records copied elsewhere (a repository's results/ into runs/) resume there: the folder a
    cell was written in is no setting of its result."""
    cell = _small_cell(tmp_path, shared_data_dir)
    grid = Path(cell.config.output_dir)
    assert run_cell(cell, grid).status == "finished"
    copied = tmp_path / "copied-grid"
    shutil.copytree(grid, copied)
    moved = cell.config.model_copy(update={"output_dir": copied})
    finished = (copied / cell.name / "results.json").read_bytes()

    assert run_cell(Cell(cell.name, moved), copied).message == "finished earlier"
    assert (copied / cell.name / "results.json").read_bytes() == finished


def test_the_llm_settings_of_a_method_that_calls_no_llm_are_not_a_difference(
    tmp_path, shared_data_dir
):
    """A new LLM default (or another --llm file) leaves a grid's finished plain cells standing;
    for a method that calls the LLM it is a difference."""
    cell = _small_cell(tmp_path, shared_data_dir)
    grid = Path(cell.config.output_dir)
    assert run_cell(cell, grid).status == "finished"

    def other_llm(config):
        return config.model_copy(
            update={"llm": config.llm.model_copy(update={"model": "another-model"})}
        )

    assert run_cell(Cell(cell.name, other_llm(cell.config)), grid).message == "finished earlier"
    catalyst = other_llm(cell.config.model_copy(update={"method": "catalyst"}))
    outcome = run_cell(Cell(cell.name, catalyst), grid)
    assert outcome.status == "failed"
    assert "method: 'plain' there, 'catalyst' now" in outcome.message
    assert "llm.model:" in outcome.message


def test_tracking_and_the_race_of_a_method_that_does_not_race_are_not_a_difference(
    tmp_path, shared_data_dir
):
    """Reporting a grid to TensorBoard after it ran, or a new race recipe, leaves its finished
    plain cells standing: neither can change their results."""
    cell = _small_cell(tmp_path, shared_data_dir)
    grid = Path(cell.config.output_dir)
    assert run_cell(cell, grid).status == "finished"
    config = cell.config
    changed = config.model_copy(
        update={
            "tracking": config.tracking.model_copy(update={"report_to": ["tensorboard"]}),
            "race": config.race.model_copy(update={"rung_steps": 2}),
        }
    )
    assert run_cell(Cell(cell.name, changed), grid).message == "finished earlier"


def test_each_cell_shows_its_progress_as_lines_where_stderr_is_no_terminal(
    tmp_path, shared_data_dir
):
    """One worker, stderr a pipe: each cell's stages as log lines named ``cell i/n NAME``; the
    same cells on worker processes write such lines from each worker (``_worker_cell``)."""
    cell = _small_cell(tmp_path, shared_data_dir)
    shown = cell.config.model_copy(
        update={"train": cell.config.train.model_copy(update={"progress": True})}
    )
    output = io.StringIO()
    (outcome,) = run_cells(
        [Cell(cell.name, shown)], tmp_path / "grid", console=Console(file=output)
    )
    assert outcome.status == "finished"
    lines = output.getvalue().splitlines()
    assert "[cell 1/1 sst2/plain/seed1] gradient: step 0/8, 1 scored" in lines, lines
    assert any(
        line.startswith("[cell 1/1 sst2/plain/seed1] test: step 8/8, loss") for line in lines
    )
