"""Custom tasks from CSV, TSV and JSONL files described by a CustomTaskSpec."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from llm_catalyst.data.config import CustomTaskSpec
from llm_catalyst.data.readers import load_custom_task


def _spec(train: Path, test: Path, **overrides) -> CustomTaskSpec:
    fields = {
        "name": "tickets",
        "description": "Support tickets; decide whether the customer is angry.",
        "train": train,
        "test": test,
        "columns": {"body": "message"},
        "label_column": "mood",
        "label_names": ["calm", "angry"],
        "label_words": [" calm", " angry"],
        "template": "{body} The customer is",
        "text_fields": ["body"],
    }
    return CustomTaskSpec(**{**fields, **overrides})


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_task_with_string_labels_mapped_to_names(tmp_path):
    train = _write(
        tmp_path / "train.csv",
        'message,mood\n"Fix it, now!",ANGRY\nthanks for the help,ok\nstill broken!!,ANGRY\n',
    )
    test = _write(tmp_path / "test.csv", "message,mood\nall good,ok\n")
    spec = _spec(train, test, label_values={"ANGRY": "angry", "ok": "calm"})
    data = load_custom_task(spec)
    assert [(e.fields["body"], e.label) for e in data.train] == [
        ("Fix it, now!", 1),
        ("thanks for the help", 0),
        ("still broken!!", 1),
    ]
    assert data.task.render(data.test[0]) == "all good The customer is"
    assert data.train[2].uid == "train.csv:4"
    assert data.source == f"custom: {train} (train pool, 3) + {test} (test, 1)"


def test_jsonl_task_accepts_label_names_and_ids(tmp_path):
    rows = [{"message": "why!!", "mood": "angry"}, {"message": "fine", "mood": 0}]
    train = _write(tmp_path / "train.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    test = _write(tmp_path / "test.jsonl", json.dumps({"message": "ok", "mood": 1}) + "\n\n")
    data = load_custom_task(_spec(train, test))
    assert [e.label for e in data.train] == [1, 0]
    assert [e.label for e in data.test] == [1]
    assert data.task.label_words == (" calm", " angry")


def test_tsv_and_jsonl_booleans(tmp_path):
    train = _write(tmp_path / "train.tsv", "message\tmood\nsee you, then\ttrue\nugh\tfalse\n")
    test = _write(tmp_path / "test.jsonl", json.dumps({"message": "hm", "mood": False}) + "\n")
    spec = _spec(train, test, label_values={"true": "calm", "false": "angry"})
    data = load_custom_task(spec)
    assert [e.label for e in data.train] == [0, 1]
    assert data.train[0].fields["body"] == "see you, then"
    assert [e.label for e in data.test] == [1]


def test_multiple_choice_custom_task(tmp_path):
    row = {"q": "2+2?", "a": "4", "b": "5", "answer": 0}
    train = _write(tmp_path / "train.jsonl", json.dumps(row) + "\n")
    spec = _spec(
        train,
        train,
        columns={"question": "q", "option_a": "a", "option_b": "b"},
        label_column="answer",
        label_names=["a", "b"],
        label_words=[],
        template="Q: {question} A:",
        text_fields=["question"],
        option_fields=["option_a", "option_b"],
    )
    data = load_custom_task(spec)
    assert data.task.kind == "multiple_choice"
    assert data.train[0].fields["option_b"] == "5"


def test_spec_rejects_template_fields_that_are_not_mapped(tmp_path):
    with pytest.raises(ValidationError, match="template uses text, which columns does not map"):
        _spec(tmp_path / "a.csv", tmp_path / "b.csv", template="{text} It was")


def test_spec_rejects_label_values_that_map_to_unknown_names(tmp_path):
    with pytest.raises(ValidationError, match="label_values maps to furious"):
        _spec(tmp_path / "a.csv", tmp_path / "b.csv", label_values={"x": "furious"})


def test_spec_needs_one_label_word_per_label(tmp_path):
    with pytest.raises(ValidationError, match="1 label words for 2 labels"):
        _spec(tmp_path / "a.csv", tmp_path / "b.csv", label_words=[" calm"])


def test_spec_needs_a_known_suffix_or_an_explicit_format(tmp_path):
    with pytest.raises(ValidationError, match="set format"):
        _spec(tmp_path / "a.txt", tmp_path / "b.csv")
    assert _spec(tmp_path / "a.txt", tmp_path / "b.csv", format="csv").format == "csv"


def test_spec_rejects_unknown_keys(tmp_path):
    with pytest.raises(ValidationError, match="labelwords"):
        _spec(tmp_path / "a.csv", tmp_path / "b.csv", labelwords=[" a", " b"])
