"""The catalyst loop, its methods and controls, and resumable runs.

``run(load_run_config("run.yaml", {"method": "catalyst"}))`` writes a run directory;
``resume(result.run_dir)`` continues it after a kill or Ctrl-C. Imported lazily: importing the
package loads no model code.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "METHODS": "llm_catalyst.catalyst.methods",
    "get_method": "llm_catalyst.catalyst.methods",
    "LoopConfig": "llm_catalyst.catalyst.config",
    "RunConfig": "llm_catalyst.catalyst.config",
    "load_run_config": "llm_catalyst.catalyst.config",
    "CatalystLoop": "llm_catalyst.catalyst.loop",
    "RunInterrupted": "llm_catalyst.catalyst.bookkeeping",
    "RunResult": "llm_catalyst.catalyst.runner",
    "run": "llm_catalyst.catalyst.runner",
    "resume": "llm_catalyst.catalyst.runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'llm_catalyst.catalyst' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
