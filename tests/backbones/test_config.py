"""BackboneConfig: validation, the kind a preset implies, and the backbone it builds."""

from __future__ import annotations

import pydantic
import pytest
import torch

from llm_catalyst.backbones import (
    BackboneConfig,
    CausalLMBackbone,
    EncoderHeadBackbone,
    build_backbone,
)


def test_config_validation():
    with pytest.raises(pydantic.ValidationError, match="pooling"):
        BackboneConfig(pooling="max")
    with pytest.raises(pydantic.ValidationError, match="unknown device"):
        BackboneConfig(device="gpu0")
    with pytest.raises(pydantic.ValidationError, match="extra"):
        BackboneConfig(modle="tiny-causal-lm")
    assert BackboneConfig(model="all-minilm-l6-v2").resolved_kind() == "encoder"
    assert BackboneConfig(model="tiny-encoder").resolved_kind() == "encoder"
    assert BackboneConfig(model="some/hub-id").resolved_kind() == "causal_lm"


# What torch.device accepts and refuses, beside strings it would read differently.
DEVICES = [
    "cpu",
    "cuda",
    "cuda:0",
    "cuda:12",
    "cpu:0",
    "mps",
    "meta",
    "xpu:3",
    "hpu",
    "xla:1",
    "cuda:2147483647",
    "cuda:2147483648",
    "cuda:00",
    "cuda:01",
    "cuda:-1",
    "cuda:",
    "cuda:+1",
    "CUDA",
    "gpu",
    "gpu0",
    "npu",
    "cuda:0:1",
    "cuda:a",
    "cuda:\u0663",
    "",
    " cuda",
    "cuda ",
    "cuda: 0",
]


@pytest.mark.parametrize("device", DEVICES)
def test_a_device_is_checked_as_torch_reads_it_without_importing_torch(device):
    """The check is torch-free (validating a config loads no torch) but agrees with torch."""
    try:
        torch.device(device)
    except RuntimeError:
        with pytest.raises(pydantic.ValidationError, match="unknown device"):
            BackboneConfig(device=device)
    else:
        assert BackboneConfig(device=device).device == device


def test_build_backbone_binds_the_task_and_freezes(sentiment_task, copa_task):
    causal = build_backbone(BackboneConfig(model="tiny-causal-lm", dtype="bfloat16"), copa_task)
    assert isinstance(causal, CausalLMBackbone) and causal.task is copa_task
    assert causal.embedding_table.dtype == torch.bfloat16
    encoder = build_backbone(BackboneConfig(model="tiny-encoder", pooling="cls"), sentiment_task)
    assert isinstance(encoder, EncoderHeadBackbone) and encoder.pooling == "cls"
    assert causal.packing
    unpacked = build_backbone(BackboneConfig(model="tiny-causal-lm", packing=False), copa_task)
    assert not unpacked.packing
    for backbone in (causal, encoder):
        assert not backbone.model.training
        assert not any(p.requires_grad for p in backbone.model.parameters())
