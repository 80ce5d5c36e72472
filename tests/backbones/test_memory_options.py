"""Memory options of the backbone config: gradient checkpointing, dtype auto, device maps."""

from __future__ import annotations

import pytest
import torch

from llm_catalyst.backbones import BackboneConfig, build_backbone
from llm_catalyst.errors import ConfigError
from llm_catalyst.training.config import TrainConfig
from llm_catalyst.training.trainer import PromptTrainer


def _prompt_gradient(backbone, examples) -> torch.Tensor:
    """d(mean cross-entropy)/d(prompt) on ``examples``, as a training step computes it."""
    generator = torch.Generator().manual_seed(0)
    rows = torch.randint(0, 1000, (4,), generator=generator)
    prompt = backbone.embedding_table[rows].clone().requires_grad_(True)
    backbone.train(True)
    batch = backbone.collate(examples).to(backbone.device)
    loss = torch.nn.functional.cross_entropy(backbone.class_scores(prompt, batch), batch.labels)
    loss.backward()
    backbone.train(False)
    return prompt.grad


def _count_calls(module: torch.nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize(
    ("model", "settings", "layer", "tolerance"),
    [
        ("tiny-causal-lm", {"packing": False}, "model.layers.1.self_attn", 1e-6),
        (
            "tiny-causal-lm",
            {},
            "model.layers.1.self_attn",
            1e-5,
        ),  # packed layout without checkpoints
        ("tiny-encoder", {"head_dropout": 0.0}, "encoder.layer.1.attention", 1e-6),
    ],
)
def test_checkpointing_recomputes_layers_and_keeps_gradients(
    model, settings, layer, tolerance, sentiment_task, sentiment_examples
):
    plain = build_backbone(BackboneConfig(model=model, **settings), sentiment_task)
    config = BackboneConfig(model=model, gradient_checkpointing=True, **settings)
    checkpointed = build_backbone(config, sentiment_task)
    calls = _count_calls(checkpointed.model.get_submodule(layer))
    expected = _prompt_gradient(plain, sentiment_examples)
    gradient = _prompt_gradient(checkpointed, sentiment_examples)
    assert calls[0] == 2  # once forward, once again in the backward pass
    assert torch.allclose(gradient, expected, atol=tolerance, rtol=0)
    assert gradient.abs().sum() > 0
    assert not checkpointed.model.get_submodule(layer).training  # back to eval afterwards


def test_checkpointing_leaves_evaluation_alone(sentiment_task, sentiment_examples):
    plain = build_backbone(BackboneConfig(model="tiny-causal-lm"), sentiment_task)
    config = BackboneConfig(model="tiny-causal-lm", gradient_checkpointing=True)
    checkpointed = build_backbone(config, sentiment_task)
    batch = plain.collate(sentiment_examples)
    prompt = plain.embedding_table[:3]
    with torch.no_grad():
        assert torch.equal(
            plain.class_scores(prompt, batch), checkpointed.class_scores(prompt, batch)
        )


def test_dtype_auto_is_float32_on_a_cpu_and_the_prompt_trains_in_float32(
    sentiment_task, sentiment_examples
):
    assert BackboneConfig(dtype="auto", device="cpu").resolved_dtype() == torch.float32
    half = build_backbone(BackboneConfig(model="tiny-causal-lm", dtype="bfloat16"), sentiment_task)
    prompt = half.embedding_table[:4].clone()
    config = TrainConfig(steps=2, batch_size=4, lr=0.05, progress=False)
    trainer = PromptTrainer(half, prompt, sentiment_examples, config, seed=0)
    for _ in range(2):
        trainer.train_step()
    assert half.embedding_table.dtype == torch.bfloat16
    assert trainer.prompt.dtype == torch.float32


def test_a_device_map_offloads_a_layer_to_disk_with_the_same_scores(
    tmp_path, sentiment_task, sentiment_examples
):
    plain = build_backbone(BackboneConfig(model="tiny-causal-lm"), sentiment_task)
    device_map = {
        "model.embed_tokens": "cpu",
        "model.layers.0": "cpu",
        "model.layers.1": "disk",
        "model.norm": "cpu",
        "model.rotary_emb": "cpu",
        "lm_head": "cpu",
    }
    config = BackboneConfig(model="tiny-causal-lm", device_map=device_map, offload_folder=tmp_path)
    offloaded = build_backbone(config, sentiment_task)
    weight = offloaded.model.get_submodule("model.layers.1.mlp.up_proj").weight
    assert weight.device.type == "meta"  # not resident: read from disk when the layer runs
    assert list(tmp_path.iterdir())
    batch = plain.collate(sentiment_examples)
    prompt = plain.embedding_table[:3]
    with torch.no_grad():
        expected = plain.class_scores(prompt, batch)
        assert torch.allclose(offloaded.class_scores(prompt, batch), expected, atol=1e-6)
    expected_gradient = _prompt_gradient(plain, sentiment_examples)
    gradient = _prompt_gradient(offloaded, sentiment_examples)
    assert torch.allclose(gradient, expected_gradient, atol=1e-6)


def test_device_maps_that_cannot_work_are_refused(tmp_path, sentiment_task):
    on_disk = {"model.layers.1": "disk", "model.embed_tokens": "cpu", "model.layers.0": "cpu"}
    on_disk |= {"model.norm": "cpu", "model.rotary_emb": "cpu", "lm_head": "cpu"}
    with pytest.raises(ConfigError, match="offload_folder is not set"):
        build_backbone(BackboneConfig(model="tiny-causal-lm", device_map=on_disk), sentiment_task)
    embedding_on_disk = {**on_disk, "model.embed_tokens": "disk"}
    config = BackboneConfig(
        model="tiny-causal-lm", device_map=embedding_on_disk, offload_folder=tmp_path
    )
    with pytest.raises(ConfigError, match="offloads the input embedding"):
        build_backbone(config, sentiment_task)
    with pytest.raises(ConfigError, match="does not fit"):
        build_backbone(
            BackboneConfig(model="tiny-causal-lm", device_map={"lm_head": "cpu"}), sentiment_task
        )
