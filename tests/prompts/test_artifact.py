from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import shutil
from pathlib import Path

import pytest
import torch
from peft import PeftModel

from llm_catalyst.backbones import BackboneConfig, build_backbone
from llm_catalyst.errors import ArtifactError
from llm_catalyst.prompts import (
    FitPolicy,
    Vocabulary,
    load_prompt,
    project,
    prompt_from_text,
    random_prompt,
    save_prompt,
)
from llm_catalyst.prompts.artifact import METADATA_FILE, PROMPT_FILE
from llm_catalyst.weights import presets


def _trained_prompt(backbone, length=5, seed=0):
    """A random-init prompt moved off the vocabulary rows, as training would leave it."""
    prompt = random_prompt(Vocabulary.of(backbone), length, seed=seed)
    noise = 0.01 * torch.randn(prompt.embeddings.shape, generator=torch.Generator().manual_seed(1))
    return prompt.with_embeddings(prompt.embeddings + noise)


def test_round_trip_keeps_tensor_provenance_and_metadata(tiny_causal_backbone, tmp_path: Path):
    prompt = _trained_prompt(tiny_causal_backbone)
    metrics = {"dev_accuracy": 0.75, "dev_loss": 0.52}
    save_prompt(tmp_path / "a", prompt, tiny_causal_backbone, metrics=metrics, extra={"run": "r1"})
    loaded = load_prompt(tmp_path / "a", tiny_causal_backbone)

    assert torch.equal(loaded.prompt.embeddings, prompt.embeddings)
    assert loaded.prompt.provenance() == prompt.provenance()
    assert loaded.metrics == metrics and loaded.metadata["extra"] == {"run": "r1"}
    assert loaded.backbone_name == "tiny-causal-lm" and loaded.head_state == {}
    backbone_meta = loaded.metadata["backbone"]
    assert backbone_meta["kind"] == "causal_lm"
    assert backbone_meta["vocab_fingerprint"] == tiny_causal_backbone.vocab_fingerprint
    assert (loaded.metadata["prompt"]["length"], loaded.metadata["prompt"]["dim"]) == (5, 32)
    expected = project(prompt.embeddings, Vocabulary.of(tiny_causal_backbone))
    assert loaded.projected_text == expected.text
    assert loaded.metadata["projection"]["distances"] == pytest.approx(expected.distances)
    assert loaded.metadata["versions"]["peft"] == importlib.metadata.version("peft")
    assert not (tmp_path / "a" / "head.safetensors").exists()


def test_text_prompt_records_its_init_text_and_fit(tiny_causal_backbone, tmp_path: Path):
    vocab = Vocabulary.of(tiny_causal_backbone)
    prompt = prompt_from_text("Is this review positive?", vocab, 8, FitPolicy.parse("pad_repeat"))
    save_prompt(tmp_path, prompt, tiny_causal_backbone)
    loaded = load_prompt(tmp_path)
    assert loaded.prompt.init_text == "Is this review positive?"
    assert loaded.prompt.fit == prompt.fit and loaded.prompt.fit["padded"] > 0
    assert loaded.projected_text.startswith("Is this review positive?")


def test_bare_tensor_with_init_text(tiny_causal_backbone, tmp_path: Path):
    rows = _trained_prompt(tiny_causal_backbone).embeddings
    save_prompt(tmp_path, rows, tiny_causal_backbone, init_text="classify")
    loaded = load_prompt(tmp_path, tiny_causal_backbone)
    assert loaded.prompt.init == "tensor" and loaded.prompt.init_text == "classify"
    torch.testing.assert_close(loaded.prompt.embeddings, rows)


