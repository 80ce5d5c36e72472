"""Finished and unfinished runs under a folder, read into typed records.

A run directory is any folder holding ``run.json`` or ``results.json`` (see ``rundir.py``); it is
finished when ``results.json`` exists. Statistics and reports read only these records, never the
raw files, so a malformed file is reported once, here, with its path and the field at fault.

Public API::

    collect_runs(root) -> RunCollection        # finished records + unfinished directories
    load_run(path) -> RunRecord                # one finished run directory
    read_events(path) -> RunEvents             # train steps, dev evals, rounds, restarts
    RunRecord, Metrics, WallClock, LLMUsage, UnfinishedRun, RunCollection,
    RunEvents, TrainStep, DevEval, Round, Candidate, Restart

``RunRecord.wall_clock`` comes from ``results.json`` ("wall_clock") when the run recorded it;
otherwise its total is ``finished_at - started_at`` of ``run.json`` (which, for a resumed run,
includes the time it was stopped) and the phase times are unknown (None).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llm_catalyst.errors import DataError

RESULTS_FILE = "results.json"
RUN_FILE = "run.json"
EVENTS_FILE = "events.jsonl"
CONFIG_FILE = "config.yaml"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Metrics(_Record):
    accuracy: float
    loss: float
    n: int = Field(ge=0)


class WallClock(_Record):
    """Seconds spent by a run; phases a run did not record are None."""

    total_s: float = Field(ge=0)
    gradient_s: float | None = Field(default=None, ge=0)
    scoring_s: float | None = Field(default=None, ge=0)
    llm_s: float | None = Field(default=None, ge=0)


class LLMUsage(_Record):
    calls: int = Field(default=0, ge=0)
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    cost: float | None = None
    skipped_rounds: int = Field(default=0, ge=0)


class _ResultsFile(_Record):
    """The fields of ``results.json`` this package reads; other keys are ignored."""

    method: str
    task: str
    seed: int
    test: Metrics
    dev: Metrics | None = None
    best_step: int | None = None
    zero_shot_test: Metrics | None = None
    projected_text: str | None = None
    wall_clock: WallClock | None = None
    llm: LLMUsage | None = None


class _RunFile(_Record):
    protocol: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class RunRecord(_ResultsFile):
    """One finished run: what was run, what it scored, what it cost."""

    path: Path
    protocol: str | None = None
    backbone: str | None = None


@dataclass(frozen=True)
class UnfinishedRun:
    """A run directory without ``results.json``: still running, killed, or waiting to resume."""

    path: Path
    started_at: datetime | None


@dataclass(frozen=True)
class RunCollection:
    finished: tuple[RunRecord, ...]
    unfinished: tuple[UnfinishedRun, ...]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(
            f"not valid JSON ({error.msg}, column {error.colno})",
            path=path,
            line=error.lineno,
            fix="the file is corrupt; restore it, or rerun or resume this run so it is rewritten",
        ) from error
    except UnicodeDecodeError as error:
        raise DataError(
            "not UTF-8 text", path=path, fix="restore the file or rerun this run"
        ) from error


def _problems(error: ValidationError) -> str:
    return "; ".join(
        f"field '{'.'.join(map(str, item['loc'])) or '(top level)'}': {item['msg']}"
        for item in error.errors()
    )


_Model = TypeVar("_Model", bound=BaseModel)


def _validated(model: type[_Model], payload: Any, path: Path) -> _Model:
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise DataError(
            f"unexpected content: {_problems(error)}",
            path=path,
            fix="this file was not written by llm-catalyst or was edited; restore it or rerun "
            "this run",
        ) from error


def _run_file(run_dir: Path) -> _RunFile:
    path = run_dir / RUN_FILE
    if not path.exists():
        return _RunFile()
    return _validated(_RunFile, _read_json(path), path)


def _backbone(run_dir: Path) -> str | None:
    """The backbone name, kept so that runs of different backbones are not mistaken for seeds."""
    path = run_dir / CONFIG_FILE
    if not path.exists():
        return None
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise DataError(
            f"not valid YAML ({getattr(error, 'problem', error)})",
            path=path,
            line=None if mark is None else mark.line + 1,
            fix="restore the run's config.yaml or rerun this run",
        ) from error
    backbone = config.get("backbone") if isinstance(config, dict) else None
    model = backbone.get("model") if isinstance(backbone, dict) else None
    return None if model is None else str(model)


def _fallback_wall_clock(info: _RunFile) -> WallClock | None:
    if info.started_at is None or info.finished_at is None:
        return None
    seconds = (info.finished_at - info.started_at).total_seconds()
    return WallClock(total_s=seconds) if seconds >= 0 else None


def load_run(path: Path) -> RunRecord:
    """Read one finished run directory; raises DataError naming any file that is malformed."""
    run_dir = Path(path)
    results_path = run_dir / RESULTS_FILE
    if not results_path.exists():
        raise DataError(
            "results.json is missing: the run has not finished",
            path=run_dir,
            fix="resume the run (llm-catalyst run --resume DIR) or leave it out of the comparison",
        )
    results = _validated(_ResultsFile, _read_json(results_path), results_path)
    info = _run_file(run_dir)
    return RunRecord(
        path=run_dir,
        protocol=info.protocol,
        backbone=_backbone(run_dir),
        wall_clock=results.wall_clock or _fallback_wall_clock(info),
        **results.model_dump(exclude={"wall_clock"}),
    )


def _is_run_dir(path: Path) -> bool:
    return (path / RUN_FILE).is_file() or (path / RESULTS_FILE).is_file()


def _run_dirs(root: Path) -> Iterator[Path]:
    """Run directories under ``root`` (or ``root`` itself); never looks inside a run directory."""
    for current, subdirs, _ in os.walk(root):
        here = Path(current)
        if _is_run_dir(here):
            subdirs.clear()
            yield here
        else:
            subdirs.sort()


def collect_runs(root: Path) -> RunCollection:
    """All run directories at or below ``root``, split into finished records and unfinished."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            "no such directory",
            path=root,
            fix="pass a run directory or a folder that contains run directories",
        )
    finished: list[RunRecord] = []
    unfinished: list[UnfinishedRun] = []
    for run_dir in _run_dirs(root):
        if (run_dir / RESULTS_FILE).exists():
            finished.append(load_run(run_dir))
        else:
            unfinished.append(UnfinishedRun(run_dir, _run_file(run_dir).started_at))
    return RunCollection(tuple(finished), tuple(unfinished))


