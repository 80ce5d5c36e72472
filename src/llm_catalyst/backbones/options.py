"""The values of the causal LM's and the encoder's own options, named once.

``config.py`` validates them and the backbones take them; validating a configuration must not
load torch or transformers, so they live here, where both import them (as ``clip_options.py``).
"""

from __future__ import annotations

from typing import Literal

McReduction = Literal["mean", "sum"]
Pooling = Literal["mean", "cls"]
