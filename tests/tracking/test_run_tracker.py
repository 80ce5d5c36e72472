"""Run tracking: tiny real runs report to TensorBoard and MLflow what events.jsonl records, read
back with each tool's own reader; a missing package is refused before the run directory is
made; a tracker that fails mid-run is warned about once and the run goes on.

The runs are the catalyst tests' small runs (tiny causal LM, SST-2, scripted LLM). Nothing
here depends on timing or needs a network: MLflow writes to its SQLite store in the run
directory.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from accelerate.tracking import GeneralTracker

from llm_catalyst.catalyst import RunInterrupted, load_run_config, resume, run
from llm_catalyst.catalyst.runner import RunResult
from llm_catalyst.errors import ConfigError
from llm_catalyst.records import CandidateRecord, ResumeEvent, RoundEvent, TrainStepEvent
from llm_catalyst.rundir import RunDirectory
from llm_catalyst.tracking import run_tracker
from llm_catalyst.tracking.config import TRACKER_NAMES, TrackingConfig
from llm_catalyst.tracking.run_tracker import RunTracker, hyperparameters
from tests.catalyst.golden import InterruptAt
from tests.catalyst.small_runs import ANSWER, run_settings, script
from tests.torch_threads import one_torch_thread

STEPS = 8  # small_runs: 2 rounds of 3 steps, then 2 final steps


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """As in the catalyst tests: the tiny model gains nothing from a second thread."""
    with one_torch_thread():
        yield


@pytest.fixture(autouse=True)
def no_mlflow_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's variables (a server, an experiment, a run to log into) would redirect a run."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID", "MLFLOW_TAGS"):
        monkeypatch.delenv(name, raising=False)


def _config(tmp_path: Path, data_dir: Path, report_to: list[str], **extra: Any) -> Any:
    settings = run_settings(tmp_path, data_dir, script(tmp_path, [ANSWER] * 2), **extra)
    return load_run_config(None, {**settings, "tracking.report_to": report_to})


def _events(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    return [e for e in RunDirectory(run_dir).events() if e["event"] == kind]


def _scalars(logdir: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def test_tensorboard_holds_the_runs_curves_rounds_and_results(
    tmp_path: Path, shared_data_dir: Path
) -> None:
    result = run(_config(tmp_path, shared_data_dir, ["tensorboard"]))
    board = _scalars(result.run_dir / "tracking" / "tensorboard")

    losses = [(e.step, e.value) for e in board.Scalars("train/loss")]
    steps = _events(result.run_dir, "train_step")
    assert len(losses) == STEPS == len(steps)
    assert losses == [(e["step"], pytest.approx(e["loss"], rel=1e-6)) for e in steps]
    accuracies = [(e.step, e.value) for e in board.Scalars("dev/accuracy")]
    dev = _events(result.run_dir, "dev_eval")
    assert accuracies == [(e["step"], pytest.approx(e["accuracy"], rel=1e-6)) for e in dev]
    (test,) = board.Scalars("test/accuracy")
    assert test.value == pytest.approx(result.results.test.accuracy, rel=1e-6)
    assert test.step == STEPS
    texts = board.Tags()["tensors"]
    assert {"rounds/round_1/text_summary", "rounds/round_2/text_summary"} <= set(texts)
    round_1 = board.Tensors("rounds/round_1/text_summary")[0].tensor_proto.string_val[0].decode()
    for proposal in _events(result.run_dir, "round")[0]["proposals"]:
        assert proposal["text"] in round_1


def _mlflow_run(run_dir: Path) -> tuple[Any, Any]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'tracking' / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("llm-catalyst")
    (found,) = client.search_runs([experiment.experiment_id])
    return client, found


def _stopped_and_resumed(config: Any) -> RunResult:
    """The run stopped by Ctrl-C after step 5 (a checkpoint there), then resumed."""
    with pytest.raises(RunInterrupted):
        run(config, name="stopped", progress=InterruptAt("gradient", 5))
    return resume(config.output_dir / "stopped", progress=InterruptAt("never", 0))


def test_a_stopped_and_resumed_run_is_one_mlflow_run_with_the_runs_metrics(
    tmp_path: Path, shared_data_dir: Path
) -> None:
    config = _config(tmp_path, shared_data_dir, ["mlflow"], **{"train.progress": True})
    result = _stopped_and_resumed(config)
    run_dir = result.run_dir

    client, found = _mlflow_run(run_dir)  # one run: the resumed run continued it
    assert found.info.status == "FINISHED"
    assert found.data.tags[run_tracker.RUN_DIR_TAG] == str(run_dir.resolve())
    history = client.get_metric_history(found.info.run_id, "train/loss")
    steps = _events(run_dir, "train_step")
    assert sorted((m.step, m.value) for m in history) == [(e["step"], e["loss"]) for e in steps]
    assert len(history) == STEPS
    history = client.get_metric_history(found.info.run_id, "dev/accuracy")
    dev = _events(run_dir, "dev_eval")
    assert sorted((m.step, m.value) for m in history) == [(e["step"], e["accuracy"]) for e in dev]
    assert found.data.metrics["test/accuracy"] == result.results.test.accuracy
    assert found.data.params["train.steps"] == str(STEPS)
    assert found.data.params["arm"] == "null"
    round_1 = client.download_artifacts(found.info.run_id, "rounds/round_1.json", str(tmp_path))
    table = Path(round_1).read_text(encoding="utf-8")
    for proposal in _events(run_dir, "round")[0]["proposals"]:
        assert proposal["text"] in table


def test_tensorboard_hides_the_steps_a_resumed_run_repeats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed at step 5 whose last checkpoint was at step 3 logs steps 4 and 5 again.
    TensorBoard reads a folder's event files in name order, which starts with the second they
    were opened: the killed run's clock stands at an earlier second, as a real one's would."""
    settings = TrackingConfig(report_to=["tensorboard"])
    killed = RunTracker(settings, tmp_path, {})
    with monkeypatch.context() as earlier:
        earlier.setattr(time, "time", lambda: 1_000_000_000.0)
        for step in range(1, 6):
            killed.on_event(TrainStepEvent(step=step, loss=1.0))
        killed.finish()
    resumed = RunTracker(settings, tmp_path, {})
    resumed.on_event(ResumeEvent(step=3, round=1))
    for step in (4, 5):
        resumed.on_event(TrainStepEvent(step=step, loss=2.0))
    resumed.finish()

    board = _scalars(tmp_path / "tracking" / "tensorboard")
    losses = [(e.step, e.value) for e in board.Scalars("train/loss")]
    assert losses == [(1, 1.0), (2, 1.0), (3, 1.0), (4, 2.0), (5, 2.0)]


