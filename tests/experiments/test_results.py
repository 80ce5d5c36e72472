from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_catalyst import experiments
from llm_catalyst.errors import DataError
from llm_catalyst.experiments.results import collect_runs, load_run, read_events
from llm_catalyst.records import DevEvalEvent, Metrics, RunResults, TrainStepEvent
from llm_catalyst.rundir import RunDirectory
from tests.experiments.synthetic_runs import training_events, write_run


def test_grid_finished_and_unfinished(tmp_path: Path) -> None:
    write_run(tmp_path / "sst2" / "plain-s1", method="plain", seed=1)
    write_run(tmp_path / "sst2" / "catalyst-s1", method="catalyst", seed=1, accuracy=0.7)
    write_run(tmp_path / "rte" / "plain-s2", task="rte", seed=2, accuracy=None)
    (tmp_path / "notes").mkdir()

    runs = collect_runs(tmp_path)

    assert sorted((r.task, r.method, r.seed) for r in runs.finished) == [
        ("sst2", "catalyst", 1),
        ("sst2", "plain", 1),
    ]
    (unfinished,) = runs.unfinished
    assert unfinished.path == tmp_path / "rte" / "plain-s2"
    assert unfinished.started_at is not None and unfinished.started_at.hour == 10


def test_a_run_directory_is_its_own_root_and_never_searched_inside(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run")
    write_run(run_dir / "artifact" / "copied-run", method="catalyst")

    runs = collect_runs(run_dir)

    assert [r.path for r in runs.finished] == [run_dir]
    assert runs.unfinished == ()


def test_record_fields(tmp_path: Path) -> None:
    run_dir = write_run(
        tmp_path / "run",
        task="rte",
        method="catalyst",
        seed=3,
        accuracy=0.625,
        wall_clock={"total_s": 90.0, "gradient_s": 50.0, "scoring_s": 10.0, "llm_s": 30.0},
        llm={"calls": 4, "prompt_tokens": 900, "completion_tokens": 120, "cost": 0.0},
        future_key={"ignored": True},
    )

    record = load_run(run_dir)

    assert (record.task, record.method, record.seed) == ("rte", "catalyst", 3)
    assert record.test.accuracy == 0.625 and record.test.n == 100
    assert record.dev is not None and record.dev.accuracy == 0.75
    assert record.best_step == 4 and record.zero_shot_test is None
    assert (record.protocol, record.backbone) == ("fewshot", "tiny-causal-lm")
    assert record.wall_clock is not None and record.wall_clock.llm_s == 30.0
    assert record.llm is not None and record.llm.calls == 4 and record.llm.skipped_rounds == 0


def test_wall_clock_falls_back_to_run_json_times(tmp_path: Path) -> None:
    record = load_run(write_run(tmp_path / "run"))  # 10:00:00 -> 10:02:30
    assert record.wall_clock is not None
    assert record.wall_clock.total_s == 150.0
    assert record.wall_clock.llm_s is None


def test_truncated_results_file_is_named(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run")
    results = run_dir / "results.json"
    results.write_text(results.read_text()[:40], encoding="utf-8")

    with pytest.raises(DataError, match="not valid JSON") as error:
        collect_runs(tmp_path)
    assert str(results) in str(error.value)
    assert "line 1" in str(error.value)


def test_wrong_field_is_named(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run")
    results = run_dir / "results.json"
    payload = json.loads(results.read_text())
    payload["test"]["accuracy"] = "high"
    del payload["method"]
    results.write_text(json.dumps(payload), encoding="utf-8")

    with pytest.raises(DataError) as error:
        load_run(run_dir)
    message = str(error.value)
    assert str(results) in message
    assert "'test.accuracy'" in message and "'method'" in message


def test_unfinished_run_and_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="has not finished"):
        load_run(write_run(tmp_path / "run", accuracy=None))
    with pytest.raises(DataError, match="no such directory"):
        collect_runs(tmp_path / "absent")


def test_events_are_typed_and_sorted(tmp_path: Path) -> None:
    events = [
        *training_events(4),
        {"event": "splits", "train": 32},
        {"event": "restart", "step": 2, "round": 1, "text": "new start"},
        {
            "event": "round",
            "round": 1,
            "step": 2,
            "pool": [{"text": "a", "dev_loss": 0.7, "dev_accuracy": 0.5, "source": "trajectory"}],
            "proposals": [{"text": "b", "dev_loss": 0.6, "dev_accuracy": 0.6}],
            "chosen": {"text": "b", "source": "llm", "dev_loss": 0.6, "dev_accuracy": 0.6},
            "reason": "best proposal beats the current prompt",
            "skipped": False,
            "skip_reason": None,
        },
    ]
    parsed = read_events(write_run(tmp_path / "run", events=events))

    assert [s.step for s in parsed.train_steps] == [1, 2, 3, 4]
    assert [(e.step, e.accuracy) for e in parsed.dev_evals] == [(2, 0.6), (4, 0.7)]
    assert parsed.restarts[0].text == "new start"
    (round_,) = parsed.rounds
    assert round_.chosen is not None and round_.chosen.text == "b"
    assert round_.pool[0].origin_text == "trajectory" and round_.proposals[0].origin is None


def test_steps_repeated_after_resume_keep_the_last_record(tmp_path: Path) -> None:
    events = training_events(3, eval_every=10)
    events.append({"event": "train_step", "step": 2, "loss": 0.25, "lr": 0.01})
    parsed = read_events(write_run(tmp_path / "run", events=events))
    assert [(s.step, s.loss) for s in parsed.train_steps] == [(1, 1.0), (2, 0.25), (3, 1 / 3)]


def test_a_line_cut_short_by_a_kill_is_dropped(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", events=training_events(2))
    with (run_dir / "events.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"event": "train_step", "st')
    assert [s.step for s in read_events(run_dir).train_steps] == [1, 2]


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', '"event" name'),
        ('{"event": "round", "step": 3}', "field 'round'"),
    ],
)
def test_a_bad_event_line_is_located(tmp_path: Path, bad_line: str, message: str) -> None:
    run_dir = write_run(tmp_path / "run", events=training_events(1, eval_every=5))
    events_path = run_dir / "events.jsonl"
    with events_path.open("a", encoding="utf-8") as handle:
        handle.write(bad_line + "\n")
        handle.write(json.dumps(training_events(2)[-1]) + "\n")

    with pytest.raises(DataError, match=message) as error:
        read_events(run_dir)
    assert f"{events_path}, line 2" in str(error.value)


def test_every_lazy_export_resolves() -> None:
    assert all(callable(getattr(experiments, name)) for name in experiments.__all__)


def test_reads_what_the_run_directory_writes(tmp_path: Path) -> None:
    run = RunDirectory.create(
        tmp_path, "sst2-plain-s5", {"backbone": {"model": "tiny-encoder"}}, seed=5, protocol="paper"
    )
    run.log(TrainStepEvent(step=1, loss=0.7, lr=0.01, grad_norm=0.1))
    run.log(DevEvalEvent(step=1, improved=True, loss=0.6, accuracy=0.5, n=8))
    assert collect_runs(tmp_path).unfinished[0].path == run.path
    run.write_results(
        RunResults(
            method="plain",
            task="sst2",
            seed=5,
            test=Metrics(loss=0.5, accuracy=0.8, n=10),
            dev=Metrics(loss=0.6, accuracy=0.5, n=8),
            best_step=1,
            projected_text="x",
        )
    )

    (record,) = collect_runs(tmp_path).finished
    assert (record.seed, record.protocol, record.backbone) == (5, "paper", "tiny-encoder")
    assert record.wall_clock is not None and record.wall_clock.total_s >= 0
    events = read_events(run.path)
    assert [(s.step, s.loss) for s in events.train_steps] == [(1, 0.7)]
    assert [(e.step, e.accuracy) for e in events.dev_evals] == [(1, 0.5)]
