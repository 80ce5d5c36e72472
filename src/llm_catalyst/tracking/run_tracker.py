"""Run tracking: a run's events and results reported to experiment trackers through
Accelerate's tracker classes (``tracking.report_to``).

A ``RunTracker`` listens to the run directory (``rundir.RunListener``), so the loops know
nothing of it, and events.jsonl stays the run's own record: a tracker that fails is warned
about once and dropped, and the run goes on. It runs on the main process only (the others'
run directories record nothing) and starts its trackers at the first event, once the run
directory exists: a run refused at set-up writes nothing, and a resumed run knows where it
resumed (its first event) before a tracker opens. What is reported:

    train/loss, train/lr, train/grad_norm         every optimizer step
    dev/loss, dev/accuracy                        every dev evaluation of S
    zero_shot/loss, zero_shot/accuracy            the hard prompt on test
    rounds/round_N                                the round's proposals and choice: a table
                                                  (W&B, ClearML, MLflow) or markdown text
    rounds/proposals, rounds/llm_calls, ...       a round's counts
    test/* (validation/*), best/*, llm/*, compute/*, time/*, run/*     results.json
    the resolved config, flattened to dotted keys, as hyperparameters
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelerate.tracking import (
    AimTracker,
    ClearMLTracker,
    CometMLTracker,
    DVCLiveTracker,
    GeneralTracker,
    MLflowTracker,
    TensorBoardTracker,
    WandBTracker,
)
from accelerate.utils import (
    is_aim_available,
    is_clearml_available,
    is_comet_ml_available,
    is_dvclive_available,
    is_mlflow_available,
    is_tensorboard_available,
    is_wandb_available,
)
from pydantic import BaseModel

from llm_catalyst.errors import ConfigError
from llm_catalyst.records import (
    CandidateRecord,
    DevEvalEvent,
    Event,
    Record,
    ResumeEvent,
    RoundEvent,
    RunResults,
    TrainStepEvent,
    ZeroShotEvent,
)
from llm_catalyst.rundir import RunDirectory
from llm_catalyst.tracking.config import TrackingConfig

_log = logging.getLogger(__name__)

# Each tracker's availability check (Accelerate's) and what installs it.
_AVAILABLE: dict[str, tuple[Callable[[], bool], str]] = {
    "tensorboard": (is_tensorboard_available, '"llm-catalyst[tensorboard]"'),
    "mlflow": (is_mlflow_available, '"llm-catalyst[mlflow]"'),
    "wandb": (is_wandb_available, "wandb"),
    "comet_ml": (is_comet_ml_available, "comet_ml"),
    "aim": (is_aim_available, '"aim<4"'),
    "clearml": (is_clearml_available, "clearml"),
    "dvclive": (is_dvclive_available, "dvclive"),
}

# The MLflow tag that names the run directory: a resumed run finds its MLflow run by it.
RUN_DIR_TAG = "llm_catalyst.run_dir"

ROUND_COLUMNS = ["origin", "text", "dev_loss", "dev_accuracy", "chosen"]


def attach_tracking(
    settings: TrackingConfig, run_dir: RunDirectory, config: BaseModel
) -> RunTracker | None:
    """A tracker listening to ``run_dir`` that reports to ``settings.report_to`` (None when
    that is empty), with ``config`` (the run's) as its hyperparameters. A tracker whose
    package is missing is refused here, before the run directory is made."""
    if not settings.report_to:
        return None
    missing = [name for name in settings.report_to if not _AVAILABLE[name][0]()]
    if missing:
        installs = " ".join(dict.fromkeys(_AVAILABLE[name][1] for name in missing))
        raise ConfigError(
            f"tracking.report_to names {', '.join(missing)}, but "
            f"{'its package is' if len(missing) == 1 else 'their packages are'} not installed"
            f"\n  fix: pip install {installs}, or leave {', '.join(missing)} out of "
            "tracking.report_to"
        )
    tracker = RunTracker(settings, run_dir.path, config.model_dump(mode="json"))
    run_dir.listeners.append(tracker)
    return tracker


def hyperparameters(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``tree`` flattened to dotted keys with plain values: trackers take a bool, number or
    text per hyperparameter, so null, lists and empty mappings are written as JSON text."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(hyperparameters(value, name + "."))
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
        else:
            flat[name] = json.dumps(value)
    return flat


@dataclass(frozen=True)
class _Place:
    """Where and under which names the trackers of one run report."""

    settings: TrackingConfig
    run_path: Path
    root: Path  # the tracking folder
    run_name: str  # the run directory, relative to the working directory where it lies in it
    subfolder: str  # TensorBoard's run folder in ``root``: none inside the run directory

    @classmethod
    def of(cls, settings: TrackingConfig, run_path: Path) -> _Place:
        run_path = run_path.resolve()
        try:
            run_name = run_path.relative_to(Path.cwd()).as_posix()
        except ValueError:
            run_name = run_path.as_posix()
        shared = settings.dir is not None
        root = (settings.dir if shared else run_path / "tracking").resolve()
        return cls(settings, run_path, root, run_name, run_name if shared else "")


class RunTracker:
    """Reports what the run directory records to Accelerate's trackers (a ``RunListener``);
    ``config``, the run's configuration as JSON data, becomes the hyperparameters."""

    def __init__(self, settings: TrackingConfig, run_path: Path, config: Mapping[str, Any]):
        self.settings = settings
        self.run_path = Path(run_path)
        self.hyperparameters = hyperparameters(config)
        self._trackers: list[GeneralTracker] = []
        self._started = False  # at the first event
        self._step = 0  # the latest step reported: where rounds and results go

    @property
    def trackers(self) -> list[GeneralTracker]:
        """The trackers that are reporting (none before the first event or after finish)."""
        return list(self._trackers)

    # -- the RunListener protocol ---------------------------------------------------------

    def on_event(self, event: Event) -> None:
        if not self._started:
            resumed = isinstance(event, ResumeEvent)
            self._start(resumed_at=event.step if resumed else None)
        if isinstance(event, TrainStepEvent):
            values = {"train/loss": event.loss, "train/lr": event.lr}
            self._log({**values, "train/grad_norm": event.grad_norm}, event.step)
        elif isinstance(event, DevEvalEvent):
            self._log({"dev/loss": event.loss, "dev/accuracy": event.accuracy}, event.step)
        elif isinstance(event, ZeroShotEvent):
            self._log({"zero_shot/loss": event.loss, "zero_shot/accuracy": event.accuracy}, 0)
        elif isinstance(event, ResumeEvent):
            self._step = max(self._step, event.step)
        elif isinstance(event, RoundEvent):
            self._round(event)

    def on_results(self, results: RunResults) -> None:
        scored = results.scored_split  # "validation" scores must never read as test scores
        values: dict[str, float | None] = {
            f"{scored}/loss": results.test.loss,
            f"{scored}/accuracy": results.test.accuracy,
            "best/step": results.best_step,
            "run/rounds_done": results.rounds_done,
            "run/restarts": results.restarts,
        }
        if results.dev is not None:
            values |= {"best/dev_loss": results.dev.loss, "best/dev_accuracy": results.dev.accuracy}
        for prefix, record in [
            ("llm", results.llm),
            ("compute", results.compute),
            ("time", results.wall_clock),
        ]:
            values |= _numbers(record, prefix)
        self._log(values, self._step)

    def finish(self) -> None:
        """Close every tracker (a run that stopped or failed too); later events are ignored."""
        for tracker in self.trackers:
            self._guard(tracker, tracker.finish)
        self._trackers, self._started = [], True

    # -- reporting ------------------------------------------------------------------------

    def _start(self, resumed_at: int | None) -> None:
        """Open the trackers; a resumed run continues where it was reported (TensorBoard hides
        the steps it repeats, MLflow continues its run) and has stored its configuration."""
        self._started = True
        for name in self.settings.report_to:
            try:  # building MLflow's already opens its store
                place = _Place.of(self.settings, self.run_path)
                place.root.mkdir(parents=True, exist_ok=True)
                tracker = _BUILD[name](place, resumed_at)
            except Exception as error:  # a tracker's own error types, whichever they are
                _warn(name, error)
                continue
            self._trackers.append(tracker)
            self._guard(tracker, tracker.start)
            if resumed_at is None:
                self._guard(
                    tracker, lambda t=tracker: t.store_init_configuration(self.hyperparameters)
                )

    def _log(self, values: Mapping[str, float | None], step: int) -> None:
        self._step = max(self._step, step)
        present = {key: value for key, value in values.items() if value is not None}
        for tracker in self.trackers:
            self._guard(tracker, lambda t=tracker: t.log(present, step=step))

    def _round(self, event: RoundEvent) -> None:
        """The round's counts, and its proposals and choice as a table where the tracker has
        one (markdown text elsewhere), at the run's latest step: a round closes after its
        probe steps, and W&B refuses a step lower than one it has seen."""
        step = max(self._step, event.step)
        self._log(
            {
                "rounds/proposals": len(event.proposals),
                "rounds/skipped": int(event.skipped),
                "rounds/llm_calls": event.details.get("calls"),
                "rounds/llm_cache_hits": event.details.get("cache_hits"),
                "rounds/dev_prompts_scored": event.dev_prompts_scored,
            },
            step,
        )
        key, rows = f"rounds/round_{event.round}", _round_rows(event)
        for tracker in self.trackers:
            self._guard(tracker, lambda t=tracker: _log_table(t, key, rows, event, step))

    def _guard(self, tracker: GeneralTracker, action: Callable[[], object]) -> None:
        """``action()`` if ``tracker`` still reports; one that fails is warned about once,
        closed as far as it can be (an MLflow run left active would refuse the next run of
        this process) and reports no more."""
        if tracker not in self._trackers:
            return
        try:
            action()
        except Exception as error:  # a tracker's own error types, whichever they are
            _warn(tracker.name, error)
            self._trackers.remove(tracker)
            with contextlib.suppress(Exception):
                tracker.finish()


def _warn(name: str, error: Exception) -> None:
    _log.warning(
        "run tracking: %s failed (%s: %s); the run goes on without it (events.jsonl and "
        "results.json hold everything)",
        name,
        type(error).__name__,
        error,
    )


def _numbers(record: Record | None, prefix: str) -> dict[str, float | None]:
    """The numeric fields of ``record`` as ``prefix/field`` (unset ones as None)."""
    if record is None:
        return {}
    return {
        f"{prefix}/{key}": value
        for key, value in record.model_dump().items()
        if value is None or (isinstance(value, int | float) and not isinstance(value, bool))
    }


def _round_rows(event: RoundEvent) -> list[list[Any]]:
    """One row per proposal (``ROUND_COLUMNS``), and the chosen candidate's when it was no
    proposal (S itself, a pool text); ``chosen`` marks the one the run continued from."""

    def same(candidate: CandidateRecord, other: CandidateRecord | None) -> bool:
        # by text and origin: with probes the choice holds its probed score
        return other is not None and (candidate.text, candidate.origin) == (
            other.text,
            other.origin,
        )

    def row(candidate: CandidateRecord) -> list[Any]:
        values = [candidate.dev_loss, candidate.dev_accuracy]
        return [candidate.origin_text, candidate.text, *values, same(candidate, event.chosen)]

    rows = [row(candidate) for candidate in event.proposals]
    chosen = event.chosen
    if chosen is not None and not any(same(chosen, p) for p in event.proposals):
        rows.append(row(chosen))
    return rows


def _log_table(
    tracker: GeneralTracker, key: str, rows: list[list[Any]], event: RoundEvent, step: int
) -> None:
    if hasattr(tracker, "log_table"):  # W&B, ClearML
        tracker.log_table(key, columns=ROUND_COLUMNS, data=rows, step=step)
    elif tracker.name == "mlflow":  # MLflow's own table, an artifact of the active run
        import mlflow

        columns = {name: [row[i] for row in rows] for i, name in enumerate(ROUND_COLUMNS)}
        mlflow.log_table(columns, artifact_file=f"{key}.json")
    else:
        tracker.log({key: _round_markdown(event, rows)}, step=step)


def _round_markdown(event: RoundEvent, rows: list[list[Any]]) -> str:
    """The round as TensorBoard's text plugin (markdown) shows it."""
    what = f"skipped: {event.skip_reason}" if event.skipped else (event.reason or "")
    lines = [f"**Round {event.round}** (step {event.step}): {what}", ""]
    lines += ["| " + " | ".join(ROUND_COLUMNS) + " |", "|" + "---|" * len(ROUND_COLUMNS)]
    for origin, text, loss, accuracy, chosen in rows:
        cells = [origin, text, _number(loss), _number(accuracy), "yes" if chosen else ""]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


# -- one Accelerate tracker per name, its files under the tracking folder ------------------


def _tensorboard(place: _Place, resumed_at: int | None) -> GeneralTracker:
    # purge_step: TensorBoard hides what the stopped run logged after the resumed step
    purge = {} if resumed_at is None else {"purge_step": resumed_at + 1}
    return TensorBoardTracker(place.subfolder, place.root / "tensorboard", **purge)


def _mlflow(place: _Place, resumed_at: int | None) -> GeneralTracker:
    """MLflow keeps one tracking URI and active run per process (its fluent API, which
    Accelerate's tracker uses), so each run sets the URI as it starts. The local store is
    SQLite, MLflow's default backend: its file store is in maintenance mode and refuses to
    open (MLflow 3.18)."""
    import mlflow

    settings = place.settings
    artifacts = None
    uri = settings.mlflow_uri
    if uri is None:
        store = place.root / "mlflow"
        store.mkdir(parents=True, exist_ok=True)
        uri, artifacts = f"sqlite:///{store / 'mlflow.db'}", (store / "artifacts").as_uri()
    mlflow.set_tracking_uri(uri)
    run_id = None if resumed_at is None else _mlflow_run(settings.project, place.run_path)
    return MLflowTracker(
        experiment_name=settings.project,
        logging_dir=artifacts,
        run_id=run_id,
        tags={RUN_DIR_TAG: str(place.run_path)},
        run_name=place.run_name,
    )


def _mlflow_run(experiment: str, run_path: Path) -> str | None:
    """The id of the MLflow run a run directory last reported to (None: a new run).
    Compared here, not in a filter string, which has no escape for a quote in a path."""
    import mlflow

    if mlflow.get_experiment_by_name(experiment) is None:
        return None
    runs = mlflow.search_runs(
        experiment_names=[experiment], output_format="list", order_by=["attributes.start_time DESC"]
    )
    return next(
        (r.info.run_id for r in runs if r.data.tags.get(RUN_DIR_TAG) == str(run_path)), None
    )


def _wandb(place: _Place, resumed_at: int | None) -> GeneralTracker:
    return WandBTracker(place.settings.project, name=place.run_name, dir=str(place.root))


def _comet_ml(place: _Place, resumed_at: int | None) -> GeneralTracker:
    return CometMLTracker(place.settings.project)


def _aim(place: _Place, resumed_at: int | None) -> GeneralTracker:
    return AimTracker(place.run_name, os.fspath(place.root / "aim"))


def _clearml(place: _Place, resumed_at: int | None) -> GeneralTracker:
    return ClearMLTracker(place.settings.project, task_name=place.run_name)


def _dvclive(place: _Place, resumed_at: int | None) -> GeneralTracker:
    return DVCLiveTracker(dir=os.fspath(place.root / "dvclive"))


_BUILD: dict[str, Callable[[_Place, int | None], GeneralTracker]] = {
    "tensorboard": _tensorboard,
    "mlflow": _mlflow,
    "wandb": _wandb,
    "comet_ml": _comet_ml,
    "aim": _aim,
    "clearml": _clearml,
    "dvclive": _dvclive,
}
