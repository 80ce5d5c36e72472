"""The LLM section of a run's configuration, and reading it from YAML.

The default is the local, key-free instructor: Qwen2.5-Coder-1.5B-Instruct in-process through
llama.cpp (SmolLM2-135M-Instruct stays selectable, ``model: smollm2-135m-instruct``). A YAML
file may hold the LLM section at top level or under ``llm:``. An API key is never written in a
config: ``api_key_env`` holds the NAME of the environment variable that holds it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llm_catalyst.config import load_config
from llm_catalyst.userdirs import cache_root

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _plausible_variable_name(value: str) -> bool:
    """Letters, digits and underscores, at most 64, made of words. A key can be spelt in that
    alphabet too (``hf_`` and 34 random letters and digits, ``AKIA`` and 16 capitals and
    digits): a part between underscores of 16 or more characters that mixes lower and upper
    case, or letters and digits, is taken for a key, not a word."""
    if not _ENV_NAME.match(value):
        return False
    for part in value.split("_"):
        cases = any(c.islower() for c in part) + any(c.isupper() for c in part)
        if len(part) >= 16 and (cases == 2 or (cases and any(c.isdigit() for c in part))):
            return False
    return True


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Value(_Section):
    """A section that is also what the gateway, the budget or a request holds at run time:
    frozen, so nothing changes it behind them (a retried call sends what its first try sent)."""

    model_config = ConfigDict(frozen=True)


class SamplingConfig(_Value):
    """Per-call sampling, and what every request carries (the proposer sets each call's seed
    and adds the stop a list continuation needs), so the values a run sends are these. A
    request holds its call's own seed, never ``run``.
    """

    n: int = Field(
        1,
        ge=1,
        description="answers per call (llama.cpp answers one per call, so n answers are n "
        "calls seeded seed, seed + 1, ...)",
    )
    temperature: float = Field(0.8, ge=0, description="sampling temperature; 0: greedy")
    top_p: float = Field(0.95, gt=0, le=1, description="nucleus sampling's probability mass")
    max_tokens: int = Field(200, ge=1, description="answer tokens per call at most")
    seed: int | Literal["run"] | None = Field(
        0,
        description="base seed, offset by each call's index in the run: a number gives every "
        "run the same base (0: what the pre-registered experiment ran with), `run` takes "
        "`data.seed` (so a grid's seeds also vary the LLM's sampling), null leaves calls "
        "unseeded",
    )
    stop: tuple[str, ...] = Field(
        (), description="stop strings of every call (the proposer adds a list continuation's)"
    )
    dry_multiplier: float = Field(
        0.8,
        ge=0,
        description="llama_cpp: the DRY (don't repeat yourself) penalty on a token that would "
        "extend a sequence already in the context, so a small model neither copies a prompt "
        "the meta-prompt shows nor writes one item twice; 0: off, as before this setting "
        "(the request's cache key is then what it was). Other back-ends ignore it",
    )


class RetryConfig(_Value):
    """Bounded retries: exponential backoff, at least what the server's Retry-After asks."""

    max_attempts: int = Field(4, ge=1, le=20, description="tries of one call, the first included")
    initial_backoff_s: float = Field(
        1.0, ge=0, description="seconds before the first retry, doubled for each next one"
    )
    max_backoff_s: float = Field(
        30.0, ge=0, description="the longest backoff in seconds (Retry-After may ask for more)"
    )
    max_retry_after_s: float = Field(
        120.0,
        ge=0,
        description="give up at once when the server's Retry-After asks for longer (seconds)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> RetryConfig:
        if self.max_backoff_s < self.initial_backoff_s:
            raise ValueError("max_backoff_s is below initial_backoff_s; raise max_backoff_s")
        return self


class CacheConfig(_Section):
    """Answers kept on disk, so a rerun or a resumed run asks the LLM nothing twice."""

    enabled: bool = Field(
        True,
        description="reuse the answer of an identical earlier request (the key is every "
        "request field and the sample index)",
    )
    directory: Path | None = Field(
        None,
        description="the cache's folder; null: `llm` in the user cache (`$LLM_CATALYST_CACHE`)",
    )

    def resolved_directory(self) -> Path:
        return self.directory or cache_root() / "llm"


class BudgetConfig(_Value):
    """Hard caps of one run, checked before each call against its worst case, so a run never
    spends more than allowed; a spent budget skips the round and training goes on."""

    max_calls: int | None = Field(None, ge=0, description="LLM calls at most; null: no cap")
    max_tokens: int | None = Field(
        None, ge=0, description="prompt and answer tokens at most; null: no cap"
    )
    max_cost_usd: float | None = Field(
        None,
        ge=0,
        description="US dollars at most (backend `openai` needs a `prices` entry for the "
        "model); null: no cap",
    )


class PriceConfig(_Value):
    """US dollars per million tokens."""

    input_per_mtok: float = Field(0.0, ge=0, description="US dollars per million prompt tokens")
    output_per_mtok: float = Field(0.0, ge=0, description="US dollars per million answer tokens")


Ingredient = Literal["usage", "exemplars", "trajectory", "own_history", "errors"]
INGREDIENTS: tuple[Ingredient, ...] = ("usage", "exemplars", "trajectory", "own_history", "errors")
# Built-in templates written for the trajectory alone; the others need "informed" or a user file.
_TRAJECTORY_ONLY = ("auto", "catalyst", "paper", "list")


class ProposerConfig(_Section):
    """What is asked of the LLM each round.

    Only template ``informed`` and a user's template show more than the trajectory, so the
    other ingredients need one of them (checked when read).
    """

    num_proposals: int = Field(4, ge=1, le=50, description="proposals a round keeps, C")
    spare: int = Field(
        2,
        ge=0,
        le=20,
        description="proposals asked for beyond `num_proposals`; the first `num_proposals` "
        "usable ones are kept. A small LLM copies a shown prompt or repeats itself now and "
        "then, which would leave a round short (0: ask for exactly `num_proposals`)",
    )
    max_words: Annotated[int, Field(ge=1, le=500)] | Literal["fit"] = Field(
        20,
        description="a proposal's word cap, asked for and enforced: a number, or `fit` (as many "
        "words as P tokens hold for the backbone's tokenizer)",
    )
    template: str = Field(
        "auto",
        description="the meta-prompt: `auto` (`catalyst` for chat models, `list` continuation "
        "for base models), `catalyst`, `paper` (the reference wording), `list`, `informed`, or "
        "the path of a Jinja file",
    )
    calls_per_round: int = Field(
        1,
        ge=1,
        le=20,
        description="calls a round may make while fewer than `num_proposals` valid texts have "
        "been parsed",
    )
    max_history: int = Field(
        20, ge=1, description="scored texts the `trajectory` and `own_history` ingredients show"
    )
    ingredients: list[Ingredient] = Field(
        default_factory=lambda: ["trajectory"],
        description='what the meta-prompt shows (README, "Meta-prompt ingredients"): `usage`, '
        "`exemplars`, `trajectory`, `own_history`, `errors`",
    )
    exemplars: int = Field(
        4, ge=1, le=64, description="labelled train examples the `exemplars` ingredient shows"
    )
    errors: int = Field(
        4, ge=1, le=64, description="train examples S gets wrong that `errors` shows at most"
    )
    errors_scanned: int = Field(
        64, ge=1, description="train examples S is scored on per round to find its errors"
    )

    @field_validator("ingredients")
    @classmethod
    def _distinct(cls, value: list[Ingredient]) -> list[Ingredient]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"ingredient(s) {', '.join(repeated)} listed twice; list each once")
        return value

    @model_validator(mode="after")
    def _template_shows_them(self) -> ProposerConfig:
        if self.template in _TRAJECTORY_ONLY and self.ingredients != ["trajectory"]:
            raise ValueError(
                f"template {self.template!r} shows the trajectory alone, but ingredients are "
                f"{self.ingredients}: use template 'informed' (or your own template file) for "
                "other ingredients, or leave ingredients at [trajectory]"
            )
        return self


