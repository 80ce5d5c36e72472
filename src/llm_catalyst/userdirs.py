"""Where llm-catalyst keeps per-user files (model caches, LLM response cache).

One place for the decision, light enough to import from any subsystem without loading torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

CACHE_ENV = "LLM_CATALYST_CACHE"


def cache_root() -> Path:
    """The cache directory: ``$LLM_CATALYST_CACHE`` if set, else the platform's user cache."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path(platformdirs.user_cache_dir("llm-catalyst"))
