"""Image tasks' data: CoOp split files, few-shot index files, class folders, bad images.

An image example's one field (``IMAGE_FIELD``) holds the absolute path of its image. Every image
of the splits is decoded once at load time: an unreadable one raises a DataError naming the
file, or with ``bad_images="skip"`` is left out and counted in the ``source`` string; a missing
file is always an error. Decoding for the model lives beside the CLIP backbone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError

from llm_catalyst.data.sampling import FewShotSplits, sample_splits
from llm_catalyst.data.specs import ImageTaskSpec
from llm_catalyst.data.tasks import IMAGE_FIELD, Example, Task, TaskData
from llm_catalyst.errors import ConfigError, DataError
from llm_catalyst.jsonio import read_json

BadImages = Literal["error", "skip"]
_IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
_INDEX_NAME = re.compile(r"^shot_(\d+)-seed_(\d+)\.json$")


def unreadable_image(path: str | os.PathLike[str], reason: str) -> DataError:
    """The error for an image that does not decode, wherever it is found."""
    return DataError(
        f"cannot read the image ({reason})",
        path=path,
        fix="replace or delete the file, or set data.bad_images: skip to leave such images "
        "out (they are counted)",
    )


_MISSING_FIX = "check the image folder setting; every image a split names must exist"
_JSON_FIX = "check the task's file settings, or restore the file from its source"


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
    task = _task(spec, classes, spec.split_file)
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


def _task(spec: ImageTaskSpec, classes: list[str], where: Path) -> Task:
    """The task of ``spec`` with the class names read from its files (``where``)."""
    if spec.class_names and spec.class_names != classes:
        raise DataError(
            f"the classes found here ({', '.join(classes)}) are not the class_names of task "
            f"{spec.name!r} ({', '.join(spec.class_names)})",
            path=where,
            fix="use the files the task was written for, or correct class_names",
        )
    return spec.to_task(classes)


def _read_pool(spec: ImageTaskSpec) -> tuple[Task, tuple[Example, ...], tuple[Example, ...], str]:
    if spec.format == "coop_split":
        assert spec.split_file is not None and spec.image_dir is not None
        splits = read_json(spec.split_file, _JSON_FIX)
        classes = _split_classes(splits, spec.split_file)
        train = _split_examples(splits, "train", spec.split_file, spec.image_dir)
        test = _split_examples(splits, "test", spec.split_file, spec.image_dir)
        task = _task(spec, classes, spec.split_file)
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
    task = _task(spec, classes, spec.train_dir)
    return task, train, test, f"class folders {spec.train_dir} (train), {spec.test_dir} (test)"


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
    splits = read_json(split_file, _JSON_FIX)
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
    content = read_json(path, _JSON_FIX)
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
    mapping = read_json(path, _JSON_FIX)
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
                raise unreadable_image(path, problem)
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