class TrainStep(_Record):
    step: int
    loss: float


class DevEval(_Record):
    step: int
    loss: float
    accuracy: float
    improved: bool = False


class Candidate(_Record):
    """A prompt text scored on dev during a round (unscored fields are None)."""

    text: str
    dev_loss: float | None = None
    dev_accuracy: float | None = None
    source: str | None = None


class Round(_Record):
    round: int
    step: int
    pool: tuple[Candidate, ...] = ()
    proposals: tuple[Candidate, ...] = ()
    chosen: Candidate | None = None
    reason: str | None = None
    skipped: bool = False
    skip_reason: str | None = None


class Restart(_Record):
    step: int
    round: int | None = None
    text: str | None = None


@dataclass(frozen=True)
class RunEvents:
    """The events a report shows, each kind sorted by step (or round); other kinds are ignored.

    A resumed run logs again the steps after its last checkpoint: the last record of a step
    (or round) wins, so the curves are those of the run that finished.
    """

    train_steps: tuple[TrainStep, ...] = ()
    dev_evals: tuple[DevEval, ...] = ()
    rounds: tuple[Round, ...] = ()
    restarts: tuple[Restart, ...] = ()


# Each event kind read, and the field that identifies a record of it when a run repeats it.
_EVENT_MODELS: dict[str, tuple[type[_Record], str]] = {
    "train_step": (TrainStep, "step"),
    "dev_eval": (DevEval, "step"),
    "round": (Round, "round"),
    "restart": (Restart, "step"),
}


def _event_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, event) pairs; a last line cut short by a killed process is dropped."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as error:
            if number == len(lines) and not text.endswith("\n"):
                return
            raise DataError(
                f"not valid JSON ({error.msg})",
                path=path,
                line=number,
                fix="delete or repair this line; events are one JSON object per line",
            ) from error
        if not isinstance(event, dict) or not isinstance(event.get("event"), str):
            raise DataError(
                'expected a JSON object with an "event" name',
                path=path,
                line=number,
                fix="delete or repair this line; events are one JSON object per line",
            )
        yield number, event


def read_events(run_dir: Path) -> RunEvents:
    """The train steps, dev evaluations, rounds and restarts of a run (empty if none logged)."""
    path = Path(run_dir) / EVENTS_FILE
    if not path.exists():
        return RunEvents()
    latest: dict[str, dict[int, Any]] = {kind: {} for kind in _EVENT_MODELS}
    for number, event in _event_lines(path):
        if event["event"] not in _EVENT_MODELS:
            continue
        model, key = _EVENT_MODELS[event["event"]]
        try:
            record = model.model_validate(event)
        except ValidationError as error:
            raise DataError(
                f"{event['event']} event: {_problems(error)}",
                path=path,
                line=number,
                fix="delete or repair this line; it does not match the event format",
            ) from error
        latest[event["event"]][getattr(record, key)] = record
    ordered = {kind: tuple(by_key[k] for k in sorted(by_key)) for kind, by_key in latest.items()}
    return RunEvents(
        train_steps=ordered["train_step"],
        dev_evals=ordered["dev_eval"],
        rounds=ordered["round"],
        restarts=ordered["restart"],
    )
