"""What the causal-LM and encoder backbones share: a frozen ``transformers`` model bound to a task
and its tokenizer, whose gradient-checkpointed layers alone follow ``train()``."""

from __future__ import annotations

from typing import TypedDict

from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.modeling_layers import GradientCheckpointingLayer

from llm_catalyst.backbones.base import FrozenEmbeddingsMixin, freeze
from llm_catalyst.data.tasks import Task


class TransformerOptions(TypedDict, total=False):
    """The options every transformer backbone takes from ``FrozenTransformer``; a subclass
    passes them on (``**common: Unpack[TransformerOptions]``), so their defaults live once."""

    name: str
    max_length: int


class FrozenTransformer(FrozenEmbeddingsMixin):
    """Freezes ``model`` and binds it to ``task``; ``name`` defaults to the model's hub id or
    path, ``max_length`` caps the tokens of one input."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        task: Task,
        *,
        name: str = "",
        max_length: int = 256,
    ) -> None:
        self.model = freeze(model)
        self._tokenizer = tokenizer
        self.task = task
        self.name = name or model.config.name_or_path
        self.max_length = max_length
        self._embed = model.get_input_embeddings()
        self._checkpointed = [
            m
            for m in model.modules()
            if isinstance(m, GradientCheckpointingLayer) and m.gradient_checkpointing
        ]
        self._training = False

    def train(self, mode: bool = True) -> None:
        """The model stays in eval mode; only its checkpointed layers (with gradient
        checkpointing on) follow ``mode``, so that transformers recomputes them in the backward
        pass of a training step."""
        self._training = mode
        for layer in self._checkpointed:
            layer.training = mode
