"""Seeded, class-balanced few-shot train and dev sets drawn from a task's train pool.

Protocol: per class, the pool is put in a seeded order; the first ``dev_shots`` examples form
the dev set and the next ``shots`` the train set, so train and dev never overlap, the dev set of
a seed does not depend on ``shots``, and the train set for k shots is contained in the one for
more shots (same seed and dev_shots). ``shots=None`` is the full-pool protocol of the reference
paper: every pool example not held out for dev is a train example; ``dev_shots`` must then be
given, since selecting on the test split is what this library refuses to do. The test split is
passed through untouched, except by ``held_out_validation``, which swaps it for pool examples
that are neither train nor dev, so recipe choices can be made without the test split.

Orders come from BLAKE2 hashes of (salt, seed, position), not from ``random`` or numpy, so they
are identical across processes, Python versions and library upgrades.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from llm_catalyst.data.tasks import Example, Task, TaskData
from llm_catalyst.errors import ConfigError, DataError


@dataclass(frozen=True)
class FewShotSplits:
    """The three splits a run uses: train (gradient steps), dev (every selection), test (once)."""

    task: Task
    train: tuple[Example, ...]
    dev: tuple[Example, ...]
    test: tuple[Example, ...]
    seed: int
    shots: int | None
    dev_shots: int
    source: str


def seeded_permutation(n: int, seed: int, salt: str = "") -> list[int]:
    """A permutation of ``range(n)`` that depends only on ``(n, seed, salt)``."""

    def key(i: int) -> bytes:
        return hashlib.blake2b(f"{salt}|{seed}|{i}".encode(), digest_size=16).digest()

    return sorted(range(n), key=key)


def sample_splits(
    data: TaskData, shots: int | None, seed: int, dev_shots: int | None = None
) -> FewShotSplits:
    """Draw k-per-class train and dev sets from ``data.train``; keep ``data.test`` as is.

    ``dev_shots`` defaults to ``shots``. Raises DataError when a class cannot supply enough
    examples, naming the class, how many it has and what to change.
    """
    if shots is not None and shots < 1:
        raise ConfigError(f"shots must be at least 1 (or None for the full pool), got {shots}")
    dev_k = shots if dev_shots is None else dev_shots
    if dev_k is None:
        raise ConfigError(
            "shots=None (the full train pool) needs dev_shots: the number of examples per class "
            "held out from the pool for selection, e.g. dev_shots=16"
        )
    if dev_k < 1:
        raise ConfigError(f"dev_shots must be at least 1, got {dev_k}")
    task = data.task
    if not data.train:
        raise DataError(
            f"task {task.name!r} has an empty train pool ({data.source})",
            fix="check the train file of the task; it holds no examples",
        )
    by_class = _indices_by_class(data.train, task)
    train: list[Example] = []
    dev: list[Example] = []
    for label, indices in enumerate(by_class):
        _check_supply(task, label, len(indices), shots, dev_k, data.source)
        order = [indices[i] for i in seeded_permutation(len(indices), seed, f"class {label}")]
        take = len(order) if shots is None else dev_k + shots
        dev.extend(data.train[i] for i in order[:dev_k])
        train.extend(data.train[i] for i in order[dev_k:take])
    return FewShotSplits(
        task=task,
        train=_shuffled(train, seed, "train"),
        dev=_shuffled(dev, seed, "dev"),
        test=data.test,
        seed=seed,
        shots=shots,
        dev_shots=dev_k,
        source=data.source,
    )


def held_out_validation(data: TaskData, splits: FewShotSplits) -> FewShotSplits:
    """``splits`` with its test split replaced by the train-pool examples outside train and dev,
    in a seeded order (natural class frequencies): a large dev set for choosing a recipe, so the
    evaluation split is never looked at before the experiment it is kept for."""
    used = {id(example) for example in (*splits.train, *splits.dev)}
    rest = [example for example in data.train if id(example) not in used]
    if not rest:
        raise DataError(
            f"task {splits.task.name!r}: the train pool has no example outside the few-shot "
            f"train and dev sets ({data.source}), so there is nothing to validate on",
            fix="use protocol fewshot, or fewer shots",
        )
    validation = tuple(rest[i] for i in seeded_permutation(len(rest), splits.seed, "validation"))
    return replace(splits, test=validation)


def evaluation_subset(examples: Sequence[Example], size: int | None) -> tuple[Example, ...]:
    """``size`` examples of an evaluation split, the same for every seed and method: a fixed
    seeded draw, not the first ``size`` (files such as MR's list one class after the other)."""
    if size is None or size >= len(examples):
        return tuple(examples)
    picked = sorted(seeded_permutation(len(examples), 0, "evaluation subset")[:size])
    return tuple(examples[i] for i in picked)


def _indices_by_class(pool: Sequence[Example], task: Task) -> list[list[int]]:
    by_class: list[list[int]] = [[] for _ in range(task.num_classes)]
    for i, example in enumerate(pool):
        if not 0 <= example.label < task.num_classes:
            raise DataError(
                f"example {example.uid or i} of task {task.name!r} has label id {example.label}, "
                f"outside 0..{task.num_classes - 1}",
                fix="build examples with the task's label ids (the readers in "
                "llm_catalyst.data do this)",
            )
        by_class[example.label].append(i)
    return by_class


def _check_supply(
    task: Task, label: int, available: int, shots: int | None, dev_k: int, source: str
) -> None:
    needed = dev_k + (1 if shots is None else shots)
    if available >= needed:
        return
    name = task.label_names[label]
    if shots is None:
        asked = f"dev_shots={dev_k} + at least one train example"
        fix = f"lower dev_shots to at most {available - 1}" if available >= 2 else ""
    else:
        asked = f"shots={shots} + dev_shots={dev_k}"
        half = available // 2
        fix = f"lower shots and dev_shots (e.g. shots={half}, dev_shots={available - half})"
        fix = fix if half >= 1 else ""
    raise DataError(
        f"class {name!r} of task {task.name!r} has {available} examples in the train pool but "
        f"{asked} = {needed} are needed ({source})",
        fix=(fix + " or use a larger train pool") if fix else "use a larger train pool",
    )


def _shuffled(examples: list[Example], seed: int, salt: str) -> tuple[Example, ...]:
    """Mix the classes so that batches taken in order are not sorted by label."""
    return tuple(examples[i] for i in seeded_permutation(len(examples), seed, salt))
