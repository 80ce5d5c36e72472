"""CLIP's image input: decoding, the processor's deterministic preprocessing and CoOp's
training augmentation (random resized crop and horizontal flip, PIL)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError

from llm_catalyst.data.images import unreadable_image
from llm_catalyst.errors import DataError


def load_rgb(path: str | os.PathLike[str]) -> Image.Image:
    """The image at ``path`` decoded as RGB; a DataError naming the file if it cannot be read."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise DataError(
            "the image file does not exist",
            path=path,
            fix="check the image folder setting; every image a split names must exist",
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise unreadable_image(path, f"{type(error).__name__}: {error}") from None


def preprocessing_key(processor: Any) -> str:
    """The processor's class and settings: image features depend on them."""
    return json.dumps(
        {"class": type(processor).__name__, "config": processor.to_dict()},
        sort_keys=True,
        default=str,
    )


def pixel_values(processor: Any, paths: Sequence[str]) -> torch.Tensor:
    """The processor's deterministic preprocessing of the images at ``paths``."""
    images = [load_rgb(path) for path in paths]
    return processor(images=images, return_tensors="pt")["pixel_values"]


def augmented_pixel_values(processor: Any, paths: Sequence[str], image_size: int) -> torch.Tensor:
    """CoOp's training input: each image cropped, flipped and normalised by the processor.

    The crop size is the processor's (else the image tower's ``image_size``).
    """
    crop = getattr(processor, "crop_size", None) or {}
    size = (int(crop.get("height", image_size)), int(crop.get("width", image_size)))
    images = [random_resized_crop_flip(load_rgb(path), size) for path in paths]
    return processor(images=images, do_resize=False, do_center_crop=False, return_tensors="pt")[
        "pixel_values"
    ]


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
