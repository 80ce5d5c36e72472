"""CLIP's options in a run's configuration (``backbone.clip``), apart from the backbone itself.

Validating a configuration must not load torch or transformers, so these live here and
``clip.py`` imports them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ClassPosition = Literal["end", "middle", "front"]


class CLIPOptions(BaseModel):
    """CoOp's choices (class-name position, shared or class-specific context) and how image
    features are obtained: the image tower is frozen, so its features can be computed once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    class_position: ClassPosition = Field(
        "end", description="where the class name goes among the context slots"
    )
    context: Literal["shared", "class_specific"] = Field(
        "shared",
        description="one context for all classes (`shared`) or one per class "
        "(`class_specific`: prompt.length is then classes x context length, class by class)",
    )
    features: Literal["cached", "augment"] = Field(
        "cached",
        description="`cached`: every image encoded once and its features cached; `augment`: "
        "CoOp's random resized crop and flip, each image encoded again at every step",
    )
    disk_cache: bool = Field(
        True,
        description="keep the cached features on disk for later runs (keyed by the image "
        "tower, the preprocessing and the image bytes); false: in memory for this run",
    )
    cache_dir: Path | None = Field(
        None,
        description="the features' disk cache; null: `clip-features` in the user cache "
        "(`$LLM_CATALYST_CACHE`)",
    )
    image_batch_size: int = Field(64, ge=1, description="images encoded per batch")
