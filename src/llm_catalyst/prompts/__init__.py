"""Soft prompts: initialisation, projection to and from text, and saved artifacts.

``projection`` is the one place that maps between soft prompts and words; ``soft_prompt`` holds a
prompt and its provenance; ``artifact`` saves prompts as PEFT adapters plus our own metadata.

Imported lazily: importing the package (``prompts.config`` for a run's settings, say) loads no
torch or peft until a prompt is built.
"""

from __future__ import annotations

from llm_catalyst.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "llm_catalyst.prompts.artifact": ("PromptArtifact", "load_prompt", "save_prompt"),
        "llm_catalyst.prompts.config": ("PromptConfig",),
        "llm_catalyst.prompts.fit": ("FitPolicy",),
        "llm_catalyst.prompts.projection": (
            "FittedText",
            "Projection",
            "RoundTripMismatch",
            "Vocabulary",
            "embed_text",
            "project",
            "project_many",
        ),
        "llm_catalyst.prompts.soft_prompt": (
            "SoftPrompt",
            "init_prompt",
            "prompt_from_tensor",
            "prompt_from_text",
            "random_prompt",
            "read_tensor_file",
        ),
    },
)
