"""A run asked to stop by SIGTERM (``kill``, Slurm, Kubernetes) or Ctrl-C stops within seconds,
wherever it is, and resumes to the uninterrupted result.

The stopped runs are real child processes sent real signals; the reference and the resumed runs
go through the ``run`` command in this process (tests/catalyst/test_resume.py, whose small run
of 3 rounds after stages of 3 steps and 3 final steps they share).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from llm_catalyst.catalyst import load_run_config, run
from llm_catalyst.catalyst.stop import RunInterrupted, StopRequest, StopSignals
from llm_catalyst.commands import app
from llm_catalyst.llm.client import LLMRequest
from llm_catalyst.llm.config import SamplingConfig
from llm_catalyst.llm.llama_cpp import LlamaCppClient
from tests.catalyst.small_runs import ANSWER, run_settings, script
from tests.catalyst.test_resume import (
    _arguments,
    _outcome,
    _resume,
    _run_dir,
)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, shared_data_dir) -> tuple[dict, list[dict]]:
    tmp_path = tmp_path_factory.mktemp("reference")
    outcome = CliRunner().invoke(app, _arguments(tmp_path, shared_data_dir, "runs"))
    assert outcome.exit_code == 0, outcome.output
    return _outcome(_run_dir(tmp_path / "runs"))


def _checkpoint_step(run_dir: Path) -> int:
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["trainer"]["step"]


def test_a_stop_asked_just_before_a_run_starts_stops_it_in_its_set_up(tmp_path, shared_data_dir):
    """As when a grid is stopped just as one of its cells starts: the stop that the grid's
    scope took holds in the cell's run, which stops before its first step."""
    settings = run_settings(tmp_path, shared_data_dir, script(tmp_path, [ANSWER] * 2))
    with StopSignals("no other cell starts") as grid:
        signal.raise_signal(signal.SIGINT)
        assert grid.requested
        with pytest.raises(RunInterrupted, match="interrupted during the set-up"):
            run(load_run_config(None, settings))
    assert not list(tmp_path.rglob("events.jsonl"))


class _Lines:
    """The lines a child writes to a pipe, read as they come (a thread reads, the test polls)."""

    def __init__(self, pipe) -> None:
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._reader.start()

    def _read(self, pipe) -> None:
        for line in pipe:
            self.lines.append(line)

    def wait_for(self, child: subprocess.Popen, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert child.poll() is None, "".join(self.lines)
            assert time.monotonic() < deadline, f"no {text!r} in {timeout} s: {self.lines}"
            time.sleep(0.05)

    def text(self) -> str:
        self._reader.join(timeout=10)
        return "".join(self.lines)


def test_a_stop_during_an_llm_call_is_honoured_within_seconds_and_resumes_exactly(
    tmp_path, shared_data_dir, reference
):
    """Round 3's LLM call takes 120 s; Ctrl-C during it stops the run at once, dropping the
    round, which the resume redoes from the checkpoint of step 9 (its answer was never given,
    so the resumed run asks again: the script's first step, the same answer at once)."""
    slow = script(tmp_path, [ANSWER, ANSWER, {"texts": [ANSWER], "delay_s": 120}], "slow.json")
    arguments = _arguments(
        tmp_path, shared_data_dir, "runs", **{"train.progress": True, "llm.script": str(slow)}
    )
    child = subprocess.Popen(
        [sys.executable, "-m", "llm_catalyst", *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        stderr = _Lines(child.stderr)
        stderr.wait_for(child, "round 3/3: LLM")
        time.sleep(0.5)  # well into the call
        child.send_signal(signal.SIGINT)
        asked = time.monotonic()
        child.wait(timeout=30)
        took = time.monotonic() - asked
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    output = stderr.text()
    assert child.returncode == 130, output
    assert took < 10, f"the stop took {took:.1f} s"
    run_dir = _run_dir(tmp_path / "runs")
    assert "interrupted during round 3" in output and f"--resume {run_dir}" in output
    assert _checkpoint_step(run_dir) == 9
    assert not (run_dir / "results.json").exists()
    _resume(run_dir)
    assert _outcome(run_dir) == reference


@pytest.mark.slow
def test_a_stop_during_a_llama_cpp_call_cancels_it_within_seconds(tmp_path):
    """llama.cpp generates inside one call into C++, where Python runs no signal handler: a
    stop during it must still end the call (and the generation) within seconds, and leave the
    in-process server answering as before."""
    client = LlamaCppClient("smollm2-135m-instruct", n_ctx=2048)
    count = ({"role": "user", "content": "Write the numbers from 1 to 500 separated by commas."},)
    # All 1500 tokens: about 20 s on 2 cores.
    long = LLMRequest(count, SamplingConfig(n=1, temperature=0.0, max_tokens=1500, seed=1))
    press = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    with (
        StopRequest(tmp_path) as stop,
        pytest.raises(RunInterrupted, match="during round 1"),
        stop.abandonable("round 1"),
    ):
        press.start()
        started = time.monotonic()
        try:
            client.complete(long)
        finally:
            press.cancel()
    took = time.monotonic() - started
    assert took < 6, f"the call went on for {took:.1f} s"
    short = LLMRequest(count, long.params.model_copy(update={"max_tokens": 5}))
    assert client.complete(short).usage.completion_tokens == 5
