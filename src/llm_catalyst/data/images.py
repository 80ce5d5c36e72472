"""Image classification tasks: CoOp split files, few-shot index files and class folders.

An image example stores the absolute path of its image in the field ``image`` (``IMAGE_FIELD``)
and nothing else; text tasks are untouched. An image task's ``label_words`` are its class names
(what CLIP reads, e.g. "Annual Crop Land") and its ``template`` is the hard context that stands
before the class name in the zero-shot prompt ("a centered satellite photo of a" gives CoOp's
"a centered satellite photo of a Annual Crop Land."); it uses no field, so ``Task.render``
gives the same text for every example.

Formats:

- ``coop_split``: CoOp's split JSON (``{"train"|"val"|"test": [[relative_path, label,
  classname], ...]}``) with paths relative to ``image_dir``. Class names come from the file.
- few-shot index files ``shot_{K}-seed_{S}.json`` (``{"train"|"val": {"data": [{"impath",
  "label", "classname"}, ...]}}``) in ``fewshot_dir``: the train and dev splits of (K, S).
  Their ``impath`` values were written for another machine (``./data/eurosat/2750/<Class>/<f>``):
  the part after the last folder named like ``image_dir`` is read relative to ``image_dir``.
- ``folders``: one folder per class under ``train_dir`` and ``test_dir``; class names are the
  folder names, or looked up in ``class_names_file`` (JSON ``{"folder": "class name"}``).

Every image of the splits is decoded once at load time. An unreadable or corrupt one raises a
DataError naming the file, or with ``bad_images="skip"`` is left out and counted in the
``source`` string; a missing file is always an error.

Public API:
    IMAGE_FIELD, is_image_task(task), image_task(name, description, class_names, template)
    ImageTaskSpec                          your own image data, usable as ``DataConfig.task``
    builtin_image_spec(name, data_dir=None) -> ImageTaskSpec      e.g. "eurosat"
    load_image_data(spec, bad_images="error") -> TaskData          the whole train pool and test
    load_image_splits(spec, shots, seed, dev_shots=None, bad_images="error") -> FewShotSplits
    load_rgb(path) -> PIL.Image.Image                               DataError naming a bad file
    random_resized_crop_flip(image, size) -> PIL.Image.Image        CoOp's training augmentation
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from llm_catalyst.data.paths import resolve_data_dir
from llm_catalyst.data.registry import IMAGE_FIELD, get_image_builtin
from llm_catalyst.data.sampling import FewShotSplits, sample_splits
from llm_catalyst.data.tasks import Example, Task, TaskData
from llm_catalyst.errors import ConfigError, DataError

BadImages = Literal["error", "skip"]
_IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
_INDEX_NAME = re.compile(r"^shot_(\d+)-seed_(\d+)\.json$")


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
    """The ``Task`` of an image classification dataset (schema in the module docstring)."""
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


class ImageTaskSpec(BaseModel):
    """An image classification task read from CoOp split files or from class folders.

    Relative paths are read from the current directory. ``template`` is the zero-shot hard
    context before the class name; ``label_meanings`` (optional, one per class in label order)
    are shown to the LLM instructor. ``fewshot_dir`` (coop_split only) makes train and dev come
    from the index file of (shots, seed) instead of being sampled from the train pool.
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
    template: str = "a photo of a"
    label_meanings: list[str] = []

    @model_validator(mode="after")
    def _complete(self) -> ImageTaskSpec:
        if self.format == "coop_split":
            if self.split_file is None or self.image_dir is None:
                raise ValueError("format coop_split needs split_file and image_dir")
            if self.train_dir or self.test_dir or self.class_names_file:
                raise ValueError(
                    "train_dir, test_dir and class_names_file belong to format folders; "
                    "coop_split reads class names and paths from split_file"
                )
        else:
            if self.train_dir is None or self.test_dir is None:
                raise ValueError("format folders needs train_dir and test_dir")
            if self.split_file or self.fewshot_dir or self.image_dir:
                raise ValueError(
                    "split_file, fewshot_dir and image_dir belong to format coop_split; "
                    "folders reads train_dir and test_dir"
                )
        return self