class LLMConfig(_Section):
    """The instructor: which LLM, how it is called, what it may spend and what it is asked.
    The back-end decides which keys apply (each says which); the rest apply to all."""

    backend: Literal["local_hf", "openai", "llama_cpp", "scripted"] = Field(
        "llama_cpp",
        description="`llama_cpp` (a GGUF in-process), `openai` (any OpenAI-compatible server), "
        "`local_hf` (transformers, in-process) or `scripted` (replays a file of responses)",
    )
    model: str = Field(
        "qwen2.5-coder-1.5b-instruct",
        description="llama_cpp: a preset name or a .gguf path; openai: the server's model "
        "name; local_hf: a backbone preset, hub id or local directory",
    )
    base_url: str | None = Field(
        None,
        description="openai (required): the server, e.g. `https://api.openai.com/v1`, or "
        "`http://127.0.0.1:8000/v1` for a local one",
    )
    api_key_env: str | None = Field(
        None,
        description="the NAME of the environment variable that holds the API key, never the "
        "key itself; null: a server without keys",
    )
    timeout_s: float = Field(60.0, gt=0, description="openai: seconds one request may take")
    script: Path | None = Field(
        None, description="scripted (required): the file of responses to replay"
    )
    n_ctx: int = Field(2048, ge=256, description="llama_cpp: the context window in tokens")
    n_threads: int | None = Field(
        None,
        ge=1,
        description="llama_cpp: the server's threads (null: in a grid worker its share of the "
        "cores, the torch threads it was given; elsewhere llama.cpp's own choice, the "
        "machine's cores). Its seeded answers depend on it, and grid workers that together "
        "exceed the cores slow every call many times over",
    )
    structured: bool = Field(
        True,
        description="constrain each answer to a JSON list of `num_proposals` to `num_proposals` "
        "+ `spare` strings "
        "where the back-end can (llama_cpp: its grammar; openai: `response_format`, and a "
        "server that refuses it is asked again without it, then never again in the run), so "
        "no answer is lost to parsing; local_hf, scripted and list continuations are never "
        "constrained, and the parser reads whatever comes back",
    )
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    prices: dict[str, PriceConfig] = Field(
        default_factory=dict,
        description="openai: the price of each model, by the model's name (local back-ends "
        "are free)",
    )
    proposer: ProposerConfig = Field(default_factory=ProposerConfig)
    call_log: Path | None = Field(
        None,
        description="a JSONL file every call is appended to (request, response, latency, "
        "tokens, cost, cache hit); null: none. A run logs its calls in its run directory",
    )

    @field_validator("api_key_env")
    @classmethod
    def _is_a_name(cls, value: str | None) -> str | None:
        if value is not None and not _plausible_variable_name(value):
            # Never echo the value: it may be the key itself, pasted in by mistake.
            raise ValueError(
                "must be the NAME of an environment variable (words of letters and digits "
                "joined by underscores, at most 64 characters), e.g. OPENAI_API_KEY, never the "
                "key itself"
            )
        return value

    @model_validator(mode="after")
    def _backend_needs(self) -> LLMConfig:
        if self.backend == "openai" and not self.base_url:
            raise ValueError(
                "backend 'openai' needs base_url, e.g. https://api.openai.com/v1 or "
                "http://127.0.0.1:8000/v1 for a local server"
            )
        if self.backend == "scripted" and self.script is None:
            raise ValueError("backend 'scripted' needs script: the file of responses to replay")
        if (
            self.budget.max_cost_usd is not None
            and self.backend == "openai"
            and not self.price_known
        ):
            raise ValueError(
                f"budget.max_cost_usd is set but prices has no entry for model {self.model!r}; "
                f"add prices: {{{self.model}: {{input_per_mtok: ..., output_per_mtok: ...}}}}"
            )
        return self

    @property
    def price_known(self) -> bool:
        return self.backend != "openai" or self.model in self.prices

    def price(self) -> PriceConfig:
        """Local back-ends are free; a remote model without a price entry counts as free too
        (``price_known`` is False and the run record says so)."""
        entry = self.prices.get(self.model)
        if self.backend != "openai" or entry is None:
            return PriceConfig()
        return entry


def load_llm_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> LLMConfig:
    """An LLM config from YAML (top level or under ``llm:``; the defaults without a file),
    with dotted overrides relative to the LLM section."""
    return load_config(LLMConfig, path, overrides, section="llm")
