"""The ``prompt`` section of a run configuration.

Validated when it is read, so that a bad combination (text init without a text, a filler that
the fit policy never uses) fails before any model is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llm_catalyst.errors import ConfigError
from llm_catalyst.prompts.fit import FitPolicy, Metric

InitKind = Literal["random", "text", "tensor"]


class PromptConfig(BaseModel):
    """How long the soft prompt is, how it starts, and how text is fitted to it.

    One fit policy serves a text init and every restart from a proposal, so a text becomes the
    same P rows wherever it comes from.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    length: int = Field(default=10, ge=1, description="soft-prompt slots P")
    init: InitKind = Field(
        "random",
        description="how S starts: `random` (vocabulary rows), `text` (`init_text`, fitted by "
        "`fit`) or `tensor` (`tensor_path`)",
    )
    init_text: str | None = Field(None, description="init `text`: the text S starts from")
    tensor_path: Path | None = Field(
        None, description="init `tensor`: the .safetensors or .pt file S starts from"
    )
    fit: str = Field(
        "truncate+pad_repeat",
        description="how a text is fitted to P slots: `exact`, `truncate`, `pad_repeat`, "
        "`pad_filler`, `pad_current` (the current prompt's tail rows), or `truncate+pad_*`; "
        "the artifact and round records say what was done",
    )
    filler: str | None = Field(None, description="fit `pad_filler`: the text it pads with")
    metric: Metric = Field(
        "cosine", description="projection's distance, a prompt row to a token embedding"
    )

    @model_validator(mode="after")
    def _consistent(self) -> PromptConfig:
        if self.init == "text" and not (self.init_text and self.init_text.strip()):
            raise ValueError("init: text needs a non-empty init_text")
        if self.init == "tensor" and self.tensor_path is None:
            raise ValueError("init: tensor needs tensor_path (a .safetensors or .pt file)")
        if self.init != "text" and self.init_text is not None:
            raise ValueError(
                f"init_text is set but init is {self.init!r}: set init: text or drop init_text"
            )
        if self.init != "tensor" and self.tensor_path is not None:
            raise ValueError(
                f"tensor_path is set but init is {self.init!r}: set init: tensor or drop it"
            )
        try:
            self.fit_policy()
        except ConfigError as err:
            raise ValueError(str(err)) from err
        return self

    def fit_policy(self) -> FitPolicy:
        return FitPolicy.parse(self.fit, filler=self.filler)
