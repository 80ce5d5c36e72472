"""CLIP weights: hub presets (no package ships CLIP weights), any hub id or directory, and
``tiny-clip``, a random seeded CLIP built in-process for tests around a real ``CLIPTokenizer``
over a small in-process BPE vocabulary (byte symbols plus whole-word merges of
``TINY_CLIP_WORDS``). Images go through transformers' PIL/numpy CLIP processor, never the
torchvision one (it pulls a CUDA build of torch).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, NamedTuple

import torch
import transformers
from transformers import AutoTokenizer, CLIPConfig, CLIPModel, CLIPTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

from llm_catalyst.errors import BackboneError
from llm_catalyst.weights.hub import hub_unavailable
from llm_catalyst.weights.presets import (
    PRESETS,
    TINY_PRESETS,
    TINY_SIZE,
    check_preset_kind,
    seeded_init,
    tiny_text_config,
)
from llm_catalyst.weights.quiet import no_loading_bar

TINY_CLIP_WORDS: tuple[str, ...] = tuple(
    """
    a an the of in on at from with by and or to for is are this that it its as photo photograph
    picture image images view satellite aerial centered top overhead seen taken above space
    remote sensing sentinel land cover use type scene area region landscape earth ground field
    fields crop crops annual permanent forest trees herbaceous vegetation grass highway road
    roads industrial buildings building pasture residential houses river sea lake water green
    blue brown small large close shot low resolution rgb class category kind good bad cat dog
    bird car
    """.split()  # noqa: SIM905 (a word list reads best as text)
)


class LoadedCLIP(NamedTuple):
    model: CLIPModel
    tokenizer: Any
    processor: Any


def image_processor_class() -> type:
    """transformers' PIL/numpy CLIP image processor.

    From transformers 5 on, ``CLIPImageProcessor`` needs torchvision (which pulls a CUDA build
    of torch) and the PIL one is ``CLIPImageProcessorPil``; before, ``CLIPImageProcessor`` was
    the PIL one.
    """
    if hasattr(transformers, "CLIPImageProcessorPil"):
        return transformers.CLIPImageProcessorPil
    return transformers.CLIPImageProcessor


def load_pretrained_clip(name_or_path: str, dtype: torch.dtype = torch.float32) -> LoadedCLIP:
    """A CLIP model, its tokenizer and image processor, from a preset, hub id or directory."""
    check_preset_kind(name_or_path, "clip")
    if name_or_path in TINY_PRESETS:
        return _tiny_clip(dtype)
    preset = PRESETS.get(name_or_path)
    source = preset.hub_id if preset is not None else name_or_path
    local = Path(source).exists()
    unavailable = None if local else hub_unavailable()
    cache_only = bool(unavailable)
    try:
        with no_loading_bar():
            model = CLIPModel.from_pretrained(source, dtype=dtype, local_files_only=cache_only)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=cache_only)
        processor = image_processor_class().from_pretrained(source, local_files_only=cache_only)
    except (OSError, ValueError) as err:
        where = "a local directory" if local else "a hub id"
        reason = f"{type(err).__name__}: {err}"
        if unavailable:
            reason = f"not in the hub cache, the only place read: {unavailable}"
        raise BackboneError(
            f"cannot load the CLIP model {source!r} ({where}): {reason}\n"
            "  fix: allow hub access (unset HF_HUB_OFFLINE) or pass a directory holding a CLIP "
            "checkpoint (config.json, weights, tokenizer and preprocessor_config.json); no "
            "CLIP weights ship in any package, and tiny-clip is the random test model"
        ) from err
    return LoadedCLIP(model.eval(), tokenizer, processor)


def tiny_clip_tokenizer() -> CLIPTokenizer:
    """A CLIPTokenizer over CLIP's byte alphabet and whole-word merges of TINY_CLIP_WORDS."""
    alphabet = list(bytes_to_unicode().values())
    symbols = [*alphabet, *(symbol + "</w>" for symbol in alphabet)]
    vocab = {symbol: i for i, symbol in enumerate(symbols)}
    ranks: dict[tuple[str, str], int] = {}
    for word in TINY_CLIP_WORDS:
        # New merges rank after all earlier ones, so they never change how an earlier word
        # splits; they join what the earlier merges leave of this word into one token.
        pieces = _bpe([*word[:-1], word[-1] + "</w>"], ranks)
        merged = pieces[0]
        for piece in pieces[1:]:
            ranks.setdefault((merged, piece), len(ranks))
            merged += piece
            vocab.setdefault(merged, len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=sorted(ranks, key=ranks.__getitem__))


def _bpe(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Byte-pair encoding of one word: merge the lowest-ranked adjacent pair until none is left."""
    while len(symbols) > 1:
        pairs = itertools.pairwise(symbols)
        rank, i = min((ranks.get(pair, len(ranks)), i) for i, pair in enumerate(pairs))
        if rank == len(ranks):
            break
        symbols = [*symbols[:i], symbols[i] + symbols[i + 1], *symbols[i + 2 :]]
    return symbols


def _tiny_clip(dtype: torch.dtype) -> LoadedCLIP:
    tokenizer = tiny_clip_tokenizer()
    config = CLIPConfig(
        text_config=tiny_text_config(tokenizer, 77),
        vision_config={**TINY_SIZE, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    model = seeded_init(lambda: CLIPModel(config), dtype)
    model.config.name_or_path = "tiny-clip"
    processor = image_processor_class()(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    return LoadedCLIP(model, tokenizer, processor)
