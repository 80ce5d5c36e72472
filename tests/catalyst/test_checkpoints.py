"""Run directories with checkpoints: atomic files, resume rules, the state that goes into them."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest
import torch

from llm_catalyst.catalyst.config import load_run_config
from llm_catalyst.catalyst.domain import TrajectoryPoint
from llm_catalyst.catalyst.runner import resume, run
from llm_catalyst.catalyst.state import Clock, LoopState
from llm_catalyst.catalyst.stop import StopRequest
from llm_catalyst.errors import ArtifactError, ConfigError
from llm_catalyst.records import Metrics, TrainStepEvent
from llm_catalyst.rundir import RunDirectory
from tests.catalyst.small_runs import ANSWER, run_settings, script


def _kinds(run_dir: Path) -> list[str]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [json.loads(line)["event"] for line in lines]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, shared_data_dir) -> Path:
    tmp_path = tmp_path_factory.mktemp("finished")
    path = script(tmp_path, [ANSWER] * 2)
    settings = run_settings(tmp_path, shared_data_dir, path, method="random-restart")
    return run(load_run_config(None, settings)).run_dir


@pytest.fixture
def unfinished_copy(finished_run, tmp_path) -> Path:
    """The finished run without results.json: as if killed after its last checkpoint."""
    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy)
    (copy / "results.json").unlink()
    return copy


def _results(run_dir: Path) -> dict:
    results = json.loads((run_dir / "results.json").read_text())
    return {k: results[k] for k in ("test", "dev", "best_step", "projected_text", "compute")}


def test_resuming_from_the_final_checkpoint_repeats_only_the_test(finished_run, unfinished_copy):
    events_before = _kinds(unfinished_copy)
    resume(unfinished_copy)
    assert _results(unfinished_copy) == _results(finished_run)
    assert _kinds(unfinished_copy) == [*events_before, "resume"]
    assert len(json.loads((unfinished_copy / "run.json").read_text())["resumed"]) == 1


def test_resume_without_a_checkpoint_starts_over_in_place(finished_run, unfinished_copy):
    (unfinished_copy / "checkpoint.pt").unlink()
    resume(unfinished_copy)
    assert _results(unfinished_copy) == _results(finished_run)
    assert _kinds(unfinished_copy) == _kinds(finished_run), "the old events are replaced"


def test_a_finished_run_is_not_run_again(finished_run):
    events = (finished_run / "events.jsonl").read_text()
    result = resume(finished_run)
    assert result.results.model_dump(mode="json") == json.loads(
        (finished_run / "results.json").read_text()
    )
    assert (finished_run / "events.jsonl").read_text() == events


def test_resume_refuses_an_edited_configuration(unfinished_copy):
    config = unfinished_copy / "config.yaml"
    text = config.read_text()
    assert "lr: 0.003" in text
    config.write_text(text.replace("lr: 0.003", "lr: 0.1"))
    with pytest.raises(ConfigError, match=r"config\.yaml changed after the checkpoint"):
        resume(unfinished_copy)


def test_resume_of_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(ConfigError, match="is not a run directory"):
        resume(tmp_path)


def test_a_corrupt_checkpoint_says_how_to_recover(unfinished_copy):
    (unfinished_copy / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ArtifactError, match="delete it to rerun from the start"):
        resume(unfinished_copy)


def test_checkpoint_write_is_atomic(tmp_path):
    run_dir = RunDirectory.create(
        tmp_path, "cell", {"a": 1}, seed=1, protocol="fewshot", timestamp=False
    )
    assert run_dir.path == tmp_path / "cell"
    run_dir.save_checkpoint({"step": 1, "prompt": torch.ones(2, 3)})
    # A process killed while writing the next checkpoint leaves only the temporary file.
    (tmp_path / "cell" / "checkpoint.pt.tmp").write_bytes(b"half of a checkpoint")
    loaded = run_dir.load_checkpoint()
    assert loaded is not None and loaded["step"] == 1
    torch.testing.assert_close(loaded["prompt"], torch.ones(2, 3))
    run_dir.save_checkpoint({"step": 2})
    assert run_dir.load_checkpoint() == {"step": 2}
    assert not (tmp_path / "cell" / "checkpoint.pt.tmp").exists()
    with pytest.raises(ConfigError, match="already exists"):
        RunDirectory.create(tmp_path, "cell", {}, seed=1, protocol="fewshot", timestamp=False)


def test_events_are_cut_back_to_the_checkpoint(tmp_path):
    run_dir = RunDirectory.create(tmp_path, "cell", {}, seed=1, protocol="fewshot")
    run_dir.log(TrainStepEvent(step=1, loss=0.5))
    size = run_dir.events_size()
    run_dir.log(TrainStepEvent(step=2, loss=0.4))
    run_dir.truncate_events(size)
    assert [e["step"] for e in run_dir.events()] == [1]


def test_loop_state_survives_a_checkpoint(tmp_path):
    state = LoopState.fresh("accuracy")
    state.best.offer(3, Metrics(loss=0.5, accuracy=0.75, n=8), torch.ones(2, 4), _NoHead())
    state.best_origin = "restart of round 1"
    state.rounds_done = 1
    state.trajectory.append(TrajectoryPoint(3, 0.7, torch.zeros(2, 4)))
    state.tried.append("a prompt")
    state.compute.dev_forward_passes = 40
    path = tmp_path / "state.pt"
    payload = state.to_payload()
    torch.save(payload, path)
    restored = LoopState.from_payload(torch.load(path, weights_only=True))
    assert restored.best.result == Metrics(loss=0.5, accuracy=0.75, n=8) and restored.best.step == 3
    torch.testing.assert_close(restored.best.prompt, torch.ones(2, 4))
    assert restored.best_origin == "restart of round 1" and restored.rounds_done == 1
    assert restored.trajectory[0].step == 3 and restored.tried == ["a prompt"]
    assert restored.compute.dev_forward_passes == 40
    assert restored.clock.totals()["total_s"] >= payload["clock"]["total_s"]


class _NoHead:
    """A backbone without a trainable head, as far as the best-prompt tracker looks."""

    def head_state(self) -> dict:
        return {}


def test_clock_continues_from_an_earlier_process():
    clock = Clock({"total_s": 10.0, "gradient_s": 4.0, "scoring_s": 1.0, "llm_s": 2.0})
    with clock.phase("llm_s"):
        pass
    totals = clock.totals()
    assert totals["total_s"] >= 10.0 and totals["gradient_s"] == 4.0 and totals["llm_s"] >= 2.0


def test_first_ctrl_c_asks_to_stop_and_the_second_aborts(tmp_path: Path):
    before = signal.getsignal(signal.SIGINT)
    with StopRequest(tmp_path) as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
