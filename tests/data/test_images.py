"""Image tasks: EuroSAT in CoOp's layout, CoOp split files, class folders, bad images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydantic
import pytest

from llm_catalyst.data.config import DataConfig, load_data, load_splits
from llm_catalyst.data.images import load_image_data
from llm_catalyst.data.registry import get_task, list_tasks
from llm_catalyst.data.specs import ImageTaskSpec
from llm_catalyst.data.tasks import IMAGE_FIELD, is_image_task
from llm_catalyst.errors import ConfigError, DataError

EUROSAT_CLASSES = (
    "Annual Crop Land",
    "Forest",
    "Herbaceous Vegetation Land",
    "Highway or Road",
    "Industrial Buildings",
    "Pasture Land",
    "Permanent Crop Land",
    "Residential Buildings",
    "River",
    "Sea or Lake",
)


def test_eurosat_few_shot_splits_come_from_the_index_file(data_root):
    splits = load_splits(DataConfig(task="eurosat", data_dir=data_root, shots=8, seed=3))
    assert splits.task.label_names == EUROSAT_CLASSES == splits.task.label_words
    assert is_image_task(splits.task)
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (80, 40, 8100)
    assert splits.dev_shots == 4  # CoOp: min(4, shots) validation images per class
    index = json.loads((data_root / "eurosat/fewshot_indices/shot_8-seed_3.json").read_text())
    expected = [item["impath"].split("/2750/")[1] for item in index["train"]["data"]]
    assert [ex.fields[IMAGE_FIELD].split("/2750/")[1] for ex in splits.train] == expected
    assert [ex.label for ex in splits.train] == [item["label"] for item in index["train"]["data"]]
    assert all(Path(ex.fields[IMAGE_FIELD]).is_file() for ex in splits.train + splits.dev)
    test_paths = {ex.fields[IMAGE_FIELD] for ex in splits.test}
    assert not test_paths & {ex.fields[IMAGE_FIELD] for ex in splits.train + splits.dev}
    assert "shot_8-seed_3.json" in splits.source and "skipped" not in splits.source
    assert splits.task.render(splits.test[0]) == "a centered satellite photo of a"
    assert "{class}" in splits.task.description


def test_eurosat_is_listed_and_named(data_root):
    infos = {info.name: info for info in list_tasks(data_root)}
    assert infos["eurosat"].kind == "image" and infos["eurosat"].num_classes == 10
    assert infos["eurosat"].data.startswith("local: ")
    assert get_task("eurosat").label_names == EUROSAT_CLASSES


def test_eurosat_protocol_errors_say_what_to_change(data_root):
    with pytest.raises(DataError, match="shots=16 seed=3") as error:
        load_splits(DataConfig(task="eurosat", data_dir=data_root, shots=3, seed=1))
    assert "shot_3-seed_1.json" in str(error.value)
    with pytest.raises(ConfigError, match="dev_shots cannot apply"):
        load_splits(DataConfig(task="eurosat", data_dir=data_root, shots=4, dev_shots=4))
    with pytest.raises(pydantic.ValidationError, match="image tasks are read from local files"):
        DataConfig(task="eurosat", source="hub")
    with pytest.raises(DataError, match="of the 13500 images of the train split are missing"):
        load_data(DataConfig(task="eurosat", data_dir=data_root, shots=None, dev_shots=4))


@pytest.fixture
def small_split(data_root, tmp_path) -> Path:
    """Six real EuroSAT images (two classes) with a CoOp split file, in a writable folder."""
    source = data_root / "eurosat" / "2750"
    images = tmp_path / "images"
    entries = []
    for label, (folder, name) in enumerate([("Forest", "Forest"), ("River", "River")]):
        (images / folder).mkdir(parents=True)
        for file in sorted((source / folder).iterdir())[:3]:
            shutil.copyfile(file, images / folder / file.name)
            entries.append([f"{folder}/{file.name}", label, name])
    split = {"train": entries[:2] + entries[3:5], "val": [], "test": [entries[2], entries[5]]}
    (tmp_path / "split.json").write_text(json.dumps(split))
    return tmp_path


def _spec(root: Path) -> ImageTaskSpec:
    return ImageTaskSpec(
        name="mini",
        description="Forest or river.",
        format="coop_split",
        split_file=root / "split.json",
        image_dir=root / "images",
    )


def test_a_coop_split_file_reads_class_names_and_paths(small_split):
    data = load_image_data(_spec(small_split))
    assert data.task.label_names == ("Forest", "River")
    assert [ex.label for ex in data.train] == [0, 0, 1, 1] and len(data.test) == 2
    assert data.train[0].fields[IMAGE_FIELD].startswith(str(small_split / "images" / "Forest"))


def test_a_corrupt_image_is_named_or_skipped_and_counted(small_split):
    bad = small_split / "images" / "River" / sorted((small_split / "images/River").iterdir())[0]
    bad.write_bytes(bad.read_bytes()[:300])  # truncated JPEG: the header still reads
    garbage = sorted((small_split / "images/Forest").iterdir())[1]
    garbage.write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="cannot read the image") as error:
        load_image_data(_spec(small_split))
    assert str(garbage) in str(error.value) and "bad_images: skip" in str(error.value)
    data = load_image_data(_spec(small_split), bad_images="skip")
    kept = {ex.fields[IMAGE_FIELD] for ex in data.train}
    assert len(data.train) == 2 and str(bad) not in kept and str(garbage) not in kept
    assert len(data.test) == 2, "nothing else is lost"
    assert "skipped 2 unreadable image(s)" in data.source


def test_class_folders_with_a_name_mapping(data_root, tmp_path):
    for split, files in (("train", slice(0, 3)), ("test", slice(3, 5))):
        for folder in ("SeaLake", "Highway"):
            target = tmp_path / split / folder
            target.mkdir(parents=True)
            for file in sorted((data_root / "eurosat/2750" / folder).iterdir())[files]:
                shutil.copyfile(file, target / file.name)
    (tmp_path / "train" / "Highway" / "notes.txt").write_text("not an image")
    spec = dict(
        description="Roads and water.",
        format="folders",
        train_dir=tmp_path / "train",
        test_dir=tmp_path / "test",
    )
    data = load_image_data(ImageTaskSpec(**spec))
    assert data.task.label_names == ("Highway", "SeaLake")
    assert (len(data.train), len(data.test)) == (6, 4)
    mapping = tmp_path / "names.json"
    mapping.write_text(json.dumps({"SeaLake": "Sea or Lake", "Highway": "Highway or Road"}))
    named = load_image_data(ImageTaskSpec(**spec, class_names_file=mapping))
    assert named.task.label_words == ("Highway or Road", "Sea or Lake")
    mapping.write_text(json.dumps({"SeaLake": "Sea or Lake"}))
    with pytest.raises(DataError, match="class folder 'Highway' has no entry"):
        load_image_data(ImageTaskSpec(**spec, class_names_file=mapping))


def test_an_image_task_spec_works_as_the_data_config_task(small_split):
    config = DataConfig(task=_spec(small_split).model_dump(), shots=1, dev_shots=1)
    splits = load_splits(config)
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (2, 2, 2)
    with pytest.raises(pydantic.ValidationError, match="needs train_dir and test_dir"):
        ImageTaskSpec(description="x", format="folders", train_dir=small_split)


def test_declared_class_names_are_checked_against_the_files(small_split):
    spec = _spec(small_split).model_copy(update={"class_names": ["Forest", "Lake"]})
    with pytest.raises(DataError, match="not the class_names of task 'mini'") as error:
        load_image_data(spec)
    assert error.value.path == small_split / "split.json"
    named = _spec(small_split).model_copy(update={"class_names": ["Forest", "River"]})
    assert load_image_data(named).task.label_names == ("Forest", "River")
