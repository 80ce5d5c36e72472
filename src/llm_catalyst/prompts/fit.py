"""The names a run's configuration gives projection: the distance metric and the fit policy.

Kept apart from ``projection`` (which works on tensors) so that validating a configuration loads
no torch; ``projection`` imports them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llm_catalyst.errors import ConfigError

Metric = Literal["cosine", "l2"]
PadMode = Literal["repeat", "filler", "current"]

METRICS: tuple[Metric, ...] = ("cosine", "l2")

_PAD_PARTS: dict[str, PadMode] = {
    "pad_repeat": "repeat",
    "pad_filler": "filler",
    "pad_current": "current",
}


@dataclass(frozen=True)
class FitPolicy:
    """How a tokenised text is fitted to P slots. Nothing is dropped or repeated unless asked.

    ``truncate``: a longer text keeps its first P tokens (otherwise: error).
    ``pad``: a shorter text is padded by repeating its own tokens cyclically (``"repeat"``),
    with the tokens of ``filler`` (``"filler"``), or with the tail rows of the current prompt
    (``"current"``); ``None`` makes a shorter text an error.
    Names: ``"exact"``, ``"truncate"``, ``"pad_repeat"``, ``"pad_filler"``, ``"pad_current"``
    and combinations such as ``"truncate+pad_filler"``.
    """

    truncate: bool = False
    pad: PadMode | None = None
    filler: str | None = None

    def __post_init__(self) -> None:
        if self.pad == "filler" and not (self.filler and self.filler.strip()):
            raise ConfigError("fit policy pad_filler needs a filler text (e.g. filler: '.')")
        if self.filler is not None and self.pad != "filler":
            raise ConfigError(
                f"a filler ({self.filler!r}) is set but fit policy {self.name!r} does not pad "
                "with it: add pad_filler to the policy or remove the filler"
            )

    @classmethod
    def parse(cls, spec: str, filler: str | None = None) -> FitPolicy:
        parts = [p.strip() for p in spec.split("+") if p.strip()]
        known = ["exact", "truncate", *_PAD_PARTS]
        unknown = [p for p in parts if p not in known]
        pads = [p for p in parts if p in _PAD_PARTS]
        if not parts or unknown or len(pads) > 1 or ("exact" in parts and len(parts) > 1):
            raise ConfigError(
                f"fit policy {spec!r} is not valid: use 'exact', or 'truncate' and/or one of "
                f"{list(_PAD_PARTS)} joined by '+', e.g. 'truncate+pad_repeat'"
            )
        return cls(
            truncate="truncate" in parts,
            pad=_PAD_PARTS[pads[0]] if pads else None,
            filler=filler,
        )

    @property
    def name(self) -> str:
        parts = (["truncate"] if self.truncate else []) + ([f"pad_{self.pad}"] if self.pad else [])
        return "+".join(parts) or "exact"
