"""Validated configuration of a run's data: which task, where from, how many shots.

Public API:
    DataConfig        task (built-in name, CustomTaskSpec or ImageTaskSpec), data_dir, source,
                      shots, dev_shots, seed, bad_images
    CustomTaskSpec    any CSV/TSV/JSONL data: files, column mapping, labels, template
    ImageTaskSpec     image data (CoOp split files, class folders; see ``data.images``)
    load_data(config) -> TaskData
    load_splits(config) -> FewShotSplits

A custom task is described in the same terms as a built-in one (see ``registry``): which column
feeds each field, the label names and their words, the causal-LM template and the encoder text
fields. Labels in the files may be the label names, their ids (0..n-1), or any values mapped
through ``label_values``. Relative paths are read from the current directory.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llm_catalyst.data.images import (
    BadImages,
    ImageTaskSpec,
    builtin_image_spec,
    load_image_data,
    load_image_splits,
)
from llm_catalyst.data.readers import Source, load_custom_task, load_task
from llm_catalyst.data.registry import IMAGE_TASK_NAMES, get_task
from llm_catalyst.data.sampling import FewShotSplits, sample_splits
from llm_catalyst.data.tasks import Task, TaskData
from llm_catalyst.errors import ConfigError

TableFormat = Literal["csv", "tsv", "jsonl"]
_SUFFIX_FORMATS: dict[str, TableFormat] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
}


class CustomTaskSpec(BaseModel):
    """A classification or multiple-choice task read from your own CSV, TSV or JSONL files.

    ``columns`` maps each field name (used in ``template`` and ``text_fields``) to the column
    or JSON key that holds it. ``label_values`` maps raw label values (as written in the file;
    JSON booleans as ``true``/``false``) to label names. ``option_fields`` makes the task
    multiple choice: the label is then the index of the correct option.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    description: str = Field(min_length=1)
    train: Path
    test: Path
    format: TableFormat | None = None
    encoding: str = "utf-8"
    columns: dict[str, str] = Field(min_length=1)
    label_column: str = "label"
    label_names: list[str] = Field(min_length=2)
    label_words: list[str] = []
    label_meanings: list[str] = []
    label_values: dict[str, str] = {}
    template: str
    text_fields: list[str] = Field(min_length=1, max_length=2)
    option_fields: list[str] = []

    @model_validator(mode="after")
    def _consistent(self) -> CustomTaskSpec:
        fields = set(self.columns)
        used = {name for _, name, _, _ in string.Formatter().parse(self.template) if name}
        for what, names in (
            ("template", used),
            ("text_fields", set(self.text_fields)),
            ("option_fields", set(self.option_fields)),
        ):
            unknown = sorted(names - fields)
            if unknown:
                raise ValueError(
                    f"{what} uses {', '.join(unknown)}, which columns does not map; "
                    f"mapped fields are: {', '.join(sorted(fields))}"
                )
        bad = sorted(set(self.label_values.values()) - set(self.label_names))
        if bad:
            raise ValueError(
                f"label_values maps to {', '.join(bad)}, which are not in label_names "
                f"({', '.join(self.label_names)})"
            )
        if self.format is None:
            for path in (self.train, self.test):
                self.format_of(path)
        self.to_task()
        return self

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
            field_names=tuple(self.columns),
            label_names=tuple(self.label_names),
            label_words=tuple(self.label_words),
            template=self.template,
            text_fields=tuple(self.text_fields),
            kind="multiple_choice" if self.option_fields else "classification",
            option_fields=tuple(self.option_fields),
            label_meanings=tuple(self.label_meanings),
        )

    def label_ids(self) -> dict[str, int]:
        """Raw label value -> label id: mapped values, label names and ids as strings."""
        ids = {str(i): i for i in range(len(self.label_names))}
        ids.update({name: i for i, name in enumerate(self.label_names)})
        ids.update({raw: self.label_names.index(name) for raw, name in self.label_values.items()})
        return ids


class DataConfig(BaseModel):
    """The data section of a run: the task and the few-shot protocol.

    ``shots`` is k examples per class for training (None: the whole train pool); ``dev_shots``
    is k per class held out from the pool for selection (defaults to ``shots``; required when
    ``shots`` is None). ``seed`` drives the sampling only. Image tasks with few-shot index files
    (``eurosat``) take train and dev from the file of (shots, seed) instead. ``bad_images``
    (image tasks): "error" stops at an unreadable image, "skip" leaves it out and counts it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str | CustomTaskSpec | ImageTaskSpec
    data_dir: Path | None = None
    source: Source = "auto"
    shots: int | None = Field(default=16, ge=1)
    dev_shots: int | None = Field(default=None, ge=1)
    seed: int = 1
    bad_images: BadImages = "error"

    @field_validator("task")
    @classmethod
    def _known_task(
        cls, value: str | CustomTaskSpec | ImageTaskSpec
    ) -> str | CustomTaskSpec | ImageTaskSpec:
        if isinstance(value, str):
            try:
                get_task(value)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _dev_defined(self) -> DataConfig:
        if self.shots is None and self.dev_shots is None:
            raise ValueError(
                "shots: null (the full train pool) needs dev_shots, the number of examples per "
                "class held out for selection"
            )
        if isinstance(self.task, CustomTaskSpec) and self.source == "hub":
            raise ValueError("a custom task is read from its own files: source 'hub' cannot apply")
        if self.image_spec_name() is not None and self.source == "hub":
            raise ValueError("image tasks are read from local files: source 'hub' cannot apply")
        return self

    def image_spec_name(self) -> str | None:
        """The name of the task if it is an image task, else None."""
        if isinstance(self.task, ImageTaskSpec):
            return self.task.name
        return self.task if self.task in IMAGE_TASK_NAMES else None


def _image_spec(config: DataConfig) -> ImageTaskSpec:
    if isinstance(config.task, ImageTaskSpec):
        return config.task
    assert isinstance(config.task, str)
    return builtin_image_spec(config.task, config.data_dir)


def load_data(config: DataConfig) -> TaskData:
    """All of the configured task's data, before few-shot sampling."""
    if config.image_spec_name() is not None:
        return load_image_data(_image_spec(config), config.bad_images)
    if isinstance(config.task, CustomTaskSpec):
        return load_custom_task(config.task)
    assert isinstance(config.task, str)
    return load_task(config.task, config.data_dir, config.source)


def load_splits(config: DataConfig) -> FewShotSplits:
    """The train, dev and test splits a run uses."""
    if config.image_spec_name() is not None:
        return load_image_splits(
            _image_spec(config), config.shots, config.seed, config.dev_shots, config.bad_images
        )
    return sample_splits(load_data(config), config.shots, config.seed, config.dev_shots)
