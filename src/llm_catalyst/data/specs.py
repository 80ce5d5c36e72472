"""Task specs: how a text or image task is read from files, for built-in and custom tasks alike.

The built-in catalogue is written in these same specs (paths relative to the data folder), so a
custom task can do whatever a built-in one does. Relative paths of a custom spec are read from
the current directory.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llm_catalyst.data.tasks import Task, image_task
from llm_catalyst.errors import ConfigError

# csv/tsv/jsonl are general tables; the others are the official layouts of built-in corpora:
# "<label> <sentence>" lines, AG News CSV with classes.txt, SuperGLUE JSONL (nested objects
# lifted to the top level).
TableFormat = Literal["csv", "tsv", "jsonl", "label_sentence", "agnews_csv", "superglue_jsonl"]
_SUFFIX_FORMATS: dict[str, TableFormat] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
}


@dataclass(frozen=True)
class _FormatPaths:
    """The path fields of an image format: those it needs, those it may use, and what it reads
    (said when a spec also sets the other format's fields)."""

    required: tuple[str, ...]
    optional: tuple[str, ...]
    reads: str

    @property
    def fields(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)


_IMAGE_FORMAT_PATHS: Mapping[str, _FormatPaths] = {
    "coop_split": _FormatPaths(
        ("split_file", "image_dir"),
        ("fewshot_dir",),
        "coop_split reads class names and paths from split_file",
    ),
    "folders": _FormatPaths(
        ("train_dir", "test_dir"), ("class_names_file",), "folders reads train_dir and test_dir"
    ),
}
IMAGE_FORMATS = tuple(_IMAGE_FORMAT_PATHS)


def _format_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


class DerivedField(BaseModel):
    """A field computed from the mapped ones, for templates that need words the data lacks.

    ``template`` is rendered over the mapped fields; with ``values`` the result is looked up in
    it, and a result that is not a key is an error in that record.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    template: str
    values: dict[str, str] = {}

    def render(self, name: str, fields: Mapping[str, str]) -> str:
        text = self.template.format(**fields)
        if not self.values:
            return text
        if text not in self.values:
            allowed = " or ".join(repr(value) for value in self.values)
            raise ValueError(f"{name}: {self.template!r} must give {allowed}, got {text!r}")
        return self.values[text]


class TextTaskSpec(BaseModel):
    """A classification or multiple-choice task read from CSV, TSV, JSONL (or official) files.

    ``columns`` maps each field name (used in ``template`` and ``text_fields``) to the column or
    JSON key that holds it; ``derived`` adds fields computed from those. Labels in the files may
    be the label names, their ids (0..n-1), or any values mapped through ``label_values`` (JSON
    booleans as ``true``/``false``). ``option_fields`` makes the task multiple choice: the label
    is then the index of the correct option. Without ``test``, ``holdout`` examples of ``train``
    form a fixed, stratified test split. ``note`` is added to the description of the source.
    ``instruction`` (optional) is a short hand-written instruction, the start of the
    ``plain-text-init`` baseline.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    description: str = Field(min_length=1)
    train: Path
    test: Path | None = None
    holdout: int = Field(default=0, ge=0)
    format: TableFormat | None = None
    encoding: str = "utf-8"
    note: str = ""
    columns: dict[str, str] = Field(min_length=1)
    derived: dict[str, DerivedField] = {}
    label_column: str = "label"
    label_names: list[str] = Field(min_length=2)
    label_words: list[str] = []
    label_meanings: list[str] = []
    label_values: dict[str, str] = {}
    template: str
    text_fields: list[str] = Field(min_length=1, max_length=2)
    option_fields: list[str] = []
    instruction: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> TextTaskSpec:
        if (self.test is None) == (self.holdout == 0):
            raise ValueError(
                "give either test (a file holding the test split) or holdout (how many train "
                "examples form a fixed test split), not both or neither"
            )
        clash = sorted(set(self.derived) & set(self.columns))
        if clash:
            raise ValueError(f"derived fields {', '.join(clash)} are also mapped by columns")
        fields = set(self.columns) | set(self.derived)
        used = [("template", _format_fields(self.template))]
        used += [(f"derived.{n}", _format_fields(d.template)) for n, d in self.derived.items()]
        used += [("text_fields", set(self.text_fields)), ("option_fields", set(self.option_fields))]
        for what, names in used:
            known = set(self.columns) if what.startswith("derived.") else fields
            unknown = sorted(names - known)
            if unknown:
                raise ValueError(
                    f"{what} uses {', '.join(unknown)}, which columns does not map; "
                    f"mapped fields are: {', '.join(sorted(known))}"
                )
        bad = sorted(set(self.label_values.values()) - set(self.label_names))
        if bad:
            raise ValueError(
                f"label_values maps to {', '.join(bad)}, which are not in label_names "
                f"({', '.join(self.label_names)})"
            )
        for path in self.paths:
            self.format_of(path)
        self.to_task()
        return self

    @property
    def paths(self) -> tuple[Path, ...]:
        return (self.train,) if self.test is None else (self.train, self.test)

    def under(self, root: Path) -> TextTaskSpec:
        """The spec with its relative paths read from ``root`` (built-ins: the data folder)."""
        test = None if self.test is None else root / self.test
        return self.model_copy(update={"train": root / self.train, "test": test})

    def format_of(self, path: Path) -> TableFormat:
        """The declared format, else the one implied by the file suffix."""
        if self.format is not None:
            return self.format
        suffix = path.suffix.lower()
        if suffix not in _SUFFIX_FORMATS:
            raise ValueError(
                f"cannot tell the format of {path} from its suffix; set format to one of "
                "csv, tsv, jsonl"
            )
        return _SUFFIX_FORMATS[suffix]

    def to_task(self) -> Task:
        """The ``Task`` this spec describes (raises ValueError when it is inconsistent)."""
        return Task(
            name=self.name,
            description=self.description,
            field_names=(*self.columns, *self.derived),
            label_names=tuple(self.label_names),
            label_words=tuple(self.label_words),
            template=self.template,
            text_fields=tuple(self.text_fields),
            kind="multiple_choice" if self.option_fields else "classification",
            option_fields=tuple(self.option_fields),
            label_meanings=tuple(self.label_meanings),
            instruction=self.instruction.strip(),
        )

    def label_ids(self) -> dict[str, int]:
        """Raw label value -> label id: mapped values, label names and ids as strings."""
        ids = {str(i): i for i in range(len(self.label_names))}
        ids.update({name: i for i, name in enumerate(self.label_names)})
        ids.update({raw: self.label_names.index(name) for raw, name in self.label_values.items()})
        return ids

    def derive(self, fields: Mapping[str, str]) -> dict[str, str]:
        """The derived fields of one record (ValueError when a lookup has no entry)."""
        return {name: field.render(name, fields) for name, field in self.derived.items()}


class ImageTaskSpec(BaseModel):
    """An image classification task read from CoOp split files or from class folders.

    ``template`` is the zero-shot hard context before the class name; ``label_meanings``
    (optional, one per class in label order) are shown to the LLM instructor. ``class_names``
    (optional) are checked against the names found in the files. ``fewshot_dir`` (coop_split
    only) makes train and dev come from the index file of (shots, seed) instead of being
    sampled from the train pool.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "images"
    description: str = Field(min_length=1)
    format: Literal["coop_split", "folders"]
    image_dir: Path | None = None
    split_file: Path | None = None
    fewshot_dir: Path | None = None
    train_dir: Path | None = None
    test_dir: Path | None = None
    class_names_file: Path | None = None
    class_names: list[str] = []
    template: str = "a photo of a"
    label_meanings: list[str] = []

    @model_validator(mode="after")
    def _complete(self) -> ImageTaskSpec:
        own = _IMAGE_FORMAT_PATHS[self.format]
        if any(getattr(self, key) is None for key in own.required):
            raise ValueError(f"format {self.format} needs {_and(own.required)}")
        for other, paths in _IMAGE_FORMAT_PATHS.items():
            if other != self.format and any(getattr(self, key) for key in paths.fields):
                raise ValueError(f"{_and(paths.fields)} belong to format {other}; {own.reads}")
        return self

    def under(self, root: Path) -> ImageTaskSpec:
        """The spec with its relative paths read from ``root`` (built-ins: the data folder)."""
        keys = [key for paths in _IMAGE_FORMAT_PATHS.values() for key in paths.fields]
        update = {key: getattr(self, key) for key in keys}
        return self.model_copy(
            update={key: root / value for key, value in update.items() if value is not None}
        )

    def to_task(self, classes: list[str] | None = None) -> Task:
        """The task, with the class names found in the files (else ``class_names``)."""
        names = self.class_names if classes is None else classes
        if not names:
            raise ConfigError(f"task {self.name!r}: its class names come from its files")
        if self.label_meanings and len(self.label_meanings) != len(names):
            raise ConfigError(
                f"task {self.name!r}: {len(self.label_meanings)} label_meanings for the "
                f"{len(names)} classes found in the data ({', '.join(names)})"
            )
        return image_task(self.name, self.description, names, self.template, self.label_meanings)


def _and(names: tuple[str, ...]) -> str:
    """``a, b and c``."""
    return ", ".join(names[:-1]) + " and " + names[-1]
