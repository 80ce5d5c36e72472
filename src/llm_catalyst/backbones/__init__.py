"""Frozen backbones: a pre-trained model bound to a task, scored with a soft prompt in front.

The loaders live in ``weights``; they are re-exported here because building a backbone is where
users meet them.
"""

from llm_catalyst.backbones.base import Backbone, Batch
from llm_catalyst.backbones.causal_lm import CausalLMBackbone
from llm_catalyst.backbones.config import BackboneConfig, build_backbone
from llm_catalyst.backbones.encoder_head import EncoderHeadBackbone
from llm_catalyst.weights.presets import (
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
