"""The hub path: row mapping on in-memory datasets, and a clear error when the hub is away."""

import os
import subprocess
import sys

import pytest
from datasets import Dataset, DatasetDict

from llm_catalyst.data.readers import load_task, task_data_from_hub
from llm_catalyst.errors import ConfigError, DataError


def test_setfit_sst2_rows_map_onto_the_sst2_task():
    splits = DatasetDict(
        train=Dataset.from_dict(
            {"text": ["a gem .", "a mess ."], "label": [1, 0], "label_text": ["pos", "neg"]}
        ),
        test=Dataset.from_dict({"text": ["fine ."], "label": [1], "label_text": ["pos"]}),
    )
    data = task_data_from_hub("sst2", splits)
    pairs = [(e.fields["sentence"], e.label) for e in data.train]
    assert pairs == [("a gem .", 1), ("a mess .", 0)]
    assert data.task.render(data.test[0]) == "fine . It was"
    assert data.train[1].uid.endswith("[train]:2")
    assert data.source.startswith("hub: SetFit/sst2 (train split as train pool, 2;")


def test_super_glue_wsc_rows_are_flat_and_get_the_question_field():
    row = {
        "text": ["Mark lied to Pete. He should have known."],
        "span1_index": [0],
        "span2_index": [4],
        "span1_text": ["Mark"],
        "span2_text": ["He"],
        "idx": [0],
        "label": [1],
    }
    data = task_data_from_hub(
        "wsc", {"train": Dataset.from_dict(row), "validation": Dataset.from_dict(row)}
    )
    example = data.train[0]
    assert example.label == 1
    assert example.fields["question"] == 'In the passage above, does "He" refer to "Mark"?'
    assert "validation split as test" in data.source


def test_super_glue_copa_rows_derive_the_connector():
    rows = Dataset.from_dict(
        {
            "premise": ["The man fell."],
            "choice1": ["He tripped."],
            "choice2": ["He laughed."],
            "question": ["cause"],
            "idx": [0],
            "label": [0],
        }
    )
    data = task_data_from_hub("copa", {"train": rows, "validation": rows})
    assert data.task.render(data.train[0]) == "The man fell. What was the cause?"


def test_unlabeled_hub_rows_are_rejected_with_their_row():
    rows = Dataset.from_dict({"question": ["q", "q2"], "passage": ["p", "p2"], "label": [1, -1]})
    with pytest.raises(DataError, match=r"aps/super_glue:boolq\[train\], line 2: unknown label"):
        task_data_from_hub("boolq", {"train": rows, "validation": rows})


def test_missing_hub_split_is_named():
    rows = Dataset.from_dict({"text": ["x"], "label": [0]})
    with pytest.raises(DataError, match="no 'test' split"):
        task_data_from_hub("cr", {"train": rows})


def test_missing_hub_column_is_named():
    rows = Dataset.from_dict({"sentence": ["x"], "label": [0]})
    with pytest.raises(DataError, match="column 'text' is missing or null"):
        task_data_from_hub("mr", {"train": rows, "test": rows})


@pytest.mark.parametrize("source", ["hub", "auto"])
def test_unreachable_hub_gives_an_actionable_data_error(source, tmp_path):
    """Run in a fresh process: the hub client reads its offline switch at import time.

    With source="auto" and an empty data folder, the loader must go to the hub too.
    """
    code = (
        "from llm_catalyst.data.readers import load_task\n"
        "from llm_catalyst.errors import DataError\n"
        "try:\n"
        f"    load_task('rte', data_dir={str(tmp_path)!r}, source={source!r})\n"
        "except DataError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "could not load aps/super_glue:rte from the Hugging Face hub" in done.stdout
    assert "unreachable" in done.stdout
    assert "LLM_CATALYST_DATA" in done.stdout


def test_unknown_source_is_a_config_error():
    with pytest.raises(ConfigError, match="local, hub, auto"):
        load_task("sst2", source="disk")  # type: ignore[arg-type]
