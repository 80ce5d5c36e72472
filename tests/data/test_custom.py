"""Custom tasks from CSV, TSV and JSONL files described by a TextTaskSpec."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from llm_catalyst.data.readers import load_text_task
from llm_catalyst.data.specs import TextTaskSpec
from llm_catalyst.errors import DataError


def _spec(train: Path, test: Path | None, **overrides) -> TextTaskSpec:
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
    return TextTaskSpec(**{**fields, **overrides})


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
    data = load_text_task(spec)
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
    data = load_text_task(_spec(train, test))
    assert [e.label for e in data.train] == [1, 0]
    assert [e.label for e in data.test] == [1]
    assert data.task.label_words == (" calm", " angry")


def test_tsv_and_jsonl_booleans(tmp_path):
    train = _write(tmp_path / "train.tsv", "message\tmood\nsee you, then\ttrue\nugh\tfalse\n")
    test = _write(tmp_path / "test.jsonl", json.dumps({"message": "hm", "mood": False}) + "\n")
    spec = _spec(train, test, label_values={"true": "calm", "false": "angry"})
    data = load_text_task(spec)
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
    data = load_text_task(spec)
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


def test_derived_fields_fill_the_template_and_name_a_bad_record(tmp_path):
    rows = [
        {"message": "late again", "mood": 1, "kind": "b"},
        {"message": "ok", "mood": 0, "kind": "x"},
    ]
    train = _write(tmp_path / "train.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    derived = {
        "channel": {"template": "{kind}", "values": {"b": "a bug report", "q": "a question"}},
        "quoted": {"template": '"{body}"'},
    }
    spec = _spec(
        train,
        train,
        columns={"body": "message", "kind": "kind"},
        template="{quoted} ({channel}) The customer is",
        derived=derived,
    )
    assert spec.to_task().field_names == ("body", "kind", "channel", "quoted")
    with pytest.raises(DataError) as info:
        load_text_task(spec)
    assert info.value.path == train and info.value.line == 2
    assert "must give 'b' or 'q', got 'x'" in str(info.value)
    train.write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    data = load_text_task(spec)
    assert data.task.render(data.train[0]) == '"late again" (a bug report) The customer is'


def test_derived_templates_read_mapped_columns_only(tmp_path):
    with pytest.raises(ValidationError, match=r"derived\.a uses missing"):
        _spec(tmp_path / "a.csv", tmp_path / "b.csv", derived={"a": {"template": "{missing}"}})


def test_a_holdout_split_instead_of_a_test_file(tmp_path):
    lines = "".join(f"message {i},{'angry' if i % 3 else 'calm'}\n" for i in range(30))
    train = _write(tmp_path / "all.csv", "message,mood\n" + lines)
    data = load_text_task(_spec(train, None, holdout=6))
    assert (len(data.train), len(data.test)) == (24, 6)
    assert [e.label for e in data.test].count(0) == 2, "stratified: a third of the data is calm"
    assert not {e.uid for e in data.train} & {e.uid for e in data.test}
    assert "fixed stratified split into 6 test / 24 train pool" in data.source
    with pytest.raises(DataError, match="holdout asks for 30 test examples"):
        load_text_task(_spec(train, None, holdout=30))
    with pytest.raises(ValidationError, match=r"either test .* or holdout"):
        _spec(train, None)
    with pytest.raises(ValidationError, match=r"either test .* or holdout"):
        _spec(train, train, holdout=3)
