"""Every user-caused data problem raises a DataError naming the file, the line and a fix."""

import json
from pathlib import Path

import pytest

from llm_catalyst.data.formats import read_label_sentence_file
from llm_catalyst.data.readers import load_task, load_text_task
from llm_catalyst.data.specs import TextTaskSpec
from llm_catalyst.errors import DataError


def _spec(train: Path, test: Path, **overrides) -> TextTaskSpec:
    fields = {
        "description": "Reviews.",
        "train": train,
        "test": test,
        "columns": {"sentence": "text"},
        "label_names": ["negative", "positive"],
        "label_words": [" bad", " good"],
        "template": "{sentence} It was",
        "text_fields": ["sentence"],
    }
    return TextTaskSpec(**{**fields, **overrides})


def _error(spec: TextTaskSpec) -> DataError:
    with pytest.raises(DataError) as info:
        load_text_task(spec)
    return info.value


def _assert_located(error: DataError, path: Path, line: int | None) -> None:
    assert error.path == path
    assert error.line == line
    expected = f"{path}, line {line}: " if line is not None else f"{path}: "
    assert str(error).startswith(expected)
    assert error.fix and "fix: " in str(error)


@pytest.fixture
def good_test(tmp_path: Path) -> Path:
    path = tmp_path / "test.csv"
    path.write_text("text,label\nfine,1\n", encoding="utf-8")
    return path


def test_missing_file(tmp_path, good_test):
    missing = tmp_path / "nowhere.csv"
    error = _error(_spec(missing, good_test))
    _assert_located(error, missing, None)
    assert "file not found" in str(error)


def test_unknown_label_value(tmp_path, good_test):
    train = tmp_path / "train.csv"
    train.write_text("text,label\ngood,1\nmeh,neutral\n", encoding="utf-8")
    error = _error(_spec(train, good_test))
    _assert_located(error, train, 3)
    assert "unknown label value 'neutral'" in str(error)
    assert "label_values" in error.fix


def test_empty_split(tmp_path, good_test):
    train = tmp_path / "train.csv"
    train.write_text("text,label\n", encoding="utf-8")
    error = _error(_spec(train, good_test))
    _assert_located(error, train, None)
    assert "empty" in str(error)


def test_empty_file_without_header(tmp_path, good_test):
    train = tmp_path / "train.csv"
    train.write_bytes(b"")
    _assert_located(_error(_spec(train, good_test)), train, 1)


def test_non_utf8_bytes(tmp_path, good_test):
    train = tmp_path / "train.csv"
    train.write_bytes(b"text,label\ngood,1\ncaf\xe9 ok,1\n")
    error = _error(_spec(train, good_test))
    _assert_located(error, train, 3)
    assert "not valid utf-8: byte 0xe9" in str(error)
    assert "latin-1" in error.fix


def test_declared_encoding_reads_the_same_bytes(tmp_path, good_test):
    train = tmp_path / "train.csv"
    train.write_bytes(b"text,label\ncaf\xe9 ok,1\n")
    data = load_text_task(_spec(train, good_test, encoding="latin-1"))
    assert data.train[0].fields["sentence"] == "café ok"


def test_mapped_column_missing_in_csv(tmp_path, good_test):
    train = tmp_path / "train.csv"
    train.write_text("sentence,label\ngood,1\n", encoding="utf-8")
    error = _error(_spec(train, good_test))
    _assert_located(error, train, 2)
    assert "column 'text' is missing or null (columns present: sentence, label)" in str(error)


def test_mapped_column_missing_in_one_jsonl_record(tmp_path, good_test):
    train = tmp_path / "train.jsonl"
    rows = [{"text": "good", "label": 1}, {"txt": "bad", "label": 0}]
    train.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    error = _error(_spec(train, good_test))
    _assert_located(error, train, 2)
    assert "column 'text' is missing" in str(error)


def test_malformed_json_line(tmp_path, good_test):
    train = tmp_path / "train.jsonl"
    train.write_text('{"text": "good", "label": 1}\n{"text": "bad", "label": 0\n', encoding="utf-8")
    error = _error(_spec(train, good_test))
    _assert_located(error, train, 2)
    assert "malformed JSON" in str(error)


def test_json_line_that_is_not_an_object(tmp_path, good_test):
    train = tmp_path / "train.jsonl"
    train.write_text('["good", 1]\n', encoding="utf-8")
    _assert_located(_error(_spec(train, good_test)), train, 1)


def test_csv_row_with_too_many_fields(tmp_path, good_test):
    train = tmp_path / "train.csv"
    train.write_text("text,label\ngood,1\nnot, quoted,0\n", encoding="utf-8")
    error = _error(_spec(train, good_test))
    _assert_located(error, train, 3)
    assert "quote" in error.fix


def test_label_line_without_a_space(tmp_path):
    path = tmp_path / "stsa.binary.train"
    path.write_text("1 a fine film\n0\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_label_sentence_file(path)
    _assert_located(info.value, path, 2)
    assert "no space" in str(info.value)


def test_label_sentence_line_numbers_count_only_newlines(tmp_path):
    """U+0085 and U+2028 are not line breaks in these files."""
    path = tmp_path / "stsa.binary.train"
    path.write_text("1 a\x85b\u2028c\n0 d\r\n", encoding="utf-8")
    records = read_label_sentence_file(path)
    assert [(r.line, r.values["text"]) for r in records] == [(1, "a\x85b\u2028c"), (2, "d")]


def test_builtin_unknown_label_names_the_file_and_line(tmp_path):
    folder = tmp_path / "sst2"
    folder.mkdir()
    (folder / "stsa.binary.train").write_text("1 good\n7 odd\n", encoding="utf-8")
    (folder / "stsa.binary.test").write_text("0 bad\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_task("sst2", tmp_path, source="local")
    _assert_located(info.value, folder / "stsa.binary.train", 2)
    assert "known values: 0, 1" in str(info.value)


def test_builtin_copa_with_an_unknown_question_type(tmp_path):
    folder = tmp_path / "superglue" / "COPA"
    folder.mkdir(parents=True)
    row = {"premise": "p.", "choice1": "a", "choice2": "b", "question": "why", "label": 0}
    for name in ("train.jsonl", "val.jsonl"):
        (folder / name).write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_task("copa", tmp_path, source="local")
    _assert_located(info.value, folder / "train.jsonl", 1)
    assert "'cause' or 'effect'" in str(info.value)


def test_agnews_without_classes_txt_names_the_missing_file(tmp_path):
    folder = tmp_path / "agnews"
    folder.mkdir()
    (folder / "test.csv").write_text("Class Index,Title,Description\n1,t,d\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_task("agnews", tmp_path, source="local")
    _assert_located(info.value, folder / "classes.txt", None)
