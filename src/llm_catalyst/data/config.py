"""The data section of a run's configuration: which task, where from, how many shots.

``task`` is a built-in task name or a spec (text or image). The spec kind is chosen from the
keys given, so a spec with one mistake is reported against the kind the user meant only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from llm_catalyst.data.images import BadImages, load_image_data, load_image_splits
from llm_catalyst.data.readers import Source, load_task, load_text_task
from llm_catalyst.data.registry import IMAGE_TASK_NAMES, builtin_image_spec, get_task
from llm_catalyst.data.sampling import FewShotSplits, sample_splits
from llm_catalyst.data.specs import IMAGE_FORMATS, ImageTaskSpec, TextTaskSpec
from llm_catalyst.data.tasks import TaskData
from llm_catalyst.errors import ConfigError

_IMAGE_KEYS = frozenset(ImageTaskSpec.model_fields) - frozenset(TextTaskSpec.model_fields)


def _known_task(name: str) -> str:
    try:
        get_task(name)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return name


def _task_kind(value: Any) -> str | None:
    """Which branch a task value is meant for: a name, a text spec or an image spec."""
    if isinstance(value, str):
        return "name"
    if isinstance(value, ImageTaskSpec):
        return "image"
    if isinstance(value, TextTaskSpec):
        return "text"
    if isinstance(value, Mapping):
        image = value.get("format") in IMAGE_FORMATS or not _IMAGE_KEYS.isdisjoint(value)
        return "image" if image else "text"
    return None


TaskField = Annotated[
    Annotated[str, AfterValidator(_known_task), Tag("name")]
    | Annotated[TextTaskSpec, Tag("text")]
    | Annotated[ImageTaskSpec, Tag("image")],
    Discriminator(
        _task_kind,
        custom_error_type="task_kind",
        custom_error_message="expected a built-in task name or a mapping that describes a "
        "text task (TextTaskSpec) or an image task (ImageTaskSpec)",
    ),
]


class DataConfig(BaseModel):
    """The data section of a run: the task and the few-shot protocol.

    Checked together when read: the whole pool (``shots: null``) needs ``dev_shots``, and a
    custom or image task is read from its own files, never from the hub.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: TaskField = Field(
        description="a built-in task name (`llm-catalyst tasks` lists them) or a mapping that "
        'specifies a text or an image task (README, "Tasks and data")'
    )
    data_dir: Path | None = Field(
        None,
        description="the local data folder of built-in tasks; null: `$LLM_CATALYST_DATA`, "
        "else `../shared/data` if there is one",
    )
    source: Source = Field(
        "auto",
        description="where a built-in task is read from: `local` (the data folder), `hub`, or "
        "`auto` (the data folder when it holds the task's files, else the hub)",
    )
    shots: int | None = Field(
        default=16,
        ge=1,
        description="train examples per class k; null: the whole train pool. Image tasks with "
        "few-shot index files (`eurosat`) take train and dev from the file of (shots, seed)",
    )
    dev_shots: int | None = Field(
        default=None,
        ge=1,
        description="dev examples per class, held out from the train pool for selection "
        "(disjoint from train); null: as many as `shots` (required when shots is null)",
    )
    seed: int = Field(
        1,
        description="the run's seed: the few-shot draw, the initial prompt, the batch order, "
        "races and the meta-prompt's train examples (and the LLM's sampling with "
        "`llm.sampling.seed: run`)",
    )
    bad_images: BadImages = Field(
        "error",
        description="image tasks: `error` stops at an unreadable image, `skip` leaves it out "
        "and counts it",
    )

    @model_validator(mode="after")
    def _dev_defined(self) -> DataConfig:
        if self.shots is None and self.dev_shots is None:
            raise ValueError(
                "shots: null (the full train pool) needs dev_shots, the number of examples per "
                "class held out for selection"
            )
        if isinstance(self.task, TextTaskSpec) and self.source == "hub":
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
    if isinstance(config.task, TextTaskSpec):
        return load_text_task(config.task)
    assert isinstance(config.task, str)
    return load_task(config.task, config.data_dir, config.source)


def load_splits(config: DataConfig) -> FewShotSplits:
    """The train, dev and test splits a run uses."""
    if config.image_spec_name() is not None:
        return load_image_splits(
            _image_spec(config), config.shots, config.seed, config.dev_shots, config.bad_images
        )
    return sample_splits(load_data(config), config.shots, config.seed, config.dev_shots)
