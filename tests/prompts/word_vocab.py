"""A tiny word-level vocabulary built in-process, so projection tests need no model files."""

from __future__ import annotations

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

# "new york" is one token that decodes to two words: it cannot survive decode -> encode.
WORDS = [
    "[PAD]",
    "[UNK]",
    "[SEP]",
    "good",
    "bad",
    "movie",
    "great",
    "the",
    "a",
    ".",
    "new york",
    "new",
    "york",
    "film",
    "plot",
    "dull",
]
SPECIAL = ("[PAD]", "[UNK]", "[SEP]")


def word_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", sep_token="[SEP]"
    )


def word_id(word: str) -> int:
    return WORDS.index(word)
