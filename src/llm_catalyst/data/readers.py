"""Read a text task from its files or from the hub, into the uniform ``TaskData``.

``source`` is "local" (files under the data folder, see ``paths.resolve_data_dir``), "hub"
(``datasets.load_dataset``) or "auto" (local when all of the task's files exist, else hub).
Every ``TaskData.source`` string says which files or hub splits were read, and how a test split
was made when the corpus has none.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from llm_catalyst.data.catalogue import BuiltinTextTask
from llm_catalyst.data.formats import READERS, Record, require
from llm_catalyst.data.paths import resolve_data_dir
from llm_catalyst.data.registry import get_builtin
from llm_catalyst.data.sampling import seeded_permutation
from llm_catalyst.data.specs import TextTaskSpec
from llm_catalyst.data.tasks import Example, TaskData
from llm_catalyst.errors import ConfigError, DataError

Source = Literal["local", "hub", "auto"]
_SOURCES: tuple[str, ...] = ("local", "hub", "auto")

# Seed of the fixed pool/test split of tasks without an official split. It is a property of the
# data, not of a run: changing it would change every reported test number on MR, CR and AG News.
HOLDOUT_SEED = 20240529


def load_task(
    name: str, data_dir: str | os.PathLike[str] | None = None, source: Source = "auto"
) -> TaskData:
    """Read a built-in task from the local data folder or the hub."""
    if source not in _SOURCES:
        raise ConfigError(f"source must be one of {', '.join(_SOURCES)}, got {source!r}")
    builtin = get_builtin(name)
    if source == "hub":
        return _load_hub(builtin)
    root = resolve_data_dir(data_dir)
    missing = [f for f in builtin.spec.paths if root is None or not (root / f).is_file()]
    if root is not None and not missing:
        return load_text_task(builtin.spec.under(root), origin="local")
    if source == "auto":
        return _load_hub(builtin)
    if root is None:
        raise DataError(
            f"no local data folder found for task {name!r}",
            fix="pass data_dir=..., set $LLM_CATALYST_DATA, run from a directory with "
            "../shared/data, or use source='hub'",
        )
    raise DataError(
        f"task {name!r} needs this file under the data folder {root}",
        path=root / missing[0],
        fix="point data_dir or $LLM_CATALYST_DATA at a folder with the layout of "
        "shared/data/README.md, or use source='hub'",
    )


def load_text_task(spec: TextTaskSpec, origin: Literal["custom", "local"] = "custom") -> TaskData:
    """Read the task a ``TextTaskSpec`` describes from its files; ``origin`` heads the source."""
    task = spec.to_task()
    labels = spec.label_ids()

    def examples(path: Path) -> tuple[Example, ...]:
        records = READERS[spec.format_of(path)](path, spec.encoding)
        return _examples(records, spec, labels, path)

    note = f"; {spec.note}" if spec.note else ""
    if spec.test is not None:
        train, test = examples(spec.train), examples(spec.test)
        source = (
            f"{origin}: {spec.train} (train pool, {len(train)}) + "
            f"{spec.test} (test, {len(test)}){note}"
        )
    else:
        everything = examples(spec.train)
        if spec.holdout >= len(everything):
            raise DataError(
                f"holdout asks for {spec.holdout} test examples but the file holds "
                f"{len(everything)}",
                path=spec.train,
                fix="lower holdout, or give the test split as its own file (test: ...)",
            )
        train, test = _holdout(everything, spec.holdout, task.num_classes)
        source = (
            f"{origin}: {spec.train} ({len(everything)} examples{note}): fixed stratified "
            f"split into {len(test)} test / {len(train)} train pool with split seed "
            f"{HOLDOUT_SEED}, independent of the run seed"
        )
    return TaskData(task=task, train=train, test=test, source=source)


def task_data_from_hub(name: str, splits: Mapping[str, Iterable[Mapping[str, object]]]) -> TaskData:
    """Map the splits of a hub dataset (e.g. a ``datasets.DatasetDict``) onto a built-in task.

    Hub labels are ``ClassLabel`` ids in the task's label order; -1 marks an unlabeled split
    and is rejected.
    """
    builtin = get_builtin(name)
    hub, spec = builtin.hub, builtin.spec
    labels = {str(i): i for i in range(len(spec.label_names))}
    parts = []
    for split in (hub.train_split, hub.test_split):
        if split not in splits:
            raise DataError(
                f"hub dataset {hub.hub_id} has no {split!r} split (it has: {', '.join(splits)})",
                fix="load the dataset revision the registry expects, or use local files",
            )
        where = f"hub:{hub.hub_id}[{split}]"
        records = [Record(row, values) for row, values in enumerate(splits[split], start=1)]
        parts.append(_examples(records, spec, labels, where))
    train, test = parts
    source = (
        f"hub: {hub.hub_id} ({hub.train_split} split as train pool, {len(train)}; "
        f"{hub.test_split} split as test, {len(test)})"
    )
    return TaskData(task=spec.to_task(), train=train, test=test, source=source)


def _load_hub(builtin: BuiltinTextTask) -> TaskData:
    import datasets  # deferred: importing datasets costs about a second

    hub = builtin.hub
    try:
        loaded = datasets.load_dataset(hub.path, hub.config)
    except Exception as exc:  # the hub client raises many unrelated types for one cause
        raise DataError(
            f"could not load {hub.hub_id} from the Hugging Face hub: the hub is unreachable or "
            f"the dataset is not cached ({type(exc).__name__}: {exc})",
            fix="point at local files instead: pass data_dir=... or set $LLM_CATALYST_DATA to "
            "a folder laid out as shared/data/README.md describes, with source='local'",
        ) from exc
    return task_data_from_hub(builtin.spec.name, loaded)


def _examples(
    records: Sequence[Record], spec: TextTaskSpec, labels: Mapping[str, int], where: object
) -> tuple[Example, ...]:
    """Map records onto examples; ``where`` (a path or hub split) names them in errors."""
    if not records:
        raise DataError(
            "no examples: the split is empty",
            path=where,
            fix="check that the file holds data rows (and, for CSV, a header row)",
        )
    prefix = Path(where).name if isinstance(where, Path) else str(where)
    examples = []
    for record in records:
        require(record, (*spec.columns.values(), spec.label_column), where)
        fields = {field: _text(record.values[column]) for field, column in spec.columns.items()}
        try:
            fields.update(spec.derive(fields))
        except ValueError as exc:
            raise DataError(
                str(exc), path=where, line=record.line, fix="fix the value in this record"
            ) from None
        label = _label_id(record.values[spec.label_column], labels, where, record.line)
        examples.append(Example(fields=fields, label=label, uid=f"{prefix}:{record.line}"))
    return tuple(examples)


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _label_key(value: object) -> str:
    """Label values as written in files: JSON booleans become ``true``/``false``."""
    return value.strip() if isinstance(value, str) else json.dumps(value)


def _label_id(value: object, labels: Mapping[str, int], where: object, line: int) -> int:
    key = _label_key(value)
    if key not in labels:
        raise DataError(
            f"unknown label value {value!r}; known values: {', '.join(labels)}",
            path=where,
            line=line,
            fix="correct the label, or map this value to a label name (label_values in a "
            "custom task spec)",
        )
    return labels[key]


def _holdout(
    examples: tuple[Example, ...], size: int, num_classes: int
) -> tuple[tuple[Example, ...], tuple[Example, ...]]:
    """Split into (pool, test) with ``size`` test examples in the classes' proportions.

    Per-class counts use the largest-remainder rule, so they sum to ``size`` exactly. Both
    parts keep file order.
    """
    by_class: list[list[int]] = [[] for _ in range(num_classes)]
    for i, example in enumerate(examples):
        by_class[example.label].append(i)
    quotas = [size * len(indices) / len(examples) for indices in by_class]
    counts = [int(q) for q in quotas]
    by_remainder = sorted(range(num_classes), key=lambda c: (counts[c] - quotas[c], c))
    for c in by_remainder[: size - sum(counts)]:
        counts[c] += 1
    test_indices = set()
    for label, indices in enumerate(by_class):
        order = seeded_permutation(len(indices), HOLDOUT_SEED, f"holdout class {label}")
        test_indices.update(indices[i] for i in order[: counts[label]])
    pool = tuple(e for i, e in enumerate(examples) if i not in test_indices)
    test = tuple(e for i, e in enumerate(examples) if i in test_indices)
    return pool, test
