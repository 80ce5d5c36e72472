"""A client that replays scripted answers and records what it was asked (for tests and demos).

Token counts are word counts, so budgets can be exercised without a tokenizer; a step may
take its time (``delay_s``) as a slow LLM does, to exercise what happens during a call; the
script file format: docs/design.md, "Files handed to the LLM tools, and scripted answers".
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llm_catalyst.errors import ConfigError
from llm_catalyst.jsonio import read_json_items
from llm_catalyst.llm.client import (
    Completion,
    InProcessClient,
    LLMRequest,
    LLMUnavailable,
    TransientLLMError,
    Usage,
)


@dataclass(frozen=True)
class ScriptedStep:
    texts: tuple[str, ...] = ()
    error: str | None = None
    message: str = "scripted failure"
    retry_after: float | None = None
    delay_s: float = 0.0

    @classmethod
    def parse(cls, item: object, where: str) -> ScriptedStep:
        if isinstance(item, str):
            return cls(texts=(item,))
        if isinstance(item, dict):
            delay = item.get("delay_s", 0.0)
            if not isinstance(delay, int | float) or delay < 0:
                raise ConfigError(f"{where}: delay_s must be a number of seconds >= 0")
            if "texts" in item and isinstance(item["texts"], list):
                return cls(texts=tuple(str(t) for t in item["texts"]), delay_s=delay)
            if item.get("error") in ("transient", "unavailable"):
                return cls(
                    error=item["error"],
                    message=str(item.get("message", "scripted failure")),
                    retry_after=item.get("retry_after"),
                    delay_s=delay,
                )
        raise ConfigError(
            f'{where}: a scripted step must be a string, {{"texts": [...]}} or '
            '{"error": "transient" | "unavailable"} (either may add "delay_s": seconds)'
        )


class ScriptedClient(InProcessClient):
    """Answers requests with the scripted steps in order; fails clearly when they run out."""

    backend = "scripted"

    def __init__(
        self, steps: Sequence[ScriptedStep | str], *, name: str = "scripted", chat: bool = True
    ):
        self._steps = [
            s if isinstance(s, ScriptedStep) else ScriptedStep(texts=(s,)) for s in steps
        ]
        self._name = name
        self._chat = chat
        self.requests: list[LLMRequest] = []

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedClient:
        fix = 'each step is "answer text", {"texts": [...]} or {"error": "transient"}'
        items = read_json_items(path, fix)
        return cls(
            [ScriptedStep.parse(item, f"{path}, {where}") for where, item in items],
            name=Path(path).name,
        )

    def complete(self, request: LLMRequest) -> Completion:
        self.requests.append(request)
        index = len(self.requests) - 1
        if index >= len(self._steps):
            raise LLMUnavailable(
                f"scripted client: request {index + 1} but the script holds {len(self._steps)} "
                "step(s); add steps to the script"
            )
        step = self._steps[index]
        time.sleep(step.delay_s)
        if step.error == "transient":
            raise TransientLLMError(step.message, retry_after=step.retry_after)
        if step.error == "unavailable":
            raise LLMUnavailable(step.message)
        prompt_words = sum(len(m["content"].split()) for m in request.messages)
        return Completion(
            texts=step.texts,
            usage=Usage(prompt_words, sum(len(t.split()) for t in step.texts)),
            model=self._name,
            finish_reasons=tuple("stop" for _ in step.texts),
        )