def test_a_missing_package_is_refused_before_the_run_directory_is_made(
    tmp_path: Path, shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for package in ("tensorboard", "tensorboardX"):  # as if neither were installed
        monkeypatch.setitem(sys.modules, package, None)
    config = _config(tmp_path, shared_data_dir, ["tensorboard"])
    with pytest.raises(ConfigError) as refused:
        run(config)
    message = str(refused.value)
    assert "tracking.report_to names tensorboard" in message
    assert 'pip install "llm-catalyst[tensorboard]"' in message
    assert not config.output_dir.exists()


class _Recorder(GeneralTracker):
    """A tracker that records its calls and fails at ``fail_at`` (a method name) if given."""

    name = "recorder"
    requires_logging_directory = False
    main_process_only = False

    def __init__(self, fail_at: str | None = None, tables: bool = False):
        super().__init__()
        self.fail_at = fail_at
        self.calls: list[tuple[str, Any]] = []
        if tables:
            self.log_table = self._log_table

    @property
    def tracker(self) -> None:
        return None

    def _call(self, method: str, payload: Any = None) -> None:
        self.calls.append((method, payload))
        if method == self.fail_at:
            raise OSError(f"{method} failed")

    def start(self) -> None:
        self._call("start")

    def store_init_configuration(self, values: dict) -> None:
        self._call("config", values)

    def log(self, values: dict, step: int | None = None, **kwargs: Any) -> None:
        self._call("log", (values, step))

    def _log_table(self, table_name: str, columns: list, data: list, step: int) -> None:
        self._call("table", (table_name, columns, data, step))

    def finish(self) -> None:
        self._call("finish")


def _recording(monkeypatch: pytest.MonkeyPatch, recorder: _Recorder) -> None:
    monkeypatch.setitem(run_tracker._BUILD, "tensorboard", lambda place, resumed_at: recorder)


def _failing_build(place: Any, resumed_at: int | None) -> GeneralTracker:
    raise OSError("build failed")  # as MLflow's store refusing to open


@pytest.mark.parametrize("fail_at", ["build", "start", "log"])
def test_a_tracker_that_fails_is_warned_about_once_and_the_run_goes_on(
    tmp_path: Path,
    shared_data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fail_at: str,
) -> None:
    recorder = _Recorder(fail_at=fail_at)
    if fail_at == "build":
        monkeypatch.setitem(run_tracker._BUILD, "tensorboard", _failing_build)
    else:
        _recording(monkeypatch, recorder)
    with caplog.at_level(logging.WARNING, logger="llm_catalyst"):
        result = run(_config(tmp_path, shared_data_dir, ["tensorboard"]))
    assert result.results.test.n == 16  # the run finished
    (warning,) = [r for r in caplog.records if r.name == run_tracker.__name__]
    name = "tensorboard" if fail_at == "build" else "recorder"
    assert f"{name} failed (OSError: {fail_at} failed)" in warning.getMessage()
    assert "the run goes on" in warning.getMessage()
    methods = [method for method, _ in recorder.calls]
    if fail_at != "build":  # called no more after it failed, and closed
        assert methods.count(fail_at) == 1 and methods[-1] == "finish"


def _round(chosen: CandidateRecord | None) -> RoundEvent:
    proposals = (
        CandidateRecord(text="a | b", origin="llm", dev_loss=0.5, dev_accuracy=0.75),
        CandidateRecord(text="c", origin="llm", dev_loss=0.7, dev_accuracy=0.5),
    )
    return RoundEvent(round=1, step=3, proposals=proposals, chosen=chosen, reason="restart")


def _tracker(monkeypatch: pytest.MonkeyPatch, recorder: _Recorder, tmp_path: Path) -> RunTracker:
    _recording(monkeypatch, recorder)
    settings = TrackingConfig(report_to=["tensorboard"], dir=tmp_path / "tracking")
    return RunTracker(settings, tmp_path / "run", {"train": {"lr": 0.1, "betas": [0.9, 0.99]}})


def test_a_round_is_a_table_where_the_tracker_has_one_and_marks_the_choice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = _Recorder(tables=True)
    tracker = _tracker(monkeypatch, recorder, tmp_path)
    tracker.on_event(TrainStepEvent(step=5, loss=0.6))  # a probe step logged before its round
    current = CandidateRecord(text="S", origin="current", dev_loss=0.6, dev_accuracy=0.5)
    tracker.on_event(_round(chosen=current))
    tracker.on_event(_round(chosen=CandidateRecord(text="c", origin="llm", dev_loss=0.65)))

    assert recorder.calls[:2] == [
        ("start", None),
        ("config", {"train.lr": 0.1, "train.betas": "[0.9, 0.99]"}),
    ]
    tables = [payload for method, payload in recorder.calls if method == "table"]
    assert [(name, step) for name, _, _, step in tables] == [("rounds/round_1", 5)] * 2
    columns = tables[0][1]
    assert columns == ["origin", "text", "dev_loss", "dev_accuracy", "chosen"]
    assert [row[-1] for row in tables[0][2]] == [False, False, True]  # S, kept, added
    assert tables[0][2][2][:2] == ["current", "S"]
    assert [row[-1] for row in tables[1][2]] == [False, True]  # a proposal chosen
    counts = next(p for m, p in recorder.calls if m == "log" and "rounds/proposals" in p[0])
    assert counts == (
        {"rounds/proposals": 2, "rounds/skipped": 0, "rounds/dev_prompts_scored": 0},
        5,
    )


def test_a_round_is_markdown_where_the_tracker_has_no_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = _Recorder()
    tracker = _tracker(monkeypatch, recorder, tmp_path)
    tracker.on_event(_round(chosen=None))
    tracker.finish()
    tracker.on_event(_round(chosen=None))  # after finish: nothing more is reported

    texts = [p for m, p in recorder.calls if m == "log" and "rounds/round_1" in p[0]]
    ((values, step),) = texts
    assert step == 3
    assert values["rounds/round_1"].splitlines() == [
        "**Round 1** (step 3): restart",
        "",
        "| origin | text | dev_loss | dev_accuracy | chosen |",
        "|---|---|---|---|---|",
        "| llm | a \\| b | 0.5000 | 0.7500 |  |",
        "| llm | c | 0.7000 | 0.5000 |  |",
    ]
    assert [m for m, _ in recorder.calls][-1] == "finish"


def test_hyperparameters_are_dotted_keys_with_plain_values() -> None:
    tree = {"train": {"lr": 0.003, "betas": [0.9, 0.999]}, "arm": None, "llm": {"prices": {}}}
    assert hyperparameters({**tree, "data": {"task": {"name": "films"}, "shots": 16}}) == {
        "train.lr": 0.003,
        "train.betas": "[0.9, 0.999]",
        "arm": "null",
        "llm.prices": "{}",
        "data.task.name": "films",
        "data.shots": 16,
    }


@pytest.mark.parametrize("name", [n for n in TRACKER_NAMES if n not in ("tensorboard", "mlflow")])
def test_every_other_tracker_is_accelerates_with_its_files_in_the_tracking_folder(
    tmp_path: Path, name: str
) -> None:
    """Built, not started (their packages are not installed here): W&B, Aim and DVCLive
    write under the tracking folder; Comet and ClearML report to their own services."""
    settings = TrackingConfig(report_to=[name], dir=tmp_path / "tracking")
    place = run_tracker._Place.of(settings, tmp_path / "run")
    tracker = run_tracker._BUILD[name](place, None)
    assert tracker.name == name
    written = {
        "wandb": lambda: tracker.init_kwargs["dir"],
        "aim": lambda: tracker.aim_repo_path,
        "dvclive": lambda: tracker.init_kwargs["dir"],
    }
    if name in written:
        assert Path(written[name]()).is_relative_to(tmp_path / "tracking")
