"""The uniform task schema every reader produces and every backbone consumes.

A task says which fields an example has, how they are rendered for a causal LM, what the labels
mean (shown to the LLM instructor) and which label words the verbalizer scores. Image tasks use
the same schema with one field, the image's path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

TaskKind = Literal["classification", "multiple_choice"]

# The one field of an image example: the absolute path of its image.
IMAGE_FIELD = "image"


@dataclass(frozen=True)
class Example:
    """One labelled example: named text fields and an integer label id.

    For multiple-choice tasks the label is the index of the correct option and the options are
    the fields named by ``Task.option_fields``.
    """

    fields: Mapping[str, str]
    label: int
    uid: str = ""


@dataclass(frozen=True)
class Task:
    """A task definition, independent of where its data comes from.

    ``template`` renders an example's fields into the text a causal LM reads before the label
    word (``str.format`` syntax over the field names). ``text_fields`` are the one or two fields
    an encoder reads as a (text_a, text_b) pair. For multiple-choice tasks ``template`` renders the
    context and each option field is scored as its continuation. ``instruction`` is a short
    hand-written instruction for the task ("" when it has none): the ``plain-text-init``
    baseline starts its soft prompt from it.
    """

    name: str
    description: str
    field_names: tuple[str, ...]
    label_names: tuple[str, ...]
    label_words: tuple[str, ...]
    template: str
    text_fields: tuple[str, ...]
    kind: TaskKind = "classification"
    option_fields: tuple[str, ...] = ()
    label_meanings: tuple[str, ...] = field(default=())
    instruction: str = ""

    def __post_init__(self) -> None:
        n = len(self.label_names)
        if n < 2:
            raise ValueError(f"task {self.name!r} needs at least two labels, got {n}")
        if self.kind == "classification" and len(self.label_words) != n:
            raise ValueError(
                f"task {self.name!r}: {len(self.label_words)} label words for {n} labels; "
                "give exactly one label word per label"
            )
        if self.kind == "multiple_choice" and len(self.option_fields) != n:
            raise ValueError(f"task {self.name!r}: one option field per label is required")
        if self.label_meanings and len(self.label_meanings) != n:
            raise ValueError(f"task {self.name!r}: one label meaning per label is required")

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def render(self, example: Example) -> str:
        """The text a causal LM reads before the label word (or before each option)."""
        return self.template.format(**example.fields)


@dataclass(frozen=True)
class TaskData:
    """The splits of one task as read from disk or the hub, before k-shot sampling.

    ``train`` is the pool that k-shot train and dev sets are drawn from; ``test`` is the official
    evaluation split, reported once and never used for selection.
    """

    task: Task
    train: tuple[Example, ...]
    test: tuple[Example, ...]
    source: str


def is_image_task(task: Task) -> bool:
    """Whether the task's examples are images (its one field is ``IMAGE_FIELD``)."""
    return task.field_names == (IMAGE_FIELD,)


def image_task(
    name: str,
    description: str,
    class_names: Sequence[str],
    template: str = "a photo of a",
    label_meanings: Sequence[str] = (),
) -> Task:
    """The ``Task`` of an image classification dataset.

    Its ``label_words`` are the class names (what CLIP reads) and its ``template`` is the hard
    context before the class name in the zero-shot prompt; the template uses no field, so
    ``render`` gives the same text for every example.
    """
    names = tuple(class_names)
    return Task(
        name=name,
        description=description,
        field_names=(IMAGE_FIELD,),
        label_names=names,
        label_words=names,
        template=template.replace("{", "{{").replace("}", "}}"),
        text_fields=(IMAGE_FIELD,),
        label_meanings=tuple(label_meanings),
    )
