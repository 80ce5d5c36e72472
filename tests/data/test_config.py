"""DataConfig validation and the config -> splits path used by runs."""

from collections import Counter

import pytest
from pydantic import ValidationError

from llm_catalyst.data.config import CustomTaskSpec, DataConfig, load_data, load_splits


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
    assert isinstance(config.task, CustomTaskSpec)
    assert load_data(config).source.startswith("custom: ")
    splits = load_splits(config)
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (4, 2, 10)


def test_custom_task_cannot_come_from_the_hub(tmp_path):
    spec = {
        "description": "d",
        "train": "a.csv",
        "test": "b.csv",
        "columns": {"s": "s"},
        "label_names": ["x", "y"],
        "label_words": [" x", " y"],
        "template": "{s}",
        "text_fields": ["s"],
    }
    with pytest.raises(ValidationError, match="source 'hub' cannot apply"):
        DataConfig(task=spec, source="hub")
