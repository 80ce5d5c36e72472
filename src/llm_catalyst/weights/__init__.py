"""Locating, assembling, verifying and caching model weights, below both backbones and LLMs.

Submodules are imported directly (``weights.gguf`` needs no torch; ``weights.presets`` and
``weights.clip`` load transformers models).
"""
