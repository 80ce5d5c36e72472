"""Grids on worker processes: the same table as one process, and cells that never collide."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
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


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread here, hence one per worker: both grids compute alike, bit for bit."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
    assert not list((tmp_path / "parallel").rglob("*.lock"))  # every lock was released

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
    lock_file = directory.with_name("seed1.lock")
    assert str(holder.pid) in lock_file.read_text()  # left behind by the dead worker
    with cell_lock(directory):
        assert str(os.getpid()) in lock_file.read_text()
    assert not lock_file.exists()


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
