"""Structured proposals: the request asks for a JSON list of at most N strings where the back-end
can constrain its answer, and a server that refuses the constraint is asked without it.

The HTTP side runs against the loopback fake server (tests/llm/fake_openai_server.py); the real
llama.cpp back-ends are tested in test_llama_cpp.py and tests/integration/test_llm_server.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from llm_catalyst.llm.cache import ResponseCache
from llm_catalyst.llm.calllog import CallLog
from llm_catalyst.llm.client import LLMRequest, ProposalList
from llm_catalyst.llm.config import LLMConfig, SamplingConfig
from llm_catalyst.llm.gateway import LLMGateway, build_gateway
from llm_catalyst.llm.proposer import Proposer, ScoredPrompt
from llm_catalyst.llm.scripted import ScriptedClient
from tests.llm.fake_openai_server import FakeOpenAIServer, Reply, chat_answer

HISTORY = [ScoredPrompt("bad prompt", 0.9, 0.5), ScoredPrompt("Is the review positive?", 0.4, 0.8)]
GOOD = '["Judge the review.", "Say if the film is liked.", "Rate the opinion."]'
# What an unconstrained model answers: the list in a fence, with prose around it.
FENCED = f"Sure! Here are three prompts:\n```json\n{GOOD}\n```\nHope these help."
REFUSAL = {"error": {"message": "response_format is not supported", "type": "invalid_request"}}


def proposer(server: FakeOpenAIServer, tmp_path: Path, **extra: object) -> Proposer:
    data: dict[str, object] = {
        "backend": "openai",
        "base_url": server.url,
        "model": "fake-model",
        "timeout_s": 5,
        "retry": {"max_attempts": 2, "initial_backoff_s": 0.01, "max_backoff_s": 0.05},
        "cache": {"enabled": False, "directory": str(tmp_path / "cache")},
        "call_log": str(tmp_path / "calls.jsonl"),
        "proposer": {"num_proposals": 3, "max_words": 12},
    }
    data.update(extra)
    cfg = LLMConfig.model_validate(data)
    return Proposer(build_gateway(cfg), cfg)


def logged(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


def test_structured_is_on_by_default() -> None:
    assert LLMConfig().structured is True


def test_the_request_asks_for_a_json_list_of_n_to_the_asked_bounded_strings(
    fake_openai, tmp_path, sentiment_task
) -> None:
    fake_openai.script(Reply(body=chat_answer(GOOD)))
    result = proposer(fake_openai, tmp_path).propose(sentiment_task, HISTORY, round_index=0)
    assert result.status == "ok" and result.asked == 5  # 3 kept, 2 spare
    response_format = fake_openai.received[0].body["response_format"]
    assert response_format["type"] == "json_schema"
    schema = response_format["json_schema"]["schema"]
    assert schema["type"] == "array" and (schema["minItems"], schema["maxItems"]) == (3, 5)
    assert schema["items"] == {"type": "string", "minLength": 1, "maxLength": 12 * 12}
    (record,) = logged(tmp_path)
    assert record["structured"] is True and record["structure_refused"] == ""


def test_structured_off_sends_no_response_format(fake_openai, tmp_path, sentiment_task) -> None:
    fake_openai.script(Reply(body=chat_answer(GOOD)))
    proposer(fake_openai, tmp_path, structured=False).propose(sentiment_task, HISTORY, 0)
    assert "response_format" not in fake_openai.received[0].body
    (record,) = logged(tmp_path)
    assert record["structured"] is False


def test_a_list_continuation_is_not_constrained(fake_openai, tmp_path, sentiment_task) -> None:
    """The list template's answer continues "1." with numbered lines; a JSON list cannot."""
    fake_openai.script(Reply(body=chat_answer(" Judge the review.\n2. Rate the opinion.")))
    p = proposer(fake_openai, tmp_path, proposer={"template": "list", "num_proposals": 2})
    assert p.propose(sentiment_task, HISTORY, 0).status == "ok"
    assert "response_format" not in fake_openai.received[0].body


def test_a_refused_response_format_is_dropped_once_and_for_the_rest_of_the_run(
    fake_openai, tmp_path, sentiment_task
) -> None:
    fake_openai.script(Reply(status=400, body=REFUSAL), Reply(body=chat_answer(FENCED)))
    p = proposer(fake_openai, tmp_path)
    first = p.propose(sentiment_task, HISTORY, round_index=0)
    second = p.propose(sentiment_task, HISTORY, round_index=1)
    # The tolerant parser is the fallback: the fenced list with its prose is still read.
    assert first.proposals == tuple(json.loads(GOOD))
    assert second.status == "ok"
    sent = [r.body for r in fake_openai.received]
    assert len(sent) == 3  # refused, asked again without it, the next round without it at once
    assert "response_format" in sent[0]
    assert "response_format" not in sent[1] and "response_format" not in sent[2]
    assert {k: v for k, v in sent[0].items() if k != "response_format"} == sent[1]
    records = logged(tmp_path)
    assert [r["outcome"] for r in records] == ["ok", "ok"]
    assert all(r["structured"] for r in records)
    assert all("HTTP 400" in r["structure_refused"] for r in records)
    assert all(r["attempts"] == 1 for r in records)


def test_a_400_that_is_not_about_the_format_is_not_remembered_as_a_refusal(
    fake_openai, tmp_path, sentiment_task
) -> None:
    """A 400 that the plain request gets too (a prompt over the context, say) says nothing about
    response_format: the round fails as before and the next call asks for the list again."""
    fake_openai.script(
        Reply(status=400, body=REFUSAL),
        Reply(status=400, body={"error": {"message": "context too long"}}),
        Reply(body=chat_answer(GOOD)),
    )
    p = proposer(fake_openai, tmp_path)
    failed = p.propose(sentiment_task, HISTORY, round_index=0)
    assert failed.status == "unavailable" and "context too long" in failed.reason
    assert p.propose(sentiment_task, HISTORY, round_index=1).status == "ok"
    assert "response_format" in fake_openai.received[2].body


def test_a_backend_that_cannot_constrain_gets_a_plain_request(tmp_path, sentiment_task) -> None:
    """The scripted client (and local_hf) support no structure: their requests, and so the
    cache keys and golden runs of scripted runs, are as before."""
    client = ScriptedClient([GOOD])
    cfg = LLMConfig.model_validate({"backend": "scripted", "script": str(tmp_path / "unused")})
    gateway = LLMGateway(client, log=CallLog())
    assert Proposer(gateway, cfg).propose(sentiment_task, HISTORY, 0).proposals
    (request,) = client.requests
    assert request.structure is None and "structure" not in request.to_json()


def test_an_answer_cached_without_the_constraint_is_not_replayed_as_a_constrained_one(
    tmp_path,
) -> None:
    plain = LLMRequest(
        ({"role": "user", "content": "Write prompts."},),
        SamplingConfig(temperature=0.7, max_tokens=20, seed=3),
    )
    structured = LLMRequest(plain.messages, plain.params, structure=ProposalList(3, 144))
    client = ScriptedClient([FENCED, GOOD])
    gateway = LLMGateway(client, cache=ResponseCache(tmp_path / "cache"), log=CallLog())
    assert gateway.call(plain).completion.texts == (FENCED,)
    answer = gateway.call(structured)
    assert not answer.cache_hit and answer.completion.texts == (GOOD,)
    assert gateway.call(structured).cache_hit and gateway.call(plain).cache_hit
    assert [r.structured for r in gateway.log.records] == [False, True, True, False]
