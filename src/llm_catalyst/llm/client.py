"""The one interface every LLM back-end implements, and the values that cross it.

Back-ends raise ``TransientLLMError`` for failures that may heal and ``LLMUnavailable`` for
failures that will not (bad key, unknown model). Retrying, caching, budgets and logging live
in ``gateway.py`` so that every back-end gets them the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar, Literal, Protocol, TypedDict, runtime_checkable

from llm_catalyst.errors import LLMCatalystError
from llm_catalyst.llm.config import SamplingConfig

Role = Literal["system", "user", "assistant"]


class Message(TypedDict):
    role: Role
    content: str


@dataclass(frozen=True)
class ProposalList:
    """The shape a structured request asks its answer to take: a JSON list of ``min_items``
    to ``max_items`` non-empty strings of at most ``max_chars`` characters each.

    A back-end that constrains its sampling to it (llama.cpp's grammar, a server's
    ``response_format``) cannot wrap the list in fences and prose, nor run on past it, so no
    answer is lost to parsing and no token is spent on text that is thrown away; nor can it
    close the list before ``min_items``, which a small model otherwise does now and then.
    """

    max_items: int
    max_chars: int
    min_items: int = 1

    def json_schema(self) -> dict[str, object]:
        return {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": self.max_chars},
            "minItems": self.min_items,
            "maxItems": self.max_items,
        }


@dataclass(frozen=True)
class LLMRequest:
    """Everything that determines an answer, plus ``sample_index``.

    Two requests that differ only in ``sample_index`` are distinct cache entries: asking the
    same question twice on purpose gets two samples, while re-running a finished experiment
    replays the same answers. ``structure``, when set, asks for a constrained answer; it is part
    of the key, so an answer given without the constraint is never replayed as a constrained one.
    """

    messages: tuple[Message, ...]
    params: SamplingConfig
    sample_index: int = 0
    structure: ProposalList | None = None

    def __post_init__(self) -> None:
        if self.params.seed == "run":
            # A back-end would send the word as the seed; only a Proposer knows the run's seed.
            raise ValueError("a request needs its call's seed, not 'run'; Proposer resolves it")

    def to_json(self) -> dict[str, object]:
        params = self.params.model_dump()
        if not params["dry_multiplier"]:
            # Off, as before the setting existed: the key replays the cache of those versions.
            del params["dry_multiplier"]
        data: dict[str, object] = {
            "messages": [dict(m) for m in self.messages],
            "params": params,
            "sample_index": self.sample_index,
        }
        if self.structure is not None:
            # Only when set: the cache keys of unconstrained requests stay what they were.
            data["structure"] = asdict(self.structure)
        return data


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True)
class Completion:
    """The answer to one request: one text per sample (a server may return fewer than n).

    ``structure_refused`` says why a structured request was answered without its constraint
    (the server refused it), so the call log tells a constrained answer from a parsed one.
    """

    texts: tuple[str, ...]
    usage: Usage
    model: str
    finish_reasons: tuple[str, ...] = ()
    structure_refused: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "texts": list(self.texts),
            "usage": asdict(self.usage),
            "model": self.model,
            "finish_reasons": list(self.finish_reasons),
            "structure_refused": self.structure_refused,
        }

    @classmethod
    def from_json(cls, data: dict) -> Completion:
        return cls(
            texts=tuple(data["texts"]),
            usage=Usage(**data["usage"]),
            model=data["model"],
            finish_reasons=tuple(data.get("finish_reasons", ())),
            structure_refused=data.get("structure_refused", ""),
        )


class LLMUnavailable(LLMCatalystError):
    """The LLM gave no usable answer (after retries, or for a reason retries cannot fix).

    The catalyst loop catches this and skips the round; ``attempts`` says how many tries were
    made. Messages never contain API keys.
    """

    def __init__(self, message: str, *, attempts: int = 1):
        super().__init__(message)
        self.attempts = attempts


class TransientLLMError(LLMCatalystError):
    """A failure that may heal: rate limit, server error, timeout, dropped connection.

    ``retry_after`` is the server's Retry-After in seconds, when it sent one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@runtime_checkable
class LLMClient(Protocol):
    """A back-end that answers chat requests.

    ``identity`` names the back-end and model for cache keys, prices and logs (never a key).
    ``has_chat_template`` is False for base models, which get list-continuation prompting.
    ``supports_structured``: the back-end can constrain an answer to a request's ``structure``;
    the proposer asks for one only then.
    """

    @property
    def identity(self) -> dict[str, str]: ...

    @property
    def has_chat_template(self) -> bool: ...

    @property
    def supports_structured(self) -> bool: ...

    def complete(self, request: LLMRequest) -> Completion: ...


class InProcessClient:
    """What every back-end that runs one named model in this process (``local_hf``,
    ``llama_cpp``, ``scripted``) shares: its identity, its chat-template flag, the plain prompt
    a base model reads and one wording of failure. ``backend`` names the back-end; the subclass
    sets ``_name`` and ``_chat`` when it loads the model. Only llama.cpp constrains its
    answers; ``local_hf`` and ``scripted`` answer a structured request as a plain one."""

    backend: ClassVar[str]
    supports_structured: ClassVar[bool] = False
    _name: str
    _chat: bool

    @property
    def identity(self) -> dict[str, str]:
        return {"backend": self.backend, "model": self._name}

    @property
    def has_chat_template(self) -> bool:
        return self._chat

    def failure(self, detail: object) -> LLMUnavailable:
        """The error a failed generation raises, naming the back-end and model but never the
        prompt (which may hold the user's data)."""
        return LLMUnavailable(f"{self.backend} model {self._name!r} failed: {detail}")

    @staticmethod
    def plain_prompt(messages: tuple[Message, ...] | list[Message]) -> str:
        """Message contents joined by blank lines: what a base model (no chat template) reads."""
        return "\n\n".join(m["content"] for m in messages)
