"""Looking up and listing the built-in tasks of the catalogue, with close-match suggestions."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from llm_catalyst.data.catalogue import IMAGE_TASKS, TEXT_TASKS, BuiltinTextTask
from llm_catalyst.data.paths import resolve_data_dir
from llm_catalyst.data.specs import ImageTaskSpec
from llm_catalyst.data.tasks import Task
from llm_catalyst.errors import ConfigError, DataError

TASK_NAMES: tuple[str, ...] = tuple(TEXT_TASKS)
IMAGE_TASK_NAMES: tuple[str, ...] = tuple(IMAGE_TASKS)


@dataclass(frozen=True)
class TaskInfo:
    """One line of ``list_tasks``: what the task is and where its data would come from."""

    name: str
    kind: str
    num_classes: int
    description: str
    data: str


def get_builtin(name: str) -> BuiltinTextTask:
    """A built-in text task's spec and hub source; raises ConfigError naming close matches."""
    if name in IMAGE_TASKS:
        raise ConfigError(
            f"task {name!r} is an image task: its data is read by llm_catalyst.data.images "
            "(load_image_splits), not by the text readers"
        )
    try:
        return TEXT_TASKS[name]
    except KeyError:
        known = (*TASK_NAMES, *IMAGE_TASK_NAMES)
        close = difflib.get_close_matches(name.lower(), known, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(
            f"unknown task {name!r}; {hint}built-in tasks are: {', '.join(known)} "
            "(or describe your own data with a TextTaskSpec or an ImageTaskSpec)"
        ) from None


def builtin_image_spec(name: str, data_dir: str | os.PathLike[str] | None = None) -> ImageTaskSpec:
    """The spec of a built-in image task, its files resolved under the data folder."""
    if name not in IMAGE_TASKS:
        raise ConfigError(
            f"{name!r} is not a built-in image task; image tasks are: " + ", ".join(IMAGE_TASKS)
        )
    spec = IMAGE_TASKS[name]
    root = resolve_data_dir(data_dir)
    if root is None:
        raise DataError(
            f"task {name!r} is read from local files only and no data folder was found",
            path=Path.cwd() / ".." / "shared" / "data",
            fix=f"set data.data_dir (or $LLM_CATALYST_DATA) to the folder that holds "
            f"{spec.split_file}",
        )
    return spec.under(root)


def get_task(name: str) -> Task:
    """The built-in ``Task`` called ``name`` (text or image)."""
    if name in IMAGE_TASKS:
        return IMAGE_TASKS[name].to_task()
    return get_builtin(name).spec.to_task()


def list_tasks(data_dir: str | os.PathLike[str] | None = None) -> list[TaskInfo]:
    """Every built-in task with the data source ``load_task(source="auto")`` would use."""
    root = resolve_data_dir(data_dir)
    infos = []
    for builtin in TEXT_TASKS.values():
        files = builtin.spec.paths
        if root is not None and all((root / f).is_file() for f in files):
            data = "local: " + ", ".join(str(root / f) for f in files)
        else:
            data = f"hub: {builtin.hub.hub_id}"
        task = builtin.spec.to_task()
        infos.append(TaskInfo(task.name, task.kind, task.num_classes, task.description, data))
    for image in IMAGE_TASKS.values():
        found = root is not None and (root / image.split_file).is_file()
        data = f"local: {root / image.split_file}" if found else f"missing: {image.split_file}"
        task = image.to_task()
        infos.append(TaskInfo(task.name, "image", task.num_classes, task.description, data))
    return infos
