"""DataConfig validation and the config -> splits path used by runs."""

from collections import Counter

import pytest
from pydantic import ValidationError

from llm_catalyst.config import load_config
from llm_catalyst.data.config import DataConfig, load_data, load_splits
from llm_catalyst.data.specs import TextTaskSpec
from llm_catalyst.errors import ConfigError


def test_defaults_and_dev_shots_following_shots(data_root):
    config = DataConfig(task="rte", data_dir=data_root, shots=4, seed=2)
    assert config.source == "auto"
    splits = load_splits(config)
    assert Counter(e.label for e in splits.train) == {0: 4, 1: 4}
    assert Counter(e.label for e in splits.dev) == {0: 4, 1: 4}
    assert len(splits.test) == 277
    assert splits.seed == 2


def test_unknown_task_name_fails_validation_with_suggestions():
    with pytest.raises(ValidationError, match="did you mean boolq"):
        DataConfig(task="boolqq")


def test_full_pool_needs_dev_shots():
    with pytest.raises(ValidationError, match="needs dev_shots"):
        DataConfig(task="sst2", shots=None)
    assert DataConfig(task="sst2", shots=None, dev_shots=8).dev_shots == 8


def test_shots_must_be_positive():
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        DataConfig(task="sst2", shots=0)


def test_typos_in_keys_are_rejected():
    with pytest.raises(ValidationError, match="shot"):
        DataConfig(task="sst2", shot=4)


def test_custom_task_from_a_plain_mapping(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("review,stars\n" + "".join(f"r{i},{i % 2}\n" for i in range(10)), "utf-8")
    raw = {
        "task": {
            "description": "Reviews.",
            "train": str(train),
            "test": str(train),
            "columns": {"sentence": "review"},
            "label_column": "stars",
            "label_names": ["low", "high"],
            "label_words": [" bad", " good"],
            "template": "{sentence} It was",
            "text_fields": ["sentence"],
        },
        "shots": 2,
        "dev_shots": 1,
    }
    config = DataConfig.model_validate(raw)
    assert isinstance(config.task, TextTaskSpec)
    assert load_data(config).source.startswith("custom: ")
    splits = load_splits(config)
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (4, 2, 10)


_TEXT_SPEC = {
    "description": "d",
    "train": "a.csv",
    "test": "b.csv",
    "columns": {"s": "s"},
    "label_names": ["x", "y"],
    "label_words": [" x", " y"],
    "template": "{s}",
    "text_fields": ["s"],
}


def test_custom_task_cannot_come_from_the_hub(tmp_path):
    with pytest.raises(ValidationError, match="source 'hub' cannot apply"):
        DataConfig(task=_TEXT_SPEC, source="hub")


@pytest.mark.parametrize(
    ("task", "where", "message"),
    [
        (
            {key: value for key, value in _TEXT_SPEC.items() if key != "text_fields"},
            ("task", "text", "text_fields"),
            "Field required",
        ),
        (
            {"description": "d", "format": "folders", "train_dir": "a"},
            ("task", "image"),
            "format folders needs train_dir and test_dir",
        ),
        (
            {"description": "d", "split_file": "s.json", "image_dir": "i", "format": "coop"},
            ("task", "image", "format"),
            "'coop_split' or 'folders'",
        ),
    ],
)
def test_a_spec_with_one_mistake_reports_one_line_for_the_kind_meant(task, where, message):
    with pytest.raises(ValidationError) as info:
        DataConfig(task=task)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    assert errors[0]["loc"] == where and message in errors[0]["msg"]
    text = str(info.value)
    assert "function-after" not in text and "valid string" not in text


def test_a_task_that_is_neither_a_name_nor_a_mapping_says_what_is_expected():
    with pytest.raises(ValidationError, match="built-in task name or a mapping") as info:
        DataConfig(task=3)
    assert len(info.value.errors()) == 1


_SPEC_FILE = """\
data:
  shots: 2
  task:
    description: Reviews.
    train: train.csv
    test: test.csv
    columns: {text: text}
    label_names: [negative, positive]
    template: "Review: {text}"
    text_fields: [text]
"""
_IMAGE_SPEC_FILE = """\
data:
  task:
    description: Pictures.
    format: folders
    train_dir: a
"""


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        (
            _SPEC_FILE.replace("    text_fields: [text]\n", ""),
            ["line 3: data.task.text_fields: Field required"],
        ),
        (
            _SPEC_FILE.replace("    columns:", "    colums:"),
            [
                "line 3: data.task.columns: Field required",
                "line 7: data.task.colums: Extra inputs are not permitted",
            ],
        ),
        (
            _SPEC_FILE.replace("[negative, positive]", "negative"),
            ["line 8: data.task.label_names: Input should be a valid list"],
        ),
        (
            _IMAGE_SPEC_FILE,
            ["line 2: data.task: Value error, format folders needs train_dir and test_dir"],
        ),
    ],
)
def test_a_spec_file_with_one_mistake_names_the_keys_the_user_wrote(tmp_path, text, lines):
    """The union's branch tag (text, image) is not a key of the file: it stays out of the
    dotted key, and the line is that of the key at fault (of ``task`` for a missing one)."""
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(DataConfig, path, section="data")
    problems = [f"{path}, {line}" for line in lines]
    if len(problems) == 1:  # one problem, one line
        assert str(error.value) == f"invalid configuration: {problems[0]}"
    else:
        assert str(error.value).splitlines()[1:] == [f"  {problem}" for problem in problems]
