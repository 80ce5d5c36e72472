"""Frozen backbones: a pre-trained model bound to a task, scored with a soft prompt in front.

Public API:
    Backbone, Batch                       the protocol (base.py)
    BackboneConfig, build_backbone        config.py
    CausalLMBackbone                      label words / option log-likelihood (causal_lm.py)
    EncoderHeadBackbone                   encoder + linear head (encoder_head.py)
    PRESETS, load_pretrained_causal_lm, load_pretrained_encoder    presets.py
"""

from llm_catalyst.backbones.base import Backbone, Batch
from llm_catalyst.backbones.causal_lm import CausalLMBackbone
from llm_catalyst.backbones.config import BackboneConfig, build_backbone
from llm_catalyst.backbones.encoder_head import EncoderHeadBackbone
from llm_catalyst.backbones.presets import (
    PRESETS,
    load_pretrained_causal_lm,
    load_pretrained_encoder,
)

__all__ = [
    "PRESETS",
    "Backbone",
    "BackboneConfig",
    "Batch",
    "CausalLMBackbone",
    "EncoderHeadBackbone",
    "build_backbone",
    "load_pretrained_causal_lm",
    "load_pretrained_encoder",
]
