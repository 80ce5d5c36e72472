from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import save_file

from llm_catalyst.errors import ConfigError
from llm_catalyst.prompts import (
    FitPolicy,
    PromptConfig,
    SoftPrompt,
    Vocabulary,
    init_prompt,
    prompt_from_tensor,
    prompt_from_text,
    random_prompt,
    read_tensor_file,
)
from tests.prompts.word_vocab import SPECIAL, WORDS, word_id, word_tokenizer


def test_random_init_is_seeded_and_distinct(word_vocab):
    first = random_prompt(word_vocab, 6, seed=3)
    assert torch.equal(first.embeddings, random_prompt(word_vocab, 6, seed=3).embeddings)
    assert not torch.equal(first.embeddings, random_prompt(word_vocab, 6, seed=4).embeddings)
    assert first.init_token_ids is not None and len(set(first.init_token_ids)) == 6
    torch.testing.assert_close(first.embeddings, word_vocab.table[list(first.init_token_ids)])
    assert first.provenance()["seed"] == 3


def test_random_init_draws_only_usable_tokens():
    """With everything but five words excluded, a 5-slot prompt must use exactly those five."""
    usable = {word_id(w) for w in ("good", "bad", "movie", "plot", "dull")}
    excluded = frozenset(set(range(len(WORDS))) - usable)
    vocab = Vocabulary(word_tokenizer(), torch.randn(len(WORDS), 4), excluded)
    for seed in range(5):
        prompt = random_prompt(vocab, 5, seed=seed)
        assert set(prompt.init_token_ids or ()) == usable
    with pytest.raises(ConfigError, match="lower the prompt length"):
        random_prompt(vocab, 6, seed=0)


def test_random_init_never_picks_special_tokens(word_vocab):
    special = {word_id(w) for w in SPECIAL}
    for seed in range(20):
        ids = random_prompt(word_vocab, 4, seed=seed).init_token_ids or ()
        assert not special & set(ids)


def test_text_init_records_text_and_fit(word_vocab):
    prompt = prompt_from_text("good movie", word_vocab, 3, FitPolicy.parse("pad_repeat"))
    assert prompt.init == "text" and prompt.init_text == "good movie"
    assert prompt.init_token_ids == tuple(word_id(w) for w in ("good", "movie", "good"))
    assert prompt.fit is not None and prompt.fit["padded"] == 1
    assert (prompt.length, prompt.dim) == (3, 8)


def test_tensor_init_checks_the_shape_and_names_both():
    with pytest.raises(ConfigError, match=r"my\.pt.*\(4, 8\).*\(5, 8\)"):
        prompt_from_tensor(torch.randn(4, 8), 5, 8, source="my.pt")
    prompt = prompt_from_tensor(torch.ones(5, 8, dtype=torch.float64), 5, 8)
    assert prompt.embeddings.dtype == torch.float32 and prompt.init == "tensor"


def test_all_zero_and_non_finite_prompts_are_refused():
    with pytest.raises(ConfigError, match="all zeros"):
        prompt_from_tensor(torch.zeros(3, 4), 3, 4)
    bad = torch.ones(3, 4)
    bad[1, 2] = float("nan")
    with pytest.raises(ConfigError, match="NaN"):
        SoftPrompt(bad, init="tensor")


def test_with_embeddings_keeps_provenance_and_detaches(word_vocab):
    prompt = random_prompt(word_vocab, 3, seed=0)
    trained = torch.nn.Parameter(prompt.embeddings + 1.0)
    updated = prompt.with_embeddings(trained)
    assert updated.provenance() == prompt.provenance()
    assert not updated.embeddings.requires_grad
    torch.testing.assert_close(updated.embeddings, prompt.embeddings + 1.0)


def test_read_tensor_file_formats(tmp_path: Path):
    rows = torch.randn(3, 4)
    save_file({"anything": rows}, str(tmp_path / "one.safetensors"))
    save_file(
        {"prompt_embeddings": rows, "other": rows.clone()},
        str(tmp_path / "adapter_model.safetensors"),
    )
    save_file({"a": rows, "b": rows.clone()}, str(tmp_path / "two.safetensors"))
    torch.save(rows, tmp_path / "rows.pt")
    torch.save({"rows": rows}, tmp_path / "dict.pt")
    (tmp_path / "broken.safetensors").write_bytes(b"not a safetensors file")
    (tmp_path / "rows.npy").write_bytes(b"")
    for good in ("one.safetensors", "adapter_model.safetensors", "rows.pt", "."):
        torch.testing.assert_close(read_tensor_file(tmp_path / good), rows)
    for bad, message in [
        ("two.safetensors", "expected one tensor"),
        ("dict.pt", "not a tensor"),
        ("broken.safetensors", "not a readable safetensors"),
        ("rows.npy", "unknown tensor file type"),
        ("missing.pt", "no such prompt tensor file"),
    ]:
        with pytest.raises(ConfigError, match=message):
            read_tensor_file(tmp_path / bad)


def test_init_prompt_follows_the_config(word_vocab, tmp_path: Path):
    random_cfg = PromptConfig(length=4)
    assert init_prompt(random_cfg, word_vocab, seed=1).init_token_ids == (
        random_prompt(word_vocab, 4, seed=1).init_token_ids
    )
    text_cfg = PromptConfig(
        length=4, init="text", init_text="the plot", fit="pad_filler", filler="."
    )
    text_prompt = init_prompt(text_cfg, word_vocab, seed=1)
    assert text_prompt.init_token_ids == tuple(word_id(w) for w in ("the", "plot", ".", "."))
    rows = torch.randn(4, 8)
    save_file({"prompt": rows}, str(tmp_path / "p.safetensors"))
    tensor_cfg = PromptConfig(length=4, init="tensor", tensor_path=tmp_path / "p.safetensors")
    tensor_prompt = init_prompt(tensor_cfg, word_vocab, seed=1)
    torch.testing.assert_close(tensor_prompt.embeddings, rows)
    assert tensor_prompt.source == str(tmp_path / "p.safetensors")


def test_text_init_with_pad_current_explains_there_is_no_current_prompt(word_vocab):
    cfg = PromptConfig(length=4, init="text", init_text="good", fit="pad_current")
    with pytest.raises(ConfigError, match="at initialisation there is no current prompt"):
        init_prompt(cfg, word_vocab, seed=0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"init": "text"}, "non-empty init_text"),
        ({"init": "text", "init_text": "  "}, "non-empty init_text"),
        ({"init": "tensor"}, "needs tensor_path"),
        ({"init_text": "hello"}, "drop init_text"),
        ({"tensor_path": "p.pt"}, "set init: tensor"),
        ({"fit": "truncate", "filler": "."}, "does not pad"),
        ({"fit": "pad_filler"}, "needs a filler"),
        ({"fit": "shrink"}, "not valid"),
        ({"length": 0}, "greater than or equal to 1"),
        ({"metric": "dot"}, "cosine"),
        ({"lenght": 5}, "Extra inputs"),
    ],
)
def test_prompt_config_refuses_inconsistent_settings(fields, message):
    with pytest.raises(ValidationError, match=message):
        PromptConfig(**fields)


def test_prompt_config_defaults_are_a_working_policy():
    cfg = PromptConfig()
    assert cfg.fit_policy() == FitPolicy(truncate=True, pad="repeat")
    assert (cfg.length, cfg.init, cfg.metric) == (10, "random", "cosine")
