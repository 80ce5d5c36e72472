"""The catalyst loop, its methods and controls, and resumable runs.

``run(load_run_config("run.yaml", {"method": "catalyst"}))`` writes a run directory;
``resume(result.run_dir)`` continues it after a kill or Ctrl-C. Imported lazily: importing the
package loads no model code.
"""

from __future__ import annotations

from llm_catalyst.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "llm_catalyst.catalyst.methods": ("METHODS", "get_method"),
        "llm_catalyst.catalyst.config": ("LoopConfig", "RunConfig", "load_run_config"),
        "llm_catalyst.catalyst.loop": ("CatalystLoop",),
        "llm_catalyst.catalyst.stop": ("RunInterrupted",),
        "llm_catalyst.catalyst.runner": ("RunResult", "run", "resume"),
    },
)
