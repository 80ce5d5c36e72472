"""CLIP weights: the tiny test model's vocabulary and what the presets say when they cannot load."""

from __future__ import annotations

import pytest

from llm_catalyst.errors import BackboneError
from llm_catalyst.weights.clip import TINY_CLIP_WORDS, load_pretrained_clip, tiny_clip_tokenizer


def test_tiny_clip_vocabulary_holds_its_words_as_single_tokens():
    tokenizer = tiny_clip_tokenizer()
    for word in TINY_CLIP_WORDS:
        assert len(tokenizer(word, add_special_tokens=False)["input_ids"]) == 1, word
    assert load_pretrained_clip("tiny-clip").tokenizer.get_vocab() == tokenizer.get_vocab()


def test_a_preset_of_another_kind_is_refused():
    with pytest.raises(BackboneError, match="set kind: causal_lm"):
        load_pretrained_clip("tiny-causal-lm")


def test_hub_presets_say_what_they_need():
    with pytest.raises(BackboneError) as error:
        load_pretrained_clip("clip-vit-base-patch16")
    assert "openai/clip-vit-base-patch16" in str(error.value)
    assert "HF_HUB_OFFLINE" in str(error.value)
