"""The ``tracking`` section: off by default, names as Accelerate spells them, ``all`` refused."""

from __future__ import annotations

import pytest

from llm_catalyst.catalyst.config import load_run_config
from llm_catalyst.errors import ConfigError
from llm_catalyst.tracking.config import TrackingConfig


def _tracking(**overrides: object) -> TrackingConfig:
    settings = {"data.task": "sst2", **{f"tracking.{k}": v for k, v in overrides.items()}}
    return load_run_config(None, settings).tracking


def test_tracking_is_off_by_default_and_writes_inside_the_run_directory() -> None:
    tracking = _tracking()
    assert tracking.report_to == []
    assert tracking.dir is None and tracking.mlflow_uri is None


def test_one_name_may_be_given_bare_and_a_repeated_name_counts_once() -> None:
    assert _tracking(report_to="tensorboard").report_to == ["tensorboard"]
    assert _tracking(report_to=["mlflow", "tensorboard", "mlflow"]).report_to == [
        "mlflow",
        "tensorboard",
    ]


def test_all_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigError, match=r"tracking\.report_to.*`all` is not accepted.*name them"):
        _tracking(report_to=["all"])


def test_an_unknown_tracker_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"tracking\.report_to.*'tensorboard'.*'dvclive'"):
        _tracking(report_to=["tensorbord"])
