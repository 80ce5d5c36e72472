"""k-shot sampling: balanced, disjoint, deterministic across processes, seed-dependent."""

import os
import subprocess
import sys
from collections import Counter

import pytest

from llm_catalyst.data.readers import load_task
from llm_catalyst.data.registry import get_task
from llm_catalyst.data.sampling import (
    evaluation_subset,
    held_out_validation,
    sample_splits,
    seeded_permutation,
)
from llm_catalyst.data.tasks import Example, TaskData
from llm_catalyst.errors import ConfigError, DataError


@pytest.fixture
def cb(data_root) -> TaskData:
    """Three unbalanced classes (115 / 119 / 16) in the pool."""
    return load_task("cb", data_root, source="local")


def _uids(examples) -> list[str]:
    return [e.uid for e in examples]


def test_train_and_dev_are_balanced_and_disjoint(cb):
    splits = sample_splits(cb, shots=4, seed=1, dev_shots=3)
    assert Counter(e.label for e in splits.train) == {0: 4, 1: 4, 2: 4}
    assert Counter(e.label for e in splits.dev) == {0: 3, 1: 3, 2: 3}
    assert not set(_uids(splits.train)) & set(_uids(splits.dev))
    pool = set(_uids(cb.train))
    assert set(_uids(splits.train)) | set(_uids(splits.dev)) <= pool


def test_test_split_is_passed_through_untouched(cb):
    splits = sample_splits(cb, shots=2, seed=5)
    assert splits.test is cb.test
    assert splits.source == cb.source
    assert (splits.seed, splits.shots, splits.dev_shots) == (5, 2, 2)


def test_same_seed_same_splits_different_seed_different_splits(cb):
    first, again = sample_splits(cb, 8, seed=3), sample_splits(cb, 8, seed=3)
    assert _uids(first.train) == _uids(again.train)
    assert _uids(first.dev) == _uids(again.dev)
    other = sample_splits(cb, 8, seed=4)
    assert set(_uids(other.train)) != set(_uids(first.train))
    assert set(_uids(other.dev)) != set(_uids(first.dev))


def test_classes_are_mixed_in_the_train_order(cb):
    labels = [e.label for e in sample_splits(cb, 8, seed=1).train]
    assert labels != sorted(labels)


def test_more_shots_extend_the_train_set_and_keep_dev(cb):
    small = sample_splits(cb, 4, seed=2, dev_shots=4)
    large = sample_splits(cb, 8, seed=2, dev_shots=4)
    assert set(_uids(small.train)) < set(_uids(large.train))
    assert set(_uids(small.dev)) == set(_uids(large.dev))


def test_full_pool_protocol_holds_out_dev_per_class(cb):
    splits = sample_splits(cb, shots=None, seed=1, dev_shots=5)
    assert Counter(e.label for e in splits.dev) == {0: 5, 1: 5, 2: 5}
    assert len(splits.train) == len(cb.train) - 15
    assert not set(_uids(splits.train)) & set(_uids(splits.dev))


def test_full_pool_without_dev_shots_is_refused(cb):
    with pytest.raises(ConfigError, match="needs dev_shots"):
        sample_splits(cb, shots=None, seed=1)


@pytest.mark.parametrize(("shots", "dev_shots"), [(0, None), (2, 0)])
def test_non_positive_counts_are_refused(cb, shots, dev_shots):
    with pytest.raises(ConfigError, match="at least 1"):
        sample_splits(cb, shots=shots, seed=1, dev_shots=dev_shots)


def test_a_class_too_small_for_the_request_is_named_with_its_count_and_a_fix(cb):
    assert len(sample_splits(cb, shots=8, seed=1).train) == 24  # 8 + 8 fit in 16 neutrals
    with pytest.raises(DataError) as info:
        sample_splits(cb, shots=10, seed=1)
    message = str(info.value)
    assert "class 'neutral' of task 'cb' has 16 examples in the train pool" in message
    assert "shots=10 + dev_shots=10 = 20 are needed" in message
    assert "shots=8, dev_shots=8" in info.value.fix


def test_full_pool_with_too_large_dev_shots_names_the_limit(cb):
    with pytest.raises(DataError, match="class 'neutral'") as info:
        sample_splits(cb, shots=None, seed=1, dev_shots=16)
    assert "dev_shots to at most 15" in info.value.fix


def test_empty_pool_is_a_data_error():
    data = TaskData(task=get_task("sst2"), train=(), test=(), source="nowhere")
    with pytest.raises(DataError, match="empty train pool"):
        sample_splits(data, 2, seed=1)


def test_examples_with_out_of_range_labels_are_refused():
    bad = Example(fields={"sentence": "x"}, label=2, uid="x:1")
    data = TaskData(task=get_task("sst2"), train=(bad,), test=(), source="hand-made")
    with pytest.raises(DataError, match=r"label id 2, outside 0\.\.1"):
        sample_splits(data, 1, seed=1)


def test_seeded_permutation_is_a_permutation_that_depends_on_seed_and_salt():
    order = seeded_permutation(50, seed=1)
    assert sorted(order) == list(range(50))
    assert order != list(range(50))
    assert seeded_permutation(50, seed=2) != order
    assert seeded_permutation(50, seed=1, salt="x") != order


def test_samples_are_identical_in_a_process_with_another_hash_seed(cb, data_root):
    code = (
        "from llm_catalyst.data.readers import load_task\n"
        "from llm_catalyst.data.sampling import sample_splits\n"
        f"s = sample_splits(load_task('cb', {str(data_root)!r}, source='local'), 4, seed=7)\n"
        "print(','.join(e.uid for e in s.train + s.dev))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    here = sample_splits(cb, 4, seed=7)
    assert done.stdout.strip() == ",".join(_uids(here.train + here.dev))


def test_held_out_validation_uses_pool_examples_outside_train_and_dev(cb):
    splits = sample_splits(cb, shots=4, seed=1, dev_shots=3)
    validation = held_out_validation(cb, splits)
    assert (validation.train, validation.dev) == (splits.train, splits.dev)
    used = set(_uids(splits.train)) | set(_uids(splits.dev))
    held_out = _uids(validation.test)
    assert len(held_out) == len(cb.train) - len(used)
    assert not set(held_out) & used and set(held_out) <= set(_uids(cb.train))
    assert not set(held_out) & set(_uids(cb.test)), "never the evaluation split"
    assert held_out == _uids(held_out_validation(cb, splits).test), "a fixed order per seed"


def test_evaluation_subset_is_a_fixed_draw_not_the_first_examples(data_root):
    mr = load_task("mr", data_root, source="local")
    assert Counter(e.label for e in mr.test[:300]) == {0: 300}, "MR lists one class first"
    subset = evaluation_subset(mr.test, 300)
    counts = Counter(e.label for e in subset)
    assert len(subset) == 300 and min(counts.values()) > 100
    assert _uids(subset) == _uids(evaluation_subset(mr.test, 300))
    assert set(_uids(evaluation_subset(mr.test, 100))) <= set(_uids(subset)), "nested draws"
    assert evaluation_subset(mr.test, None) == tuple(mr.test)
