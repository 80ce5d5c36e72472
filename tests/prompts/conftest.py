"""Fixtures shared by the prompt tests."""

from __future__ import annotations

import pytest
import torch

from llm_catalyst.prompts import Vocabulary
from tests.prompts.word_vocab import SPECIAL, WORDS, word_id, word_tokenizer


@pytest.fixture
def word_vocab() -> Vocabulary:
    """The word tokenizer with a random (V, 8) table; special tokens excluded."""
    table = torch.randn(len(WORDS), 8, generator=torch.Generator().manual_seed(0))
    return Vocabulary(word_tokenizer(), table, frozenset(word_id(w) for w in SPECIAL))
