"""A run killed with SIGKILL, or stopped with Ctrl-C, resumes to the uninterrupted result.

The interrupted runs are real child processes (``python -m llm_catalyst run ...``); the
reference and the resumed runs go through the same command of the same app in this process.
The LLM is scripted and its answers are cached in the run's cache directory, as they would be
for a real LLM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from llm_catalyst.commands import app
from tests.catalyst.small_runs import ANSWER, run_settings, script

COMPARED_EVENTS = ("train_step", "dev_eval", "trajectory", "round", "restart")


# 3 rounds after stages of 3 steps; each probes S and the 2 best proposals for 1 step (9 steps)
# and the best probed version continues: 20 - 9 - 9 = 2 final steps.
PROBES = {
    "train.steps": 20,
    "loop.selection": "best",
    "loop.margin": 0.0,
    "loop.probe_steps": 1,
    "loop.probe_top": 2,
}


def _arguments(tmp_path: Path, data_dir: Path, name: str, **extra: object) -> list[str]:
    """3 rounds of 3 steps and 3 final steps; every round restarts (selection: first)."""
    settings = run_settings(
        tmp_path,
        data_dir,
        script(tmp_path, [ANSWER] * 3),
        **{
            "train.steps": 12,
            "loop.rounds": 3,
            "loop.selection": "first",
            "output_dir": str(tmp_path / name),
            "llm.cache.directory": str(tmp_path / f"cache-{name}"),
            **extra,
        },
    )
    return ["run", *(arg for k, v in settings.items() for arg in ("--set", f"{k}={json.dumps(v)}"))]


def _run_dir(root: Path) -> Path:
    (run_dir,) = root.iterdir()
    return run_dir


def _events(run_dir: Path) -> list[dict]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _outcome(run_dir: Path) -> tuple[dict, list[dict]]:
    """What must not depend on interruptions: the results and the logged training history."""
    results = json.loads((run_dir / "results.json").read_text())
    kept = {
        key: results[key]
        for key in ("test", "dev", "best_step", "best_origin", "projected_text", "restarts")
    }
    kept["compute"] = results["compute"]
    kept["llm"] = {
        key: results["llm"][key]
        for key in ("calls", "prompt_tokens", "completion_tokens", "skipped_rounds")
    }
    events = [
        _without_replay_counts({k: v for k, v in e.items() if k != "time"})
        for e in _events(run_dir)
        if e["event"] in COMPARED_EVENTS
    ]
    return kept, events


def _without_replay_counts(event: dict) -> dict:
    """A round's LLM answer made before a kill is replayed from the cache after the resume: the
    same answer, counted as a cache hit instead of a call (the run's total of calls, fresh or
    cached, is compared in results.json)."""
    if event["event"] != "round":
        return event
    details = {k: v for k, v in event["details"].items() if k not in ("calls", "cache_hits")}
    return {**event, "details": details}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, shared_data_dir) -> tuple[dict, list[dict]]:
    tmp_path = tmp_path_factory.mktemp("reference")
    outcome = CliRunner().invoke(app, _arguments(tmp_path, shared_data_dir, "runs"))
    assert outcome.exit_code == 0, outcome.output
    return _outcome(_run_dir(tmp_path / "runs"))


@pytest.fixture(scope="module")
def probed_reference(tmp_path_factory, shared_data_dir) -> tuple[dict, list[dict]]:
    tmp_path = tmp_path_factory.mktemp("probed-reference")
    outcome = CliRunner().invoke(app, _arguments(tmp_path, shared_data_dir, "runs", **PROBES))
    assert outcome.exit_code == 0, outcome.output
    return _outcome(_run_dir(tmp_path / "runs"))


def _start_child(tmp_path: Path, data_dir: Path, **extra: object) -> subprocess.Popen:
    """The run command in a child process, with one torch thread like this one (conftest)."""
    return subprocess.Popen(
        [sys.executable, "-m", "llm_catalyst", *_arguments(tmp_path, data_dir, "runs", **extra)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _wait_for(child: subprocess.Popen, root: Path, seen) -> Path:
    """Poll the child's events until ``seen(events)``; the child must still be running."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()
        runs = list(root.iterdir()) if root.exists() else []
        if runs and (runs[0] / "events.jsonl").exists():
            try:
                events = _events(runs[0])
            except json.JSONDecodeError:  # a line being written
                events = []
            if seen(events):
                return runs[0]
        time.sleep(0.02)
    child.kill()
    raise AssertionError("the child made no progress in 120 s")


def _past_round_one(events: list[dict]) -> bool:
    """Round 1 (after step 3) is done and step 4 of the second stage is logged."""
    return any(e["event"] == "train_step" and e["step"] == 4 for e in events)


def _resume(run_dir: Path) -> None:
    outcome = CliRunner().invoke(app, ["run", "--resume", str(run_dir)])
    assert outcome.exit_code == 0, outcome.output


def test_sigkill_then_resume_gives_the_uninterrupted_result(tmp_path, shared_data_dir, reference):
    child = _start_child(tmp_path, shared_data_dir)
    run_dir = _wait_for(child, tmp_path / "runs", _past_round_one)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert not (run_dir / "results.json").exists(), "the child was killed before finishing"
    assert (run_dir / "checkpoint.pt").exists()
    _resume(run_dir)
    assert [e["event"] for e in _events(run_dir)].count("resume") == 1
    assert _outcome(run_dir) == reference
    # Scores reused before the kill are kept in the checkpoint and reused again after it.
    assert reference[0]["compute"]["dev_prompts_reused"] > 0


@pytest.mark.parametrize(
    ("signum", "name"), [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")]
)
def test_a_stop_signal_writes_a_checkpoint_then_resume_gives_the_same_result(
    tmp_path, shared_data_dir, reference, signum, name
):
    """Ctrl-C, or SIGTERM as ``kill``, Slurm and Kubernetes send it: the same stop."""
    child = _start_child(tmp_path, shared_data_dir)
    run_dir = _wait_for(child, tmp_path / "runs", _past_round_one)
    child.send_signal(signum)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 130, stderr
    assert f"{name}: stopping" in stderr
    assert f"--resume {run_dir}" in stderr
    # The run stops at the first step boundary after the signal, usually mid-stage (steps 4-5),
    # where no stage-end checkpoint is written (or in round 2 if the child was slow): either way
    # the checkpoint must be at the last step logged.
    stopped_at = max(e["step"] for e in _events(run_dir) if e["event"] == "train_step")
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert checkpoint["trainer"]["step"] == stopped_at >= 4
    assert not (run_dir / "results.json").exists()
    _resume(run_dir)
    assert _outcome(run_dir) == reference


def _in_round_two(events: list[dict]) -> bool:
    """Round 2 has scored its pool: its LLM call and probes follow."""
    return any(e["event"] == "trajectory" and e["round"] == 2 for e in events)


def test_sigkill_during_a_probed_run_then_resume_gives_the_uninterrupted_result(
    tmp_path, shared_data_dir, probed_reference
):
    child = _start_child(tmp_path, shared_data_dir, **PROBES)
    run_dir = _wait_for(child, tmp_path / "runs", _in_round_two)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert not (run_dir / "results.json").exists(), "the child was killed before finishing"
    _resume(run_dir)
    assert _outcome(run_dir) == probed_reference
    results, events = probed_reference
    assert results["compute"]["gradient_steps"] == 20 and results["compute"]["probe_steps"] == 9
    assert sum(len(e["probes"]) for e in events if e["event"] == "round") == 9