def builtin_image_spec(name: str, data_dir: str | os.PathLike[str] | None = None) -> ImageTaskSpec:
    """The spec of a built-in image task, its files resolved under the data folder."""
    definition = get_image_builtin(name)
    root = resolve_data_dir(data_dir)
    if root is None:
        raise DataError(
            f"task {name!r} is read from local files only and no data folder was found",
            path=Path.cwd() / ".." / "shared" / "data",
            fix=f"set data.data_dir (or $LLM_CATALYST_DATA) to the folder that holds "
            f"{definition.split_file}",
        )
    return ImageTaskSpec(
        name=name,
        description=definition.task.description,
        format="coop_split",
        image_dir=root / definition.image_dir,
        split_file=root / definition.split_file,
        fewshot_dir=root / definition.fewshot_dir,
        template=definition.hard_context,
        label_meanings=list(definition.task.label_meanings),
    )


def load_rgb(path: str | os.PathLike[str]) -> Image.Image:
    """The image at ``path`` decoded as RGB; a DataError naming the file if it cannot be read."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise DataError("the image file does not exist", path=path, fix=_MISSING_FIX) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(
            f"cannot read the image ({type(error).__name__}: {error})",
            path=path,
            fix="replace or delete the file, or set data.bad_images: skip to leave such images "
            "out (they are counted)",
        ) from None


_MISSING_FIX = "check the image folder setting; every image a split names must exist"


def load_image_data(spec: ImageTaskSpec, bad_images: BadImages = "error") -> TaskData:
    """The whole train pool and the test split (checked images)."""
    task, train, test, source = _read_pool(spec)
    kept, note = _check_splits({"train": train, "test": test}, bad_images)
    return TaskData(task, kept["train"], kept["test"], source + note)


def load_image_splits(
    spec: ImageTaskSpec,
    shots: int | None,
    seed: int,
    dev_shots: int | None = None,
    bad_images: BadImages = "error",
) -> FewShotSplits:
    """Train, dev and test: from the few-shot index file when the spec has ``fewshot_dir``,
    else sampled k-shot from the train pool like any task."""
    if spec.fewshot_dir is None:
        return sample_splits(load_image_data(spec, bad_images), shots, seed, dev_shots)
    if shots is None:
        raise ConfigError(
            f"task {spec.name!r} takes train and dev from few-shot index files: set data.shots "
            "to one of the shot counts in " + str(spec.fewshot_dir)
        )
    if dev_shots is not None:
        raise ConfigError(
            f"task {spec.name!r}: the dev split is the val part of the few-shot index file, so "
            "data.dev_shots cannot apply; remove it"
        )
    assert spec.split_file is not None and spec.image_dir is not None
    classes, test = _read_split_classes_and_test(spec.split_file, spec.image_dir)
    index_file = _index_file(spec.fewshot_dir, shots, seed)
    train, dev = _read_index_file(index_file, spec.image_dir, classes)
    task = _task(spec, classes)
    kept, note = _check_splits({"train": train, "dev": dev, "test": test}, bad_images)
    return FewShotSplits(
        task=task,
        train=kept["train"],
        dev=kept["dev"],
        test=kept["test"],
        seed=seed,
        shots=shots,
        dev_shots=_per_class(kept["dev"]),
        source=f"train and dev: {index_file}; test: {spec.split_file} (test){note}",
    )


# -- readers ---------------------------------------------------------------------------------


def _task(spec: ImageTaskSpec, classes: Sequence[str]) -> Task:
    """The task of ``spec`` with the class names read from its files."""
    if spec.label_meanings and len(spec.label_meanings) != len(classes):
        raise ConfigError(
            f"task {spec.name!r}: {len(spec.label_meanings)} label_meanings for the "
            f"{len(classes)} classes found in the data ({', '.join(classes)})"
        )
    return image_task(spec.name, spec.description, classes, spec.template, spec.label_meanings)


def _read_pool(spec: ImageTaskSpec) -> tuple[Task, tuple[Example, ...], tuple[Example, ...], str]:
    if spec.format == "coop_split":
        assert spec.split_file is not None and spec.image_dir is not None
        splits = _read_json(spec.split_file)
        classes = _split_classes(splits, spec.split_file)
        train = _split_examples(splits, "train", spec.split_file, spec.image_dir)
        test = _split_examples(splits, "test", spec.split_file, spec.image_dir)
        task = _task(spec, classes)
        return task, train, test, f"{spec.split_file} (train, test)"
    assert spec.train_dir is not None and spec.test_dir is not None
    mapping = _read_class_names(spec.class_names_file)
    folders = _class_folders(spec.train_dir)
    test_folders = _class_folders(spec.test_dir)
    if test_folders != folders:
        raise DataError(
            f"the class folders differ from those of {spec.train_dir}: "
            f"only in test: {sorted(set(test_folders) - set(folders))}, "
            f"only in train: {sorted(set(folders) - set(test_folders))}",
            path=spec.test_dir,
            fix="give train and test the same class folders",
        )
    classes = [_class_name(folder, mapping, spec.class_names_file) for folder in folders]
    train = _folder_examples(spec.train_dir, folders)
    test = _folder_examples(spec.test_dir, folders)
    task = _task(spec, classes)
    return task, train, test, f"class folders {spec.train_dir} (train), {spec.test_dir} (test)"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("file not found", path=path, fix=_MISSING_FIX) from None
    except json.JSONDecodeError as error:
        raise DataError(
            f"malformed JSON ({error.msg})",
            path=path,
            line=error.lineno,
            fix="the file must be one JSON document; restore it from its source",
        ) from None


def _split_entries(splits: Any, part: str, path: Path) -> list[Any]:
    if not isinstance(splits, dict) or not isinstance(splits.get(part), list):
        raise DataError(
            f'expected a JSON object with a list "{part}" (CoOp split file)',
            path=path,
            fix='use a CoOp split file: {"train": [[path, label, classname], ...], ...}',
        )
    return splits[part]


def _entry(entry: Any, part: str, i: int, path: Path) -> tuple[str, int, str]:
    ok = (
        isinstance(entry, list)
        and len(entry) == 3
        and isinstance(entry[0], str)
        and isinstance(entry[1], int)
        and isinstance(entry[2], str)
    )
    if not ok:
        raise DataError(
            f"{part}[{i}] is {str(entry)[:80]}, not [relative_path, label_id, classname]",
            path=path,
            fix="repair the entry or restore the split file",
        )
    return entry[0], entry[1], entry[2]


def _split_classes(splits: Any, path: Path) -> list[str]:
    """Class names by label id, from every entry of every part; they must agree."""
    names: dict[int, str] = {}
    for part in ("train", "val", "test"):
        if part not in splits:
            continue
        for i, raw in enumerate(_split_entries(splits, part, path)):
            _, label, name = _entry(raw, part, i, path)
            if names.setdefault(label, name) != name:
                raise DataError(
                    f"label {label} is called both {names[label]!r} and {name!r} ({part}[{i}])",
                    path=path,
                    fix="give each label id one class name",
                )
    if sorted(names) != list(range(len(names))) or len(names) < 2:
        raise DataError(
            f"label ids are {sorted(names)[:20]}; expected 0..n-1 with n >= 2",
            path=path,
            fix="number the classes 0..n-1 without gaps",
        )
    return [names[i] for i in range(len(names))]


def _split_examples(splits: Any, part: str, path: Path, image_dir: Path) -> tuple[Example, ...]:
    examples = []
    for i, raw in enumerate(_split_entries(splits, part, path)):
        relative, label, _ = _entry(raw, part, i, path)
        examples.append(_example(image_dir / relative, label, f"{part}-{i}"))
    return tuple(examples)


def _read_split_classes_and_test(
    split_file: Path, image_dir: Path
) -> tuple[list[str], tuple[Example, ...]]:
    splits = _read_json(split_file)
    return _split_classes(splits, split_file), _split_examples(
        splits, "test", split_file, image_dir
    )


def _index_file(fewshot_dir: Path, shots: int, seed: int) -> Path:
    path = fewshot_dir / f"shot_{shots}-seed_{seed}.json"
    if path.is_file():
        return path
    available = sorted(
        (int(m.group(1)), int(m.group(2)))
        for f in (fewshot_dir.iterdir() if fewshot_dir.is_dir() else ())
        if (m := _INDEX_NAME.match(f.name))
    )
    listed = ", ".join(f"shots={k} seed={s}" for k, s in available) or "none"
    raise DataError(
        f"no few-shot index file for shots={shots}, seed={seed}",
        path=path,
        fix=f"choose data.shots and data.seed among the available files: {listed}",
    )


def _read_index_file(
    path: Path, image_dir: Path, classes: Sequence[str]
) -> tuple[tuple[Example, ...], tuple[Example, ...]]:
    """The train and val parts of a few-shot index file, checked against the split's classes."""
    content = _read_json(path)
    parts = []
    for part in ("train", "val"):
        block = content.get(part) if isinstance(content, dict) else None
        data = block.get("data") if isinstance(block, dict) else None
        if not isinstance(data, list):
            raise DataError(
                f'expected "{part}": {{"data": [...]}} (a few-shot index file)',
                path=path,
                fix="use an index file with train and val parts of {impath, label, classname}",
            )
        examples = []
        for i, item in enumerate(data):
            impath, label, name = _index_item(item, part, i, path)
            if not 0 <= label < len(classes) or classes[label] != name:
                expected = classes[label] if 0 <= label < len(classes) else "no such label"
                raise DataError(
                    f"{part}[{i}] has label {label} {name!r} but the split file says {expected!r}",
                    path=path,
                    fix="use the index files made for this split file",
                )
            examples.append(_example(_locate(impath, image_dir, path), label, f"{part}-{i}"))
        parts.append(tuple(examples))
    return parts[0], parts[1]


