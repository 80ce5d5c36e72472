"""llm-catalyst: prompt tuning where a gradient optimizer and an LLM work together.

Names below are imported lazily, so ``import llm_catalyst`` stays cheap and has no side effects.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "RunConfig": "llm_catalyst.catalyst",
    "RunResult": "llm_catalyst.catalyst",
    "load_run_config": "llm_catalyst.catalyst",
    "run": "llm_catalyst.catalyst",
    "resume": "llm_catalyst.catalyst",
    "load_tune_config": "llm_catalyst.catalyst.plain",
    "tune": "llm_catalyst.catalyst.plain",
    "load_prompt": "llm_catalyst.prompts.artifact",
    "save_prompt": "llm_catalyst.prompts.artifact",
    "get_task": "llm_catalyst.data.registry",
    "list_tasks": "llm_catalyst.data.registry",
    "build_backbone": "llm_catalyst.backbones.config",
    "BackboneConfig": "llm_catalyst.backbones.config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'llm_catalyst' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
