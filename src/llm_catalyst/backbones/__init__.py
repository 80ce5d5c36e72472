"""Frozen backbones: a pre-trained model bound to a task, scored with a soft prompt in front.

The loaders live in ``weights``; they are re-exported here because building a backbone is where
users meet them. Imported lazily: importing the package (``backbones.config`` for a run's
settings, say) loads no torch until a backbone is built.
"""

from __future__ import annotations

from llm_catalyst.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "llm_catalyst.backbones.base": ("Backbone", "Batch"),
        "llm_catalyst.backbones.causal_lm": ("CausalLMBackbone",),
        "llm_catalyst.backbones.config": ("BackboneConfig", "build_backbone"),
        "llm_catalyst.backbones.encoder_head": ("EncoderHeadBackbone",),
        "llm_catalyst.weights.presets": (
            "PRESETS",
            "load_pretrained_causal_lm",
            "load_pretrained_encoder",
        ),
    },
)
