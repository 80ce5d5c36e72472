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