def test_peft_loads_the_artifact_and_scores_like_the_backbone(
    tiny_causal_backbone, sentiment_examples, tmp_path: Path
):
    prompt = _trained_prompt(tiny_causal_backbone, length=6)
    save_prompt(tmp_path, prompt, tiny_causal_backbone)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert (config["peft_type"], config["task_type"]) == ("PROMPT_TUNING", "CAUSAL_LM")
    assert (config["num_virtual_tokens"], config["token_dim"]) == (6, 32)

    base = build_backbone(BackboneConfig(model="tiny-causal-lm"), tiny_causal_backbone.task).model
    peft_model = PeftModel.from_pretrained(base, tmp_path)
    torch.testing.assert_close(
        peft_model.prompt_encoder["default"].embedding.weight.detach(), prompt.embeddings
    )
    batch = tiny_causal_backbone.collate(sentiment_examples)
    mask = batch.inputs["attention_mask"]
    with torch.no_grad():
        logits = peft_model(input_ids=batch.inputs["input_ids"], attention_mask=mask).logits
        ours = tiny_causal_backbone.class_scores(prompt.embeddings, batch)
    last = prompt.length + mask.sum(dim=1) - 1
    theirs = logits[torch.arange(len(batch)), last][:, tiny_causal_backbone.label_token_ids]
    torch.testing.assert_close(theirs, ours, rtol=1e-4, atol=1e-5)


def test_encoder_artifact_carries_the_head_and_loads_into_peft(
    sentiment_task, sentiment_examples, tmp_path: Path
):
    trained = build_backbone(BackboneConfig(model="tiny-encoder"), sentiment_task)
    with torch.no_grad():
        for param in trained.head_parameters():
            param.add_(torch.randn(param.shape, generator=torch.Generator().manual_seed(2)))
    prompt = _trained_prompt(trained, length=4)
    save_prompt(tmp_path, prompt, trained)

    fresh = build_backbone(BackboneConfig(model="tiny-encoder"), sentiment_task)
    batch = fresh.collate(sentiment_examples)
    with torch.no_grad():
        assert not torch.allclose(
            fresh.class_scores(prompt.embeddings, batch),
            trained.class_scores(prompt.embeddings, batch),
        )
        loaded = load_prompt(tmp_path, fresh)
        torch.testing.assert_close(
            fresh.class_scores(loaded.prompt.embeddings, batch),
            trained.class_scores(prompt.embeddings, batch),
        )
    assert loaded.metadata["backbone"]["kind"] == "encoder"
    assert set(loaded.head_state) == set(trained.head_state())

    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["task_type"] == "FEATURE_EXTRACTION"
    peft_model = PeftModel.from_pretrained(fresh.model, tmp_path)
    torch.testing.assert_close(
        peft_model.prompt_encoder["default"].embedding.weight.detach(), prompt.embeddings
    )


def test_fingerprint_mismatch_is_refused_naming_both(
    tiny_causal_backbone, tiny_encoder_backbone, tmp_path: Path
):
    save_prompt(tmp_path, _trained_prompt(tiny_causal_backbone), tiny_causal_backbone)
    with pytest.raises(ArtifactError, match=r"'tiny-causal-lm'.*'tiny-encoder'"):
        load_prompt(tmp_path, tiny_encoder_backbone)


def test_saving_checks_its_inputs(tiny_causal_backbone, tiny_encoder_backbone, tmp_path: Path):
    prompt = _trained_prompt(tiny_causal_backbone)
    with pytest.raises(ArtifactError, match="JSON-serialisable"):
        save_prompt(tmp_path, prompt, tiny_causal_backbone, metrics={"t": torch.tensor(1.0)})
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ArtifactError, match="contradicts"):
        save_prompt(tmp_path, prompt, tiny_causal_backbone, init_text="other text")
    with pytest.raises(ArtifactError, match="64-d"):
        save_prompt(tmp_path, torch.randn(3, 64), tiny_causal_backbone)


def test_saving_again_replaces_the_artifact(
    tiny_causal_backbone, tiny_encoder_backbone, tmp_path: Path
):
    save_prompt(tmp_path, _trained_prompt(tiny_encoder_backbone), tiny_encoder_backbone)
    assert (tmp_path / "head.safetensors").is_file()
    second = _trained_prompt(tiny_causal_backbone, length=3, seed=1)
    save_prompt(tmp_path, second, tiny_causal_backbone)
    loaded = load_prompt(tmp_path, tiny_causal_backbone)
    torch.testing.assert_close(loaded.prompt.embeddings, second.embeddings)
    assert loaded.head_state == {} and not (tmp_path / "head.safetensors").exists()