def _index_item(item: Any, part: str, i: int, path: Path) -> tuple[str, int, str]:
    if not (
        isinstance(item, dict)
        and isinstance(item.get("impath"), str)
        and isinstance(item.get("label"), int)
        and isinstance(item.get("classname"), str)
    ):
        raise DataError(
            f"{part}.data[{i}] is not an object with impath, label and classname",
            path=path,
            fix="repair the entry or restore the index file",
        )
    return item["impath"], item["label"], item["classname"]


def _locate(impath: str, image_dir: Path, index_file: Path) -> Path:
    """``impath`` read relative to ``image_dir``: the part after its last ``image_dir.name``."""
    parts = Path(impath).parts
    positions = [i for i, part in enumerate(parts) if part == image_dir.name]
    if not positions:
        raise DataError(
            f"impath {impath!r} has no folder named {image_dir.name!r}, so it cannot be placed "
            f"under {image_dir}",
            path=index_file,
            fix="point image_dir at the folder the impaths name (e.g. .../eurosat/2750)",
        )
    return image_dir.joinpath(*parts[positions[-1] + 1 :])


def _read_class_names(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    mapping = _read_json(path)
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise DataError(
            "expected a JSON object mapping folder names to class names",
            path=path,
            fix='write {"folder": "class name", ...}',
        )
    return mapping


def _class_folders(root: Path) -> list[str]:
    if not root.is_dir():
        raise DataError("not a folder", path=root, fix="give a folder holding one folder per class")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(folders) < 2:
        raise DataError(
            f"found {len(folders)} class folder(s); at least two are needed",
            path=root,
            fix="put each class's images in its own folder under this one",
        )
    return folders


def _class_name(folder: str, mapping: dict[str, str], path: Path | None) -> str:
    if not mapping:
        return folder.replace("_", " ")
    if folder not in mapping:
        raise DataError(
            f"class folder {folder!r} has no entry",
            path=path,
            fix=f'add "{folder}": "<class name>" to the mapping',
        )
    return mapping[folder]


def _folder_examples(root: Path, folders: Sequence[str]) -> tuple[Example, ...]:
    examples = []
    for label, folder in enumerate(folders):
        files = sorted(p for p in (root / folder).iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
        examples.extend(_example(p, label, f"{folder}/{p.name}") for p in files)
    return tuple(examples)


def _example(path: Path, label: int, uid: str) -> Example:
    return Example({IMAGE_FIELD: str(path.resolve())}, label, uid=uid)


# -- checking images -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Skipped:
    path: str
    reason: str


def _check_splits(
    splits: dict[str, tuple[Example, ...]], bad_images: BadImages
) -> tuple[dict[str, tuple[Example, ...]], str]:
    """Every split's images decoded once; bad ones raise or are dropped and counted."""
    if bad_images not in ("error", "skip"):
        raise ConfigError(f"bad_images must be 'error' or 'skip', got {bad_images!r}")
    _require_files(splits)
    kept: dict[str, tuple[Example, ...]] = {}
    skipped: list[_Skipped] = []
    verdicts: dict[str, str | None] = {}
    for name, examples in splits.items():
        good = []
        for example in examples:
            path = example.fields[IMAGE_FIELD]
            if path not in verdicts:
                verdicts[path] = _problem(path)
            problem = verdicts[path]
            if problem is None:
                good.append(example)
                continue
            if bad_images == "error":
                load_rgb(path)  # raises the DataError that names the file
            skipped.append(_Skipped(path, problem))
        kept[name] = tuple(good)
    if not skipped:
        return kept, ""
    first = skipped[0]
    return kept, (
        f"; skipped {len(skipped)} unreadable image(s) (bad_images: skip), first "
        f"{first.path}: {first.reason}"
    )


def _require_files(splits: dict[str, tuple[Example, ...]]) -> None:
    """Missing files are an error whatever ``bad_images`` says: the data is not all there."""
    for name, examples in splits.items():
        paths = [ex.fields[IMAGE_FIELD] for ex in examples]
        missing = [path for path in paths if not Path(path).is_file()]
        if missing:
            raise DataError(
                f"{len(missing)} of the {len(examples)} images of the {name} split are missing "
                f"(first: {missing[0]})",
                path=Path(missing[0]).parent,
                fix="put the images where the split names them; a partial copy (such as the "
                "shared EuroSAT folder, which holds the test images and the few-shot pools "
                "only) supports the few-shot protocol (data.shots with index files) only",
            )


def _problem(path: str) -> str | None:
    """None for an image that decodes; else why not.

    JPEGs decode at reduced scale (``draft``): all of the file is still read, which catches
    truncation, at a fraction of the cost.
    """
    try:
        with Image.open(path) as image:
            image.draft("RGB", (1, 1))
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def _per_class(examples: Sequence[Example]) -> int:
    counts: dict[int, int] = {}
    for example in examples:
        counts[example.label] = counts.get(example.label, 0) + 1
    return max(counts.values(), default=0)


# -- augmentation ----------------------------------------------------------------------------


def random_resized_crop_flip(
    image: Image.Image,
    size: tuple[int, int],
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> Image.Image:
    """CoOp's training augmentation: a random crop of random area and aspect ratio resized to
    ``size`` (height, width) with bicubic resampling, then a horizontal flip with p = 0.5.

    Draws from torch's global generator, so a caller that seeds it (the trainer does, per step)
    gets the same crops again.
    """
    width, height = image.size
    area = width * height
    box = None
    for _ in range(10):
        target = area * float(torch.empty(1).uniform_(*scale))
        aspect = math.exp(float(torch.empty(1).uniform_(math.log(ratio[0]), math.log(ratio[1]))))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,)))
            left = int(torch.randint(0, width - w + 1, (1,)))
            box = (left, top, left + w, top + h)
            break
    if box is None:  # the fallback of torchvision's RandomResizedCrop: a central crop
        aspect = width / height
        w, h = width, height
        if aspect < ratio[0]:
            h = round(width / ratio[0])
        elif aspect > ratio[1]:
            w = round(height * ratio[1])
        left, top = (width - w) // 2, (height - h) // 2
        box = (left, top, left + w, top + h)
    out = image.resize((size[1], size[0]), Image.Resampling.BICUBIC, box=box)
    if float(torch.rand(1)) < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return out
