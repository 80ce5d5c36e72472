"""Read task data from the official file formats, from any CSV/JSONL file, or from the hub.

Public API:
    load_task(name, data_dir=None, source="auto") -> TaskData
    load_custom_task(spec: CustomTaskSpec) -> TaskData
    task_data_from_hub(name, splits) -> TaskData   (maps hub rows onto the schema; no I/O)
    read_label_sentence_file(path, encoding="utf-8") -> list[Record]
    read_jsonl(path, encoding="utf-8") -> list[Record]
    read_csv(path, delimiter=",", encoding="utf-8") -> list[Record]
    Record

``source`` is "local" (files under the data folder, see ``paths.resolve_data_dir``), "hub"
(``datasets.load_dataset``) or "auto" (local when all of the task's files exist, else hub).
Every ``TaskData.source`` string says which files or hub splits were read, and how a test split
was made when the corpus has none. Malformed input raises DataError with file, line and fix.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from llm_catalyst.data.paths import resolve_data_dir
from llm_catalyst.data.registry import HOLDOUT_SEED, BuiltinTask, Derive, get_builtin
from llm_catalyst.data.sampling import seeded_permutation
from llm_catalyst.data.tasks import Example, TaskData
from llm_catalyst.errors import ConfigError, DataError

if TYPE_CHECKING:
    from llm_catalyst.data.config import CustomTaskSpec

Source = Literal["local", "hub", "auto"]
_SOURCES: tuple[str, ...] = ("local", "hub", "auto")


@dataclass(frozen=True)
class Record:
    """One raw record of a file and the line it starts on (1-based)."""

    line: int
    values: Mapping[str, object]


def read_label_sentence_file(path: str | os.PathLike[str], encoding: str = "utf-8") -> list[Record]:
    """``<label> <sentence>`` per line (the Kim 2014 files) as records with label and text.

    Lines are split on "\\n" only: MR holds byte 0x85, which ``str.splitlines`` would treat as a
    line break after Latin-1 decoding.
    """
    path = Path(path)
    records = []
    for number, line in _lines(path, encoding):
        if not line.strip():
            continue
        label, space, text = line.partition(" ")
        if not space:
            raise DataError(
                f"expected '<label> <sentence>' but the line has no space: {line[:60]!r}",
                path=path,
                line=number,
                fix="separate the label from the sentence with one space, or remove the line",
            )
        records.append(Record(number, {"label": label, "text": text.strip(" ")}))
    return records


def read_jsonl(path: str | os.PathLike[str], encoding: str = "utf-8") -> list[Record]:
    """One JSON object per line; blank lines are skipped."""
    path = Path(path)
    records = []
    for number, line in _lines(path, encoding):
        if not line.strip():
            continue
        try:
            values = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"malformed JSON ({exc.msg} at column {exc.colno})",
                path=path,
                line=number,
                fix="each line must hold one complete JSON object; repair or remove this line",
            ) from None
        if not isinstance(values, dict):
            raise DataError(
                f"expected a JSON object, got {type(values).__name__}",
                path=path,
                line=number,
                fix="each line must hold one JSON object ({...})",
            )
        records.append(Record(number, values))
    return records


def read_csv(
    path: str | os.PathLike[str], delimiter: str = ",", encoding: str = "utf-8"
) -> list[Record]:
    """A delimited file with a header row; each record is keyed by the header's column names."""
    path = Path(path)
    reader = csv.reader(io.StringIO(_decode(path, encoding), newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(
            "the file is empty; a header row is expected",
            path=path,
            line=1,
            fix="add a header row naming the columns, then one row per example",
        ) from None
    records = []
    start = reader.line_num + 1
    for row in reader:
        if row and any(cell.strip() for cell in row):
            if len(row) != len(header):
                raise DataError(
                    f"{len(row)} fields but the header has {len(header)}",
                    path=path,
                    line=start,
                    fix="quote fields that contain the delimiter or line breaks, or fix the row",
                )
            records.append(Record(start, dict(zip(header, row, strict=True))))
        start = reader.line_num + 1
    return records


def load_task(
    name: str, data_dir: str | os.PathLike[str] | None = None, source: Source = "auto"
) -> TaskData:
    """Read a built-in task from the local data folder or the hub."""
    if source not in _SOURCES:
        raise ConfigError(f"source must be one of {', '.join(_SOURCES)}, got {source!r}")
    definition = get_builtin(name)
    if source == "hub":
        return _load_hub(definition)
    root = resolve_data_dir(data_dir)
    missing = [f for f in definition.local.paths if root is None or not (root / f).is_file()]
    if not missing:
        return _load_local(definition, root)
    if source == "auto":
        return _load_hub(definition)
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


def load_custom_task(spec: CustomTaskSpec) -> TaskData:
    """Read a task described by a ``CustomTaskSpec`` from its CSV/TSV/JSONL files."""
    task = spec.to_task()
    labels = spec.label_ids()
    splits = []
    for path in (spec.train, spec.test):
        records = _read_table(path, spec.format_of(path), spec.encoding)
        splits.append(_examples(records, spec.columns, spec.label_column, labels, None, path))
    train, test = splits
    source = f"custom: {spec.train} (train pool, {len(train)}) + {spec.test} (test, {len(test)})"
    return TaskData(task=task, train=train, test=test, source=source)


def task_data_from_hub(name: str, splits: Mapping[str, Iterable[Mapping[str, object]]]) -> TaskData:
    """Map the splits of a hub dataset (e.g. a ``datasets.DatasetDict``) onto a built-in task.

    Hub labels are ``ClassLabel`` ids in the task's label order; -1 marks an unlabeled split
    and is rejected.
    """
    definition = get_builtin(name)
    hub = definition.hub
    labels = {str(i): i for i in range(definition.task.num_classes)}
    parts = []
    for split in (hub.train_split, hub.test_split):
        if split not in splits:
            raise DataError(
                f"hub dataset {hub.hub_id} has no {split!r} split (it has: {', '.join(splits)})",
                fix="load the dataset revision the registry expects, or use local files",
            )
        where = f"hub:{hub.hub_id}[{split}]"
        records = [Record(row, values) for row, values in enumerate(splits[split], start=1)]
        parts.append(
            _examples(records, definition.columns, "label", labels, definition.derive, where)
        )
    train, test = parts
    source = (
        f"hub: {hub.hub_id} ({hub.train_split} split as train pool, {len(train)}; "
        f"{hub.test_split} split as test, {len(test)})"
    )
    return TaskData(task=definition.task, train=train, test=test, source=source)


def _load_hub(definition: BuiltinTask) -> TaskData:
    import datasets  # deferred: importing datasets costs about a second

    hub = definition.hub
    try:
        loaded = datasets.load_dataset(hub.path, hub.config)
    except Exception as exc:  # the hub client raises many unrelated types for one cause
        raise DataError(
            f"could not load {hub.hub_id} from the Hugging Face hub: the hub is unreachable or "
            f"the dataset is not cached ({type(exc).__name__}: {exc})",
            fix="point at local files instead: pass data_dir=... or set $LLM_CATALYST_DATA to "
            "a folder laid out as shared/data/README.md describes, with source='local'",
        ) from exc
    return task_data_from_hub(definition.task.name, loaded)


def _load_local(definition: BuiltinTask, root: Path) -> TaskData:
    local = definition.local
    labels = {raw: i for i, raw in enumerate(definition.raw_labels)}
    reader = _LOCAL_READERS[local.format]

    def examples(relative: str) -> tuple[Example, ...]:
        path = root / relative
        records = reader(path, local.encoding)
        return _examples(records, definition.columns, "label", labels, definition.derive, path)

    note = f"; {local.note}" if local.note else ""
    if local.test is not None:
        train, test = examples(local.train), examples(local.test)
        source = (
            f"local: {root / local.train} (train pool, {len(train)}) + "
            f"{root / local.test} (test, {len(test)}){note}"
        )
    else:
        everything = examples(local.train)
        train, test = _holdout(everything, local.holdout, definition.task.num_classes)
        source = (
            f"local: {root / local.train} ({len(everything)} examples{note}): fixed stratified "
            f"split into {len(test)} test / {len(train)} train pool with split seed "
            f"{HOLDOUT_SEED}, independent of the run seed"
        )
    return TaskData(task=definition.task, train=train, test=test, source=source)


def _read_superglue(path: Path, encoding: str) -> list[Record]:
    """SuperGLUE JSONL; nested objects (WSC's ``target``) are lifted to the top level."""
    records = []
    for record in read_jsonl(path, encoding):
        flat: dict[str, object] = {}
        for key, value in record.values.items():
            if isinstance(value, dict):
                flat.update(value)
            else:
                flat[key] = value
        records.append(Record(record.line, flat))
    return records


def _read_agnews(path: Path, encoding: str) -> list[Record]:
    """AG News CSV (``Class Index,Title,Description``) with class names from classes.txt."""
    classes_path = path.with_name("classes.txt")
    names = {}
    for number, line in _lines(classes_path, encoding):
        for item in filter(None, (part.strip() for part in line.split(","))):
            index, dash, name = item.partition("-")
            if not dash or not index.isdigit():
                raise DataError(
                    f"expected '<index>-<name>' entries, got {item!r}",
                    path=classes_path,
                    line=number,
                    fix="list the classes as '1-World, 2-Sports, ...'",
                )
            names[index] = name
    records = []
    for record in read_csv(path, encoding=encoding):
        _require(record, ("Class Index", "Title", "Description"), path)
        index = str(record.values["Class Index"])
        if index not in names:
            raise DataError(
                f"class index {index!r} is not listed in {classes_path.name}",
                path=path,
                line=record.line,
                fix=f"use one of {', '.join(names)} or add the class to {classes_path}",
            )
        text = f"{record.values['Title']} {record.values['Description']}"
        records.append(Record(record.line, {"label": names[index], "text": text}))
    return records


_LOCAL_READERS = {
    "label_sentence": read_label_sentence_file,
    "superglue_jsonl": _read_superglue,
    "agnews_csv": _read_agnews,
}
_TABLE_READERS = {
    "csv": lambda path, encoding: read_csv(path, ",", encoding),
    "tsv": lambda path, encoding: read_csv(path, "\t", encoding),
    "jsonl": read_jsonl,
}


def _read_table(path: Path, fmt: str, encoding: str) -> list[Record]:
    return _TABLE_READERS[fmt](path, encoding)


def _examples(
    records: Sequence[Record],
    columns: Mapping[str, str],
    label_column: str,
    labels: Mapping[str, int],
    derive: Derive | None,
    where: object,
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
        _require(record, (*columns.values(), label_column), where)
        fields = {field: _text(record.values[column]) for field, column in columns.items()}
        if derive is not None:
            try:
                fields.update(derive(fields))
            except ValueError as exc:
                raise DataError(
                    str(exc), path=where, line=record.line, fix="fix the value in this record"
                ) from None
        label = _label_id(record.values[label_column], labels, where, record.line)
        examples.append(Example(fields=fields, label=label, uid=f"{prefix}:{record.line}"))
    return tuple(examples)


def _require(record: Record, columns: Iterable[str], where: object) -> None:
    for column in columns:
        if record.values.get(column) is None:
            present = ", ".join(map(str, record.values)) or "none"
            raise DataError(
                f"column {column!r} is missing or null (columns present: {present})",
                path=where,
                line=record.line,
                fix="fix the column mapping of the task or add the column to the data",
            )


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


def _lines(path: Path, encoding: str) -> Iterable[tuple[int, str]]:
    """Numbered lines, split on "\\n" only (a trailing "\\r" is dropped)."""
    text = _decode(path, encoding)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return ((number, line.removesuffix("\r")) for number, line in enumerate(lines, start=1))


def _decode(path: Path, encoding: str) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(
            "file not found",
            path=path,
            fix="check the path (relative paths start at the "
            "current directory) or the data folder setting",
        ) from None
    except IsADirectoryError:
        raise DataError("is a folder, not a file", path=path, fix="name the file itself") from None
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"not valid {encoding}: byte 0x{raw[exc.start]:02x} cannot be decoded",
            path=path,
            line=line,
            fix=f"re-save the file as {encoding}, or declare its real encoding "
            "(e.g. encoding: latin-1 in a custom task spec)",
        ) from None
    except LookupError:
        raise DataError(
            f"unknown encoding {encoding!r}",
            path=path,
            fix="use a Python codec name such as utf-8 or latin-1",
        ) from None
