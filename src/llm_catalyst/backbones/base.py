"""The protocol between frozen backbones and everything that trains or scores prompts.

Callers see the embedding table, a collate function and class scores given a soft prompt, so
the trainer, scoring and projection work the same on every kind of model.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

import torch

from llm_catalyst.data.tasks import Example, Task
from llm_catalyst.errors import BackboneError


@dataclass
class Batch:
    """Tokenised examples. ``inputs`` holds backbone-specific tensors; ``labels`` is (B,)."""

    inputs: dict[str, torch.Tensor]
    labels: torch.Tensor
    meta: dict[str, object] = field(default_factory=dict)

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            inputs={k: v.to(device) for k, v in self.inputs.items()},
            labels=self.labels.to(device),
            meta=self.meta,
        )

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@runtime_checkable
class Backbone(Protocol):
    """A frozen model bound to one task."""

    name: str
    task: Task

    @property
    def tokenizer(self): ...

    @property
    def embedding_table(self) -> torch.Tensor:
        """The frozen input-embedding matrix (V, d) that soft prompts live in."""

    @property
    def excluded_token_ids(self) -> frozenset[int]:
        """Token ids a projection must never pick (special, added and unused tokens)."""

    @property
    def vocab_fingerprint(self) -> str:
        """A hash of the tokenizer vocabulary; artifacts refuse to load on a mismatch."""

    @property
    def device(self) -> torch.device: ...

    def collate(self, examples: Sequence[Example]) -> Batch:
        """Tokenise a list of examples with dynamic padding."""

    def class_scores(self, prompt: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Class scores (B, num_classes) with ``prompt`` prepended to every input.

        ``prompt`` is (P, d), shared by the batch, or (B, P, d), one prompt per row (used to
        score many candidate prompts in one forward pass).
        """

    def head_parameters(self) -> list[torch.nn.Parameter]:
        """Trainable parameters besides the prompt ([] for a verbalizer)."""

    def train(self, mode: bool = True) -> None:
        """Switch the trainable head between training (dropout on) and evaluation.

        The frozen model itself always stays in eval mode.
        """

    def head_state(self) -> dict[str, torch.Tensor]: ...

    def load_head_state(self, state: dict[str, torch.Tensor]) -> None: ...


_UNUSED_TOKEN = re.compile(r"^[\[<]unused\d+[\]>]$")


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """Put a pre-trained model in eval mode with no trainable weights (only prompts train)."""
    model.eval()
    model.requires_grad_(False)
    return model


def excluded_token_ids(tokenizer, num_embedding_rows: int) -> frozenset[int]:
    """Special, added and unused tokens, and embedding rows no tokenizer id reaches.

    Unused tokens are the placeholder entries some vocabularies reserve (``[unused12]`` in BERT,
    ``<unused3>`` in Gemma): they were never trained and do not decode to text.
    """
    vocab = tokenizer.get_vocab()
    ids = set(tokenizer.all_special_ids) | set(tokenizer.get_added_vocab().values())
    ids |= {i for token, i in vocab.items() if _UNUSED_TOKEN.match(token)}
    ids |= set(range(len(tokenizer), num_embedding_rows))
    return frozenset(i for i in ids if 0 <= i < num_embedding_rows)


def vocab_fingerprint(tokenizer) -> str:
    """sha256 over the token -> id map and the special tokens, stable across processes."""
    payload = {
        "vocab": sorted(tokenizer.get_vocab().items(), key=lambda item: (item[1], item[0])),
        "special": sorted(tokenizer.all_special_tokens),
    }
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode("utf-8")).hexdigest()


class FrozenEmbeddingsMixin:
    """The protocol properties every backbone derives the same way from its tokenizer and its
    input-embedding module (``_tokenizer``, ``_embed``); a backbone whose embedding output is
    not the plain weight (Gemma's scale) overrides ``embedding_table``."""

    _tokenizer: Any
    _embed: torch.nn.Embedding

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    @property
    def device(self) -> torch.device:
        return self._embed.weight.device

    @property
    def embedding_table(self) -> torch.Tensor:
        return self._embed.weight.detach()

    @cached_property
    def excluded_token_ids(self) -> frozenset[int]:
        """Computed once: the tokenizer must not change after the backbone is built."""
        return excluded_token_ids(self._tokenizer, self._embed.weight.shape[0])

    @cached_property
    def vocab_fingerprint(self) -> str:
        return vocab_fingerprint(self._tokenizer)


class NoHeadMixin:
    """The head half of the protocol for backbones that train the prompt alone.

    ``_head_refusal`` completes the error for an artifact that carries a head: what this
    backbone is and how to load the artifact instead."""

    _head_refusal: str

    def head_parameters(self) -> list[torch.nn.Parameter]:
        return []

    def head_state(self) -> dict[str, torch.Tensor]:
        return {}

    def load_head_state(self, state: dict[str, torch.Tensor]) -> None:
        if state:
            raise BackboneError(f"a head state with keys {sorted(state)} {self._head_refusal}")
