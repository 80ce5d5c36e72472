"""Soft prompts: initialisation, projection to and from text, and saved artifacts.

``projection`` is the one place that maps between soft prompts and words; ``soft_prompt`` holds a
prompt and its provenance; ``artifact`` saves prompts as PEFT adapters plus our own metadata.
"""

from llm_catalyst.prompts.artifact import PromptArtifact, load_prompt, save_prompt
from llm_catalyst.prompts.config import PromptConfig
from llm_catalyst.prompts.projection import (
    FitPolicy,
    FittedText,
    Projection,
    RoundTripMismatch,
    Vocabulary,
    embed_text,
    project,
    project_many,
)
from llm_catalyst.prompts.soft_prompt import (
    SoftPrompt,
    init_prompt,
    prompt_from_tensor,
    prompt_from_text,
    random_prompt,
    read_tensor_file,
)

__all__ = [
    "FitPolicy",
    "FittedText",
    "Projection",
    "PromptArtifact",
    "PromptConfig",
    "RoundTripMismatch",
    "SoftPrompt",
    "Vocabulary",
    "embed_text",
    "init_prompt",
    "load_prompt",
    "project",
    "project_many",
    "prompt_from_tensor",
    "prompt_from_text",
    "random_prompt",
    "read_tensor_file",
    "save_prompt",
]
