"""File formats of text tasks: each reader turns a file into numbered records.

Every problem with a file raises a DataError naming the file, the line and the fix.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from llm_catalyst.errors import DataError


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


def read_superglue(path: Path, encoding: str) -> list[Record]:
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


def read_agnews(path: Path, encoding: str) -> list[Record]:
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
        require(record, ("Class Index", "Title", "Description"), path)
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


READERS: Mapping[str, Callable[[Path, str], list[Record]]] = {
    "csv": lambda path, encoding: read_csv(path, ",", encoding),
    "tsv": lambda path, encoding: read_csv(path, "\t", encoding),
    "jsonl": read_jsonl,
    "label_sentence": read_label_sentence_file,
    "superglue_jsonl": read_superglue,
    "agnews_csv": read_agnews,
}


def require(record: Record, columns: Iterable[str], where: object) -> None:
    """Each of ``columns`` is present and not null in ``record``."""
    for column in columns:
        if record.values.get(column) is None:
            present = ", ".join(map(str, record.values)) or "none"
            raise DataError(
                f"column {column!r} is missing or null (columns present: {present})",
                path=where,
                line=record.line,
                fix="fix the column mapping of the task or add the column to the data",
            )


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
