"""A grid on a real Ray cluster (a head with 2 CPUs, on loopback only) gives the results of the
same grid on local worker processes, cell by cell, and the cluster leaves nothing running.

The grids go through the command a user types (``python -m llm_catalyst compare``), each in
its own process, started in a folder other than the cluster's, with a relative ``--output``,
and the data folder given by the command's environment alone (``LLM_CATALYST_DATA``): a Ray
task runs in a worker process the cluster started, not in the command's process, so whatever
that worker would not share with the command (working directory, environment) shows up as a
failed cell, other results or files in the wrong place.

Ray turns a loopback address into the machine's network address unless
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (then every Ray server binds 127.0.0.1 and the driver
connects there): both the cluster and the command get it, so nothing listens beyond loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from llm_catalyst.data.paths import DATA_ENV_VAR
from tests.catalyst.small_runs import ANSWER, run_settings, script
from tests.catalyst.test_resume import _outcome

LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
CELLS = ("plain/seed1", "catalyst/seed1")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _processes_of(session: int, marker: str) -> list[str]:
    """Running processes of the cluster: those in the session of ``ray start`` (it starts the
    others, which stay in its session), or naming the cluster's temp folder ``marker``."""
    left = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            name, rest = (proc / "stat").read_text().rsplit(")", 1)
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # it ended while we looked
            continue
        state, _, _, sid = rest.split()[:4]
        if state != "Z" and (int(sid) == session or marker in command):
            left.append(f"{proc.name} {name.split('(', 1)[1]}: {command[:120]}")
    return left


@pytest.fixture
def ray_cluster() -> Iterator[str]:
    """A Ray head with 2 CPUs on 127.0.0.1 at a free port, its files in a temp folder of its
    own (short: Ray's socket paths must fit in 107 bytes); yields its address. Stopped at the
    end, also when the test failed: SIGTERM to ``ray start --block``, which stops what it
    started; anything still there after 60 s is killed and fails the test."""
    temp_dir = tempfile.mkdtemp(prefix="ray-")
    port = _free_port()
    head = subprocess.Popen(
        [
            *(sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block"),
            *("--num-cpus", "2", "--num-gpus", "0", "--disable-usage-stats"),
            *("--node-ip-address", "127.0.0.1", "--port", str(port)),
            *("--include-dashboard=false", "--dashboard-port", str(_free_port())),
            *("--dashboard-agent-listen-port", str(_free_port()), "--temp-dir", temp_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=temp_dir,
        env={**_without(os.environ, DATA_ENV_VAR), **LOOPBACK_ONLY},
        start_new_session=True,  # the cluster's processes are found by this session
    )
    try:
        assert head.stdout is not None
        started = []
        for line in head.stdout:  # ends when `ray start` exits, as on a failed start
            started.append(line)
            if "Ray runtime started" in line:
                break
        assert head.poll() is None, "".join(started)
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()
        try:
            head.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.communicate()
        deadline = time.monotonic() + 20
        while _processes_of(head.pid, temp_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _processes_of(head.pid, temp_dir)
        for process in left:
            os.kill(int(process.split()[0]), signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert left == [], "the stopped cluster left these running"


def _without(environment: Mapping[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in environment.items() if key != name}


def _compare(tmp_path: Path, data_dir: Path, grid: str, *extra: str) -> None:
    """A plain and a catalyst cell (1 round after 2 steps, 2 final steps) with their own LLM
    answers and cache, run in ``tmp_path`` with the relative ``--output grid``; the data folder
    is given by the environment."""
    settings = run_settings(
        tmp_path,
        data_dir,
        script(tmp_path, [ANSWER] * 2, f"{grid}.json"),
        **{"train.steps": 4, "loop.rounds": 1, "loop.stage_steps": 2},
    )
    settings["llm.cache.directory"] = str(tmp_path / f"{grid}-cache")
    for key in ("data.task", "data.data_dir", "output_dir"):
        settings.pop(key)
    environment = {**os.environ, **LOOPBACK_ONLY, "OMP_NUM_THREADS": "1"}
    environment[DATA_ENV_VAR] = str(data_dir)
    sets = [arg for k, v in settings.items() for arg in ("--set", f"{k}={json.dumps(v)}")]
    grid_args = ["--tasks", "sst2", "--methods", "plain,catalyst", "--seeds", "1", *extra]
    done = subprocess.run(
        [sys.executable, "-m", "llm_catalyst", "compare", *grid_args, "--output", grid, *sets],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.count(": finished after") == 2, done.stderr


@pytest.mark.timeout(300)
def test_a_grid_on_a_ray_cluster_gives_the_results_of_local_workers(
    tmp_path, shared_data_dir, ray_cluster
):
    _compare(tmp_path, shared_data_dir, "ray", "--ray", ray_cluster)
    _compare(tmp_path, shared_data_dir, "local", "--workers", "2")

    for cell in CELLS:
        on_ray, local = (_outcome(tmp_path / grid / "sst2" / cell) for grid in ("ray", "local"))
        assert on_ray == local, cell
    assert not list((tmp_path / "ray").rglob("*.lock*"))  # every lock was released
