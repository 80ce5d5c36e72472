"""Finished and unfinished runs under a folder, read through the schemas of ``records``.

Statistics and reports read only these records, never the raw files, so a malformed file is
reported once, here, with its path and the field at fault. Run directories written before the
current format are read too (their missing fields are None).
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
from pydantic import BaseModel, ValidationError

from llm_catalyst.errors import DataError
from llm_catalyst.jsonio import read_json
from llm_catalyst.records import (
    DevEvalEvent,
    Event,
    RaceEntrantsEvent,
    Record,
    RestartEvent,
    RoundEvent,
    RunResults,
    TrainStepEvent,
    WallClock,
)

RESULTS_FILE = "results.json"
RUN_FILE = "run.json"
EVENTS_FILE = "events.jsonl"
CONFIG_FILE = "config.yaml"
_CORRUPT_FIX = "the file is corrupt; restore it, or rerun or resume this run so it is rewritten"


class _RunFile(Record):
    protocol: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class RunRecord(RunResults):
    """One finished run: what was run, what it scored, what it cost, and where it lies."""

    path: Path
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


def _problems(error: ValidationError) -> str:
    return "; ".join(
        f"field '{'.'.join(map(str, item['loc'])) or '(top level)'}': {item['msg']}"
        for item in error.errors()
    )


_Model = TypeVar("_Model", bound=BaseModel)


def _validated(
    model: type[_Model],
    payload: Any,
    path: Path,
    *,
    what: str = "unexpected content",
    line: int | None = None,
    fix: str = "this file was not written by llm-catalyst or was edited; restore it or rerun "
    "this run",
) -> _Model:
    """``payload`` as ``model``; a mismatch is a DataError naming the file (and line) and
    every field that does not fit."""
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise DataError(f"{what}: {_problems(error)}", path=path, line=line, fix=fix) from error


def _run_file(run_dir: Path) -> _RunFile:
    path = run_dir / RUN_FILE
    if not path.exists():
        return _RunFile()
    return _validated(_RunFile, read_json(path, _CORRUPT_FIX), path)


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
    results = _validated(RunResults, read_json(results_path, _CORRUPT_FIX), results_path)
    info = _run_file(run_dir)
    return RunRecord(
        path=run_dir,
        backbone=_backbone(run_dir),
        **results.model_dump(exclude={"wall_clock", "protocol"}),
        protocol=results.protocol or info.protocol,
        wall_clock=results.wall_clock or _fallback_wall_clock(info),
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


@dataclass(frozen=True)
class RunEvents:
    """The events a report shows, each kind sorted by step (or round); other kinds are ignored.

    A resumed run logs again the steps after its last checkpoint: the last record of a step
    (or round) wins, so the curves are those of the run that finished. ``race_entrants`` is a
    start race's field with what its source said (texts rejected, merged or cut to the word
    cap), which results.json's race does not hold.
    """

    train_steps: tuple[TrainStepEvent, ...] = ()
    dev_evals: tuple[DevEvalEvent, ...] = ()
    rounds: tuple[RoundEvent, ...] = ()
    restarts: tuple[RestartEvent, ...] = ()
    race_entrants: RaceEntrantsEvent | None = None


# Each event kind read, and the field that identifies a record of it when a run repeats it.
_EVENT_MODELS: dict[str, tuple[type[Event], str]] = {
    TrainStepEvent.kind: (TrainStepEvent, "step"),
    DevEvalEvent.kind: (DevEvalEvent, "step"),
    RoundEvent.kind: (RoundEvent, "round"),
    RestartEvent.kind: (RestartEvent, "step"),
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


def _event(model: type[_Model], event: dict[str, Any], path: Path, line: int) -> _Model:
    return _validated(
        model,
        event,
        path,
        what=f"{event['event']} event",
        line=line,
        fix="delete or repair this line; it does not match the event format",
    )


def read_events(run_dir: Path) -> RunEvents:
    """The train steps, dev evaluations, rounds, restarts and race entrants of a run (empty if
    none logged)."""
    path = Path(run_dir) / EVENTS_FILE
    if not path.exists():
        return RunEvents()
    latest: dict[str, dict[int, Any]] = {kind: {} for kind in _EVENT_MODELS}
    race_entrants = None
    for number, event in _event_lines(path):
        kind = event["event"]
        if kind == RaceEntrantsEvent.kind:  # one per run: the field is asked once, checkpointed
            race_entrants = _event(RaceEntrantsEvent, event, path, number)
        elif kind in _EVENT_MODELS:
            model, key = _EVENT_MODELS[kind]
            record = _event(model, event, path, number)
            latest[kind][getattr(record, key)] = record
    ordered = {kind: tuple(by_key[k] for k in sorted(by_key)) for kind, by_key in latest.items()}
    return RunEvents(
        train_steps=ordered["train_step"],
        dev_evals=ordered["dev_eval"],
        rounds=ordered["round"],
        restarts=ordered["restart"],
        race_entrants=race_entrants,
    )
