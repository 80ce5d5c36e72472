"""Every built-in task read from ../shared/data: sizes and label counts from its SOURCE.md."""

from collections import Counter

import pytest

from llm_catalyst.data.readers import HOLDOUT_SEED, load_task
from llm_catalyst.errors import DataError

# (train pool label counts, test label counts) by label id, from each folder's SOURCE.md.
OFFICIAL_SPLITS = {
    "sst2": ((3310, 3610), (912, 909)),
    "sst5": ((1092, 2218, 1624, 2322, 1288), (279, 633, 389, 510, 399)),
    "rte": ((1249, 1241), (146, 131)),
    "cb": ((115, 119, 16), (23, 28, 5)),
    "copa": ((195, 205), (55, 45)),
    "wic": ((2714, 2714), (319, 319)),
    "wsc": ((295, 259), (66, 38)),
    "boolq": ((14, 18), (1237, 2033)),  # FewGLUE 32-example train pool; SuperGLUE val as test
}
# (label counts of the single file, test size of the fixed holdout) for tasks with no split.
HOLDOUT_SPLITS = {
    "mr": ((5331, 5331), 2000),
    "cr": ((1368, 2407), 2000),
    "agnews": ((1900, 1900, 1900, 1900), 3800),
}


def _counts(examples, num_classes):
    counter = Counter(e.label for e in examples)
    return tuple(counter[i] for i in range(num_classes))


@pytest.mark.parametrize("name", sorted(OFFICIAL_SPLITS))
def test_official_splits_have_documented_sizes(name, data_root):
    data = load_task(name, data_root, source="local")
    train_counts, test_counts = OFFICIAL_SPLITS[name]
    assert _counts(data.train, data.task.num_classes) == train_counts
    assert _counts(data.test, data.task.num_classes) == test_counts
    assert data.source.startswith("local: ")


@pytest.mark.parametrize("name", sorted(HOLDOUT_SPLITS))
def test_holdout_split_is_disjoint_stratified_and_documented(name, data_root):
    data = load_task(name, data_root, source="local")
    totals, test_size = HOLDOUT_SPLITS[name]
    n = data.task.num_classes
    pool_counts, test_counts = _counts(data.train, n), _counts(data.test, n)
    assert tuple(p + t for p, t in zip(pool_counts, test_counts, strict=True)) == totals
    assert len(data.test) == test_size
    for total, in_test in zip(totals, test_counts, strict=True):
        assert abs(in_test - test_size * total / sum(totals)) < 1
    assert not {e.uid for e in data.train} & {e.uid for e in data.test}
    assert f"split seed {HOLDOUT_SEED}" in data.source
    assert "independent of the run seed" in data.source


def test_holdout_split_does_not_change_between_loads(data_root):
    first = load_task("cr", data_root, source="local")
    second = load_task("cr", data_root, source="local")
    assert [e.uid for e in first.test] == [e.uid for e in second.test]


def test_mr_is_latin1_and_keeps_lines_with_byte_0x85_whole(data_root):
    data = load_task("mr", data_root, source="local")
    examples = data.train + data.test
    with_nel = [e for e in examples if "\x85" in e.fields["sentence"]]
    assert with_nel  # 0x85 decodes to U+0085 inside a sentence, not a line break
    assert len(examples) == 10662
    assert any("é" in e.fields["sentence"] for e in examples)


def test_boolq_source_says_the_train_pool_is_fewglue(data_root):
    data = load_task("boolq", data_root, source="local")
    assert "fewglue_32dev/BoolQ/train.jsonl" in data.source
    assert "FewGLUE" in data.source


def test_agnews_joins_title_and_description_and_names_classes(data_root):
    data = load_task("agnews", data_root, source="local")
    example = next(e for e in data.train + data.test if e.uid == "test.csv:2")
    title = "Fears for T N pension after talks"
    assert example.fields["text"].startswith(f"{title} Unions representing workers")
    assert data.task.label_names[example.label] == "Business"


def test_wsc_spans_are_flattened_into_fields(data_root):
    data = load_task("wsc", data_root, source="local")
    fields = data.train[0].fields
    assert (fields["span1_text"], fields["span2_text"]) == ("Mark", "He")
    assert '"He" refer to "Mark"' in data.task.render(data.train[0])


def test_copa_connector_follows_the_question(data_root):
    data = load_task("copa", data_root, source="local")
    connectors = {e.fields["question"]: e.fields["connector"] for e in data.train}
    assert connectors == {"cause": "What was the cause?", "effect": "What happened as a result?"}
    rendered = data.task.render(data.test[0])
    assert rendered == "The man turned on the faucet. What happened as a result?"


def test_uids_name_file_and_line(data_root):
    data = load_task("rte", data_root, source="local")
    assert data.train[0].uid == "train.jsonl:1"
    assert data.test[-1].uid == "val.jsonl:277"


def test_local_source_without_the_files_names_the_missing_file(tmp_path):
    with pytest.raises(DataError) as info:
        load_task("rte", tmp_path, source="local")
    message = str(info.value)
    assert str(tmp_path / "superglue" / "RTE" / "train.jsonl") in message
    assert "fix:" in message
