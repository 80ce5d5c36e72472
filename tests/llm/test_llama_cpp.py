"""The in-process llama.cpp back-end on the real offline GGUFs (SmolLM2, and Qwen2.5-Coder)."""

from __future__ import annotations

import json

import pytest

from llm_catalyst.data.registry import get_task
from llm_catalyst.llm.client import LLMClient, LLMRequest, ProposalList
from llm_catalyst.llm.config import LLMConfig, SamplingConfig
from llm_catalyst.llm.gateway import build_client, build_gateway
from llm_catalyst.llm.llama_cpp import LlamaCppClient
from llm_catalyst.llm.proposer import Proposer, ScoredPrompt

pytestmark = pytest.mark.slow


def test_in_process_llama_cpp_is_seeded_and_samples_n() -> None:
    client = LlamaCppClient("smollm2-135m-instruct", n_ctx=512)
    assert client.has_chat_template
    request = LLMRequest(
        ({"role": "user", "content": "Name a colour."},),
        SamplingConfig(n=2, temperature=1.0, max_tokens=12, seed=4),
    )
    first = client.complete(request)
    assert len(first.texts) == 2 and all(first.texts)
    assert first.usage.completion_tokens > 0
    other = LLMRequest(request.messages, request.params.model_copy(update={"seed": 40}))
    assert client.complete(other).texts != first.texts
    assert client.complete(request).texts == first.texts  # whatever ran in between


def test_clients_of_one_model_share_its_loaded_server_and_answer_alike() -> None:
    """A grid worker builds a client per cell; the model is loaded once per process, and a
    client on the reused server answers a seeded request as the first client did."""
    request = LLMRequest(
        ({"role": "user", "content": "Name a fruit."},),
        SamplingConfig(n=1, temperature=1.0, max_tokens=12, seed=7),
    )
    first = LlamaCppClient("smollm2-135m-instruct", n_ctx=512)
    answer = first.complete(request).texts
    second = LlamaCppClient("smollm2-135m-instruct", n_ctx=512)
    assert second._server is first._server
    assert second.complete(request).texts == answer
    assert LlamaCppClient("smollm2-135m-instruct", n_ctx=256)._server is not first._server


def test_llm_n_threads_reaches_llama_cpp_and_gets_a_server_of_its_own() -> None:
    """The thread count changes llama.cpp's seeded answers (README, "Reproducing a cell"), so a
    configured one must never be served by a server started with another."""
    config = LLMConfig.model_validate(
        {"model": "smollm2-135m-instruct", "n_ctx": 512, "n_threads": 1}
    )
    client = build_client(config)
    assert isinstance(client, LlamaCppClient)
    assert client._server is LlamaCppClient("smollm2-135m-instruct", n_ctx=512, n_threads=1)._server
    assert client._server is not LlamaCppClient("smollm2-135m-instruct", n_ctx=512)._server
    request = LLMRequest(
        ({"role": "user", "content": "Name a fruit."},),
        SamplingConfig(n=1, temperature=1.0, max_tokens=12, seed=7),
    )
    assert client.complete(request).texts[0]


def test_qwen_preset_proposes_through_the_client_protocol(tmp_path) -> None:
    """A real seeded round with the assembled Qwen2.5-Coder GGUF, as the catalyst asks it."""
    config = LLMConfig.model_validate(
        {
            "backend": "llama_cpp",
            "model": "qwen2.5-coder-1.5b-instruct",
            "cache": {"enabled": False},
            "sampling": {"seed": 3, "max_tokens": 120},
        }
    )
    gateway = build_gateway(config)
    assert isinstance(gateway.client, LLMClient) and gateway.client.has_chat_template
    history = [
        ScoredPrompt("ĠFilm Ġawful Ġreviewer Ġfriendship", 0.74, 0.53),
        ScoredPrompt("Was the reviewer happy with this movie?", 0.55, 0.72),
    ]
    proposer = Proposer(gateway, config)
    first = proposer.propose(get_task("sst2"), history, round_index=0)
    assert first.status in ("ok", "partial"), (first.reason, first.raw_answers)
    assert all(len(p.split()) <= config.proposer.max_words for p in first.proposals)
    again = proposer.propose(get_task("sst2"), history, round_index=0)
    assert again.raw_answers == first.raw_answers  # same seed, same text
    other = proposer.propose(get_task("sst2"), history, round_index=1)
    assert other.raw_answers != first.raw_answers


def test_a_structured_request_is_answered_with_a_bounded_json_list() -> None:
    """llama.cpp constrains its sampling to the list: the answer is JSON and nothing else,
    within the request's bounds, still streamed (so a stop can cancel it)."""
    client = LlamaCppClient("smollm2-135m-instruct", n_ctx=512)
    assert client.supports_structured
    request = LLMRequest(
        ({"role": "user", "content": "Write prompts for judging film reviews."},),
        SamplingConfig(n=2, temperature=1.0, max_tokens=120, seed=5),
        structure=ProposalList(max_items=2, max_chars=40),
    )
    answer = client.complete(request)
    assert answer.finish_reasons == ("stop", "stop"), answer.texts
    for text in answer.texts:
        items = json.loads(text)
        assert 1 <= len(items) <= 2
        assert all(isinstance(s, str) and 1 <= len(s) <= 40 for s in items)
    plain = client.complete(LLMRequest(request.messages, request.params))
    assert plain.texts != answer.texts


def test_a_structured_round_is_parsed_as_json(tmp_path) -> None:
    config = LLMConfig.model_validate(
        {
            "model": "smollm2-135m-instruct",
            "n_ctx": 1024,
            "cache": {"enabled": False},
            "call_log": str(tmp_path / "calls.jsonl"),
            "sampling": {"seed": 1, "max_tokens": 120},
            "proposer": {"num_proposals": 3, "max_words": 10},
        }
    )
    history = [ScoredPrompt("Was the reviewer happy with this movie?", 0.55, 0.72)]
    result = Proposer(build_gateway(config), config).propose(get_task("sst2"), history, 0)
    assert result.parse_methods == ("json",), result.raw_answers
    assert 3 <= len(json.loads(result.raw_answers[0])) <= result.asked == 5
    assert '"structured": true' in (tmp_path / "calls.jsonl").read_text()
