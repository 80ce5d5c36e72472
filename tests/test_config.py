"""The one YAML loader: str or Path files, dotted overrides, errors naming file, line and key."""

from __future__ import annotations

import re

import pytest

from llm_catalyst.catalyst import RunConfig, load_run_config
from llm_catalyst.config import load_config, parse_override
from llm_catalyst.errors import ConfigError
from llm_catalyst.llm.config import LLMConfig, load_llm_config


def test_a_path_given_as_str_loads_and_overrides_apply(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  task: rte\ntrain:\n  steps: 7\n")
    config = load_config(RunConfig, str(path), {"train.lr": 0.5, "prompt.length": 4})
    assert (config.data.task, config.train.steps, config.train.lr) == ("rte", 7, 0.5)
    assert config.prompt.length == 4


def test_override_values_keep_their_yaml_types():
    assert parse_override("train.steps=12") == ("train.steps", 12)
    assert parse_override("train.progress=false") == ("train.progress", False)
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        parse_override("train.steps")


def test_a_null_override_sets_null_over_the_file(tmp_path):
    """``--set train.max_grad_norm=null`` turns clipping off (README): the loader applies a
    None override; only a command's options that were not given are left out, by the command."""
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  task: rte\n  shots: 8\ntrain:\n  max_grad_norm: 0.5\n")
    sets = ["train.max_grad_norm=null", "data.shots=null", "data.dev_shots=4"]
    config = load_run_config(path, dict(map(parse_override, sets)))
    assert (config.train.max_grad_norm, config.data.shots) == (None, None)


def test_unknown_keys_are_errors_that_name_them():
    with pytest.raises(ConfigError, match=r"override: train\.stepz: Extra inputs"):
        load_run_config(None, {"data.task": "sst2", "train.stepz": 3})


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_run_config(tmp_path / "nope.yaml")


def test_errors_name_the_file_the_line_and_the_dotted_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "data:\n  task: sst2\n\ntrain:\n  steps: 4\n  lr: -1\nllm:\n  sampling:\n"
        "    temperature: -2\n"
    )
    with pytest.raises(ConfigError) as info:
        load_run_config(path, {"loop.rounds": -1})
    message = str(info.value)
    assert f"{path}, line 6: train.lr: Input should be greater than 0" in message
    assert f"{path}, line 9: llm.sampling.temperature: Input should be greater" in message
    assert "override: loop.rounds: Input should be greater than or equal to 0" in message


def test_a_missing_key_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  steps: 4\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: data: Field required")):
        load_run_config(path)


def test_a_section_is_read_at_top_level_or_under_its_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  task: sst2\nllm:\n  model: m\n  proposer:\n    max_words: 0\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}, line 6: llm.proposer.max_words")):
        load_llm_config(path)
    config = load_llm_config(path, {"proposer.max_words": 9})
    assert (config.model, config.proposer.max_words) == ("m", 9)
    assert load_llm_config() == LLMConfig()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"- a\n- b\n", "the top level must be a mapping of sections, not list"),
        (b"data: \xff\xfe\n", "not UTF-8 text"),
        (b"data:\n  task: [sst2\n", r"run\.yaml, line 3: not valid YAML"),
    ],
)
def test_unreadable_files_are_named_with_the_problem(tmp_path, content, message):
    path = tmp_path / "run.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load_run_config(path)


def test_an_empty_file_is_an_empty_tree(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("# nothing yet\n")
    assert load_run_config(path, {"data.task": "rte"}).data.task == "rte"
