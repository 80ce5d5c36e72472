"""The catalyst loop, its controls, and resumable runs.

Public API (imported lazily, so that importing the package loads no model code)::

    from llm_catalyst.catalyst import load_run_config, run, resume

    config = load_run_config("run.yaml", {"method": "catalyst", "data.seed": 2})
    result = run(config)                  # a run directory with checkpoints and results.json
    result = resume(result.run_dir)       # after a kill or Ctrl-C: continues, same result

Modules: ``config`` (RunConfig, LoopConfig, the protocols), ``loop`` (the algorithm of
method.md), ``methods`` (plain, random-restart, projection-restart, llm-only, catalyst and the
runs that execute them), ``checkpoint`` (run state and checkpoints), ``commands`` (the ``run``,
``compare`` and ``report`` CLI commands).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "METHODS": "llm_catalyst.catalyst.config",
    "LoopConfig": "llm_catalyst.catalyst.config",
    "RunConfig": "llm_catalyst.catalyst.config",
    "load_run_config": "llm_catalyst.catalyst.config",
    "CatalystLoop": "llm_catalyst.catalyst.loop",
    "RunInterrupted": "llm_catalyst.catalyst.loop",
    "RunResult": "llm_catalyst.catalyst.methods",
    "run": "llm_catalyst.catalyst.methods",
    "resume": "llm_catalyst.catalyst.methods",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'llm_catalyst.catalyst' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
