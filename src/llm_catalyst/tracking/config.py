"""The ``tracking`` section of a run config: which experiment trackers a run reports to.

Light on purpose (pydantic only): the run config imports it, and ``llm-catalyst --help`` must
not load torch. Whether a tracker's package is installed is checked when a run is set up
(``tracking.run_tracker.attach_tracking``), not here, so a config written on a machine with
TensorBoard still reads where it is missing (``report``, a grid comparing settings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Accelerate's names for its trackers (``accelerate.utils.LoggerType``), less its ``all``.
TrackerName = Literal["tensorboard", "mlflow", "wandb", "comet_ml", "aim", "clearml", "dvclive"]
TRACKER_NAMES: tuple[str, ...] = get_args(TrackerName)


class TrackingConfig(BaseModel):
    """Experiment trackers the main process reports the run to, besides events.jsonl, which
    stays the run's own record. Off by default.

    ``all`` (Accelerate's "every tracker installed") is refused: the same config would report
    to different places, some of them services off this machine, depending on what happens to
    be installed, and config.yaml would no longer say where a run went.
    """

    model_config = ConfigDict(extra="forbid")

    report_to: list[TrackerName] = Field(
        default_factory=list,
        description="experiment trackers to report to, by Accelerate's names: "
        + ", ".join(f"`{name}`" for name in TRACKER_NAMES)
        + ' (docs/guide.md, "Run tracking"); empty: none',
    )
    dir: Path | None = Field(
        None,
        description="where trackers that write files put them; null: `tracking` inside the run "
        "directory. A folder shared by several runs keeps them apart by run directory",
    )
    project: str = Field(
        "llm-catalyst",
        min_length=1,
        description="the MLflow experiment, W&B, Comet or ClearML project the run reports to",
    )
    mlflow_uri: str | None = Field(
        None,
        description="MLflow's tracking URI (a server, `sqlite:///...`); null: an SQLite store "
        "in `mlflow/` of the tracking folder",
    )

    @field_validator("report_to", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        """One name may be given bare (``--set tracking.report_to=tensorboard``); ``all`` is
        refused with the reason."""
        names = [value] if isinstance(value, str) else value
        if isinstance(names, list) and "all" in names:
            raise ValueError(
                "`all` is not accepted: it would report to whichever trackers happen to be "
                "installed; name them, e.g. [tensorboard, mlflow]"
            )
        return names

    @field_validator("report_to")
    @classmethod
    def _once(cls, names: list[TrackerName]) -> list[TrackerName]:
        """A tracker named twice reports once."""
        return list(dict.fromkeys(names))
