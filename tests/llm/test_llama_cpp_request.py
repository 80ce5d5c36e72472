"""What the llama.cpp client sends for a request, checked on a stand-in server (no model)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llm_catalyst.llm.client import LLMRequest, ProposalList
from llm_catalyst.llm.config import SamplingConfig
from llm_catalyst.llm.llama_cpp import LlamaCppClient


class _Server:
    """Answers every chat request with one streamed chunk and keeps the bodies it got."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def handle_chat_completions(
        self, body: dict[str, Any], take: Callable[[dict[str, Any]], bool]
    ) -> None:
        self.bodies.append(body)
        take({"choices": [{"delta": {"content": '["x"]'}, "finish_reason": "stop"}]})


def _client() -> tuple[LlamaCppClient, _Server]:
    client = LlamaCppClient.__new__(LlamaCppClient)  # no GGUF loaded
    server = _Server()
    client._name, client._chat, client._server = "stand-in", True, server
    return client, server


def _request(**sampling: Any) -> LLMRequest:
    return LLMRequest(
        ({"role": "user", "content": "Write prompts."},),
        SamplingConfig(seed=3, **sampling),
        structure=ProposalList(max_items=6, max_chars=96, min_items=4),
    )


def test_the_dry_penalty_and_the_list_bounds_reach_llama_cpp() -> None:
    client, server = _client()
    assert client.complete(_request()).texts == ('["x"]',)
    (body,) = server.bodies
    assert body["dry_multiplier"] == 0.8
    assert (body["json_schema"]["minItems"], body["json_schema"]["maxItems"]) == (4, 6)


def test_dry_off_is_not_sent() -> None:
    client, server = _client()
    client.complete(_request(dry_multiplier=0))
    assert "dry_multiplier" not in server.bodies[0]