@pytest.fixture(scope="module")
def saved_once(tiny_causal_backbone, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("saved") / "art"
    return save_prompt(directory, _trained_prompt(tiny_causal_backbone), tiny_causal_backbone)


@pytest.fixture
def saved(saved_once: Path, tmp_path: Path) -> Path:
    """A fresh copy of one saved artifact, for a test to damage."""
    return Path(shutil.copytree(saved_once, tmp_path / "art"))


def _edit_metadata(directory: Path, edit) -> None:
    path = directory / METADATA_FILE
    metadata = json.loads(path.read_text())
    edit(metadata)
    path.write_text(json.dumps(metadata))


def test_missing_directory_and_metadata_are_explained(saved: Path, tmp_path: Path):
    with pytest.raises(ArtifactError, match="no such artifact directory"):
        load_prompt(tmp_path / "nowhere")
    (saved / METADATA_FILE).unlink()
    with pytest.raises(ArtifactError, match="plain PEFT adapter"):
        load_prompt(saved)
    with pytest.raises(ArtifactError, match="is missing; it is not a saved prompt"):
        load_prompt(tmp_path)


def test_corrupt_json_names_the_line(saved: Path):
    (saved / METADATA_FILE).write_text('{\n  "format": "llm-catalyst-prompt",\n  oops\n}')
    with pytest.raises(ArtifactError, match=r"llm_catalyst\.json, line 3: not valid JSON"):
        load_prompt(saved)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(format="something-else"), "not an llm-catalyst prompt artifact"),
        (lambda m: m.update(format_version=99), "upgrade llm-catalyst"),
        (lambda m: m.pop("projection"), "lacks"),
        (
            lambda m: m["prompt"].update(length=7),
            r"expected 'prompt_embeddings' of shape \(7, 32\)",
        ),
        (lambda m: m["prompt"].pop("init"), "malformed metadata"),
        (lambda m: m["files"].update(head="head.safetensors"), "head.safetensors is missing"),
    ],
)
def test_inconsistent_metadata_is_refused(saved: Path, edit, message):
    _edit_metadata(saved, edit)
    with pytest.raises(ArtifactError, match=message):
        load_prompt(saved)


def test_damaged_tensor_file_is_refused(saved: Path):
    (saved / PROMPT_FILE).write_bytes((saved / PROMPT_FILE).read_bytes()[:40])
    with pytest.raises(ArtifactError, match="unreadable safetensors"):
        load_prompt(saved)
    (saved / PROMPT_FILE).unlink()
    with pytest.raises(ArtifactError, match="incomplete"):
        load_prompt(saved)


def test_an_offline_preset_is_named_by_its_hub_id_with_its_source(
    sentiment_task, tiny_causal_backbone, tmp_path: Path, monkeypatch
):
    """An offline preset is read from a cache directory: PEFT must name the hub id instead."""
    cached = tmp_path / "cache" / "smollm2-135m-instruct-q4_1-0.1.2"
    tiny_causal_backbone.model.save_pretrained(cached)
    tiny_causal_backbone.tokenizer.save_pretrained(cached)
    smollm2 = dataclasses.replace(presets.PRESETS["smollm2-135m-instruct"], local=lambda: cached)
    monkeypatch.setattr(presets, "PRESETS", {"smollm2-135m-instruct": smollm2})
    backbone = build_backbone(BackboneConfig(model="smollm2-135m-instruct"), sentiment_task)
    save_prompt(tmp_path / "a", _trained_prompt(backbone), backbone)

    config = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    recorded = load_prompt(tmp_path / "a").metadata["backbone"]
    assert recorded["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    source = recorded["weights_source"]
    assert source.startswith("dequantised to float32 from the GGUF file ")
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in source and str(cached) in source


@pytest.mark.slow
def test_the_real_smollm2_artifact_names_the_hub_model(smollm2_backbone, tmp_path: Path):
    save_prompt(tmp_path, _trained_prompt(smollm2_backbone, length=2), smollm2_backbone)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    source = load_prompt(tmp_path).metadata["backbone"]["weights_source"]
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in source
