"""Loading run configs: files given as str or Path, dotted overrides, errors that name the key."""

from __future__ import annotations

import pytest

from llm_catalyst.config import load_tune_config, parse_override
from llm_catalyst.errors import ConfigError


def test_a_path_given_as_str_loads_and_overrides_apply(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  task: rte\ntrain:\n  steps: 7\n")
    config = load_tune_config(str(path), {"train.lr": 0.5, "prompt.length": 4})
    assert (config.data.task, config.train.steps, config.train.lr) == ("rte", 7, 0.5)
    assert config.prompt.length == 4


def test_override_values_keep_their_yaml_types():
    assert parse_override("train.steps=12") == ("train.steps", 12)
    assert parse_override("train.progress=false") == ("train.progress", False)
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        parse_override("train.steps")


def test_unknown_keys_are_errors_that_name_them():
    with pytest.raises(ConfigError, match=r"train\.stepz"):
        load_tune_config(None, {"data.task": "sst2", "train.stepz": 3})


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_tune_config(tmp_path / "nope.yaml")
