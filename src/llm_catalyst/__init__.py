"""llm-catalyst: prompt tuning where a gradient optimizer and an LLM work together.

Names below are imported lazily, so ``import llm_catalyst`` stays cheap. Its one side effect is
logging's recommendation for libraries: the modules log through ``logging.getLogger(__name__)``
(children of the ``llm_catalyst`` logger) and print nothing themselves, and a NullHandler on
the package logger keeps them silent, warnings included, until the application attaches a
handler of its own (the command line shows them on stderr: ``commands/log.py``).
"""

from __future__ import annotations

import logging

from llm_catalyst.lazy import lazy_exports

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

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
