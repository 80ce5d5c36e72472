"""CLIP's image input: decoding errors and CoOp's seeded augmentation."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from llm_catalyst.backbones.clip_images import load_rgb, random_resized_crop_flip
from llm_catalyst.errors import DataError


def test_random_resized_crop_flip_is_seeded(shared_data_dir):
    image = Image.open(next((shared_data_dir / "eurosat/2750/Forest").iterdir())).convert("RGB")
    torch.manual_seed(0)
    first = random_resized_crop_flip(image, (48, 40))
    torch.manual_seed(0)
    again = random_resized_crop_flip(image, (48, 40))
    crops = set()
    for seed in range(6):
        torch.manual_seed(seed)
        crops.add(random_resized_crop_flip(image, (48, 40)).tobytes())
    assert first.size == (40, 48) and first.tobytes() == again.tobytes()
    assert len(crops) == 6


def test_an_unreadable_image_is_named_with_the_fix(tmp_path):
    garbage = tmp_path / "broken.jpg"
    garbage.write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="cannot read the image") as error:
        load_rgb(garbage)
    assert error.value.path == garbage and "bad_images: skip" in str(error.value)
