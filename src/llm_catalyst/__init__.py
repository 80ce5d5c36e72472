"""llm-catalyst: prompt tuning where a gradient optimizer and an LLM work together.

Names below are imported lazily, so ``import llm_catalyst`` stays cheap and has no side effects.
"""

from __future__ import annotations

from llm_catalyst.lazy import lazy_exports

__version__ = "0.1.0"

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "llm_catalyst.catalyst": ("RunConfig", "RunResult", "load_run_config", "run", "resume"),
        "llm_catalyst.catalyst.plain": ("load_tune_config", "tune"),
        "llm_catalyst.prompts.artifact": ("load_prompt", "save_prompt"),
        "llm_catalyst.data.registry": ("get_task", "list_tasks"),
        "llm_catalyst.backbones.config": ("build_backbone", "BackboneConfig"),
    },
)
