"""The option table names real config keys; options, --set and --llm become overrides."""

from __future__ import annotations

import inspect

import pytest
from pydantic import BaseModel

from llm_catalyst.catalyst import RunConfig, load_run_config
from llm_catalyst.commands import COMMANDS
from llm_catalyst.commands.options import OPTION_KEYS, config_overrides
from llm_catalyst.errors import ConfigError


def _field(model: type[BaseModel], dotted_key: str) -> object:
    """The pydantic field a dotted key names; fails the test when any part does not exist."""
    *sections, leaf = dotted_key.split(".")
    for section in sections:
        assert section in model.model_fields, f"{dotted_key}: no section {section!r}"
        annotation = model.model_fields[section].annotation
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel), dotted_key
        model = annotation
    assert leaf in model.model_fields, f"{dotted_key}: {model.__name__} has no {leaf!r}"
    return model.model_fields[leaf]


@pytest.mark.parametrize(("option", "key"), sorted(OPTION_KEYS.items()))
def test_every_option_sets_a_key_that_run_config_has(option, key):
    _field(RunConfig, key)


def test_every_config_option_of_every_command_is_in_the_table():
    not_config = {"config", "llm", "set_", "resume_dir", "tasks", "methods", "seeds", "output"}
    not_config |= {"workers", "ray", "pool", "round_index", "show_prompt", "as_json"}
    not_config |= {"experiment", "ablation"}
    commands_without_config = {"tasks", "report", "project"}
    for name, command in COMMANDS.items():
        if name in commands_without_config:
            continue
        options = set(inspect.signature(command).parameters) - not_config
        assert options <= OPTION_KEYS.keys(), (name, options - OPTION_KEYS.keys())


def test_options_sets_and_llm_file_become_overrides_later_ones_winning(tmp_path):
    llm = tmp_path / "llm.yaml"
    llm.write_text("model: other-model\nproposer:\n  num_proposals: 2\n")
    overrides = config_overrides(
        {"task": "rte", "seed": None, "num": 5, "init_text": "Is it so?"},
        ["data.task=sst2", "train.steps=7"],
        llm,
    )
    assert overrides == {
        "llm": {"model": "other-model", "proposer": {"num_proposals": 2}},
        "llm.proposer.num_proposals": 5,
        "data.task": "sst2",
        "prompt.init_text": "Is it so?",
        "prompt.init": "text",
        "train.steps": 7,
    }
    config = load_run_config(None, overrides)
    assert (config.data.task, config.train.steps, config.llm.model) == ("sst2", 7, "other-model")
    assert config.llm.proposer.num_proposals == 5
    assert (config.prompt.init, config.prompt.init_text) == ("text", "Is it so?")


def test_a_malformed_set_item_is_an_error():
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        config_overrides({}, ["train.steps"])
