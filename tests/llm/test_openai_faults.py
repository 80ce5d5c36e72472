"""The HTTP client against a loopback server that misbehaves; every fault ends in a clear outcome.

Each test runs a whole proposer round (meta-prompt -> HTTP -> retries -> parsing) and checks
what the catalyst loop would see: proposals, or a skipped round with its reason.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from llm_catalyst.data.tasks import Task
from llm_catalyst.errors import ConfigError
from llm_catalyst.llm.budget import Budget
from llm_catalyst.llm.cache import ResponseCache
from llm_catalyst.llm.calllog import CallLog
from llm_catalyst.llm.config import LLMConfig, RetryConfig
from llm_catalyst.llm.gateway import LLMGateway, build_gateway
from llm_catalyst.llm.openai_compat import OpenAICompatClient
from llm_catalyst.llm.proposer import Proposer, ScoredPrompt
from tests.llm.fake_openai_server import FakeOpenAIServer, Reply, chat_answer

HISTORY = [ScoredPrompt("bad prompt", 0.9, 0.5), ScoredPrompt("Is the review positive?", 0.4, 0.8)]
GOOD = '["Judge the review.", "Say if the film is liked.", "Rate the opinion."]'


def config(server: FakeOpenAIServer, tmp_path: Path, **extra) -> LLMConfig:
    data = {
        "backend": "openai",
        "base_url": server.url,
        "model": "fake-model",
        "timeout_s": 5,
        "retry": {"max_attempts": 3, "initial_backoff_s": 0.01, "max_backoff_s": 0.05},
        "cache": {"enabled": False, "directory": str(tmp_path / "cache")},
        "call_log": str(tmp_path / "calls.jsonl"),
        "proposer": {"num_proposals": 3, "max_words": 12},
    }
    data.update(extra)
    return LLMConfig.model_validate(data)


def proposer(server: FakeOpenAIServer, tmp_path: Path, **extra) -> Proposer:
    cfg = config(server, tmp_path, **extra)
    return Proposer(build_gateway(cfg), cfg)


def test_a_good_answer_gives_proposals_and_sends_the_settings(
    fake_openai, tmp_path, sentiment_task
):
    fake_openai.script(Reply(body=chat_answer(GOOD)))
    result = proposer(fake_openai, tmp_path).propose(sentiment_task, HISTORY, round_index=2)
    assert result.status == "ok"
    assert result.proposals == (
        "Judge the review.",
        "Say if the film is liked.",
        "Rate the opinion.",
    )
    sent = fake_openai.received[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "fake-model"
    assert sent.body["seed"] == 2  # base seed 0 + sample index 2 (round 2, one call per round)
    assert (sent.body["temperature"], sent.body["top_p"], sent.body["n"]) == (0.8, 0.95, 1)
    assert result.usage.total_tokens == 18


def test_unset_options_are_left_out_of_the_request(fake_openai, tmp_path, sentiment_task):
    fake_openai.script(Reply(body=chat_answer(GOOD)))
    p = proposer(fake_openai, tmp_path, sampling={"seed": None, "stop": ["\n\n"]})
    p.propose(sentiment_task, HISTORY, 0)
    body = fake_openai.received[0].body
    assert "seed" not in body
    assert body["stop"] == ["\n\n"]


def test_429_with_retry_after_is_honoured(fake_openai, tmp_path, sentiment_task):
    fake_openai.script(
        Reply(status=429, headers={"Retry-After": "3"}, body={"error": {"message": "slow"}}),
        Reply(body=chat_answer(GOOD)),
    )
    waits: list[float] = []
    cfg = config(fake_openai, tmp_path)
    client = OpenAICompatClient(fake_openai.url, "fake-model", timeout_s=5)
    retry = RetryConfig(
        max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05, max_retry_after_s=10.0
    )
    gateway = LLMGateway(client, retry=retry, sleep=waits.append)
    result = Proposer(gateway, cfg).propose(sentiment_task, HISTORY, 0)
    assert result.status == "ok"
    assert waits == [3.0]
    first, second = fake_openai.received
    assert first.body == second.body  # the retry changed neither the model nor the settings


def test_persistent_500_skips_the_round(fake_openai, tmp_path, sentiment_task):
    fake_openai.script(Reply(status=500, body=b"internal error"))
    result = proposer(fake_openai, tmp_path).propose(sentiment_task, HISTORY, 0)
    assert result.status == "unavailable"
    assert result.skipped
    assert "HTTP 500" in result.reason
    assert "gave up after 3 attempt(s)" in result.reason
    assert len(fake_openai.received) == 3


def test_a_hang_past_the_timeout_skips_the_round(fake_openai, tmp_path, sentiment_task):
    fake_openai.script(Reply(hang_s=30))
    start = time.perf_counter()
    result = proposer(
        fake_openai, tmp_path, timeout_s=0.3, retry={"max_attempts": 2, "initial_backoff_s": 0.0}
    ).propose(sentiment_task, HISTORY, 0)
    assert time.perf_counter() - start < 5
    assert result.status == "unavailable"
    assert "no answer within the timeout" in result.reason
    assert len(fake_openai.received) == 2


def test_malformed_json_skips_the_round(fake_openai, tmp_path, sentiment_task):
    fake_openai.script(Reply(body=b'{"choices": [ this is not json'))
    result = proposer(fake_openai, tmp_path).propose(sentiment_task, HISTORY, 0)
    assert result.status == "unavailable"
    assert "not a valid chat completion" in result.reason


def test_an_answer_without_choices_skips_the_round(fake_openai, tmp_path, sentiment_task):
    fake_openai.script(Reply(body={"id": "x", "object": "chat.completion", "choices": []}))
    result = proposer(fake_openai, tmp_path).propose(sentiment_task, HISTORY, 0)
    assert result.status == "unavailable"
    assert "holds no choices" in result.reason


def test_an_empty_answer_is_an_empty_round(fake_openai, tmp_path, sentiment_task):
    fake_openai.script(Reply(body=chat_answer("")))
    result = proposer(fake_openai, tmp_path).propose(sentiment_task, HISTORY, 0)
    assert result.status == "empty"
    assert result.reason == "no usable proposal in 1 answer(s) (0 rejected)"


def test_a_one_megabyte_answer_is_handled(fake_openai, tmp_path, sentiment_task):
    junk = ("word " * 200 + "\n") * 1050  # about 1 MB, no usable prompt
    assert len(junk) > 1_000_000
    fake_openai.script(Reply(body=chat_answer(junk)))
    start = time.perf_counter()
    result = proposer(fake_openai, tmp_path).propose(sentiment_task, HISTORY, 0)
    assert time.perf_counter() - start < 10
    assert result.status == "empty"
    assert all(r.reason.startswith("too long") for r in result.rejected)
    log = (tmp_path / "calls.jsonl").read_text()
    assert len(log) < 200_000  # the log keeps a bounded excerpt


def test_template_braces_and_shell_text_are_data(
    fake_openai, tmp_path, sentiment_task, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    evil = r'["{{ 7 * 7 }} {sentence} {0}", "$(touch pwned); `touch pwned2`", "{% raw %}x"]'
    fake_openai.script(Reply(body=chat_answer(evil)))
    p = proposer(fake_openai, tmp_path)
    result = p.propose(sentiment_task, HISTORY, 0)
    assert result.proposals == (
        "{{ 7 * 7 }} {sentence} {0}",
        "$(touch pwned); `touch pwned2`",
        "{% raw %}x",
    )
    # The proposals go back into the next meta-prompt verbatim: nothing is evaluated.
    scored = [ScoredPrompt(text, 0.5) for text in result.proposals]
    content = p.render(sentiment_task, scored)[-1]["content"]
    assert '"{{ 7 * 7 }} {sentence} {0}"' in content
    assert "49" not in content
    assert '"{% raw %}x"' in content
    assert sorted(f.name for f in tmp_path.iterdir()) == ["calls.jsonl"]


def test_the_api_key_never_leaks(fake_openai, tmp_path, sentiment_task, monkeypatch):
    secret = "sk-test-" + os.urandom(12).hex()
    monkeypatch.setenv("LLM_TEST_KEY", secret)
    monkeypatch.chdir(tmp_path)
    echo = {"error": {"message": f"bad key {secret}"}}  # a server that echoes the key back
    fake_openai.script(
        Reply(status=500, body=echo),
        Reply(status=429, body=echo, headers={"Retry-After": "0"}),
        Reply(body=chat_answer(GOOD)),
        Reply(status=401, body=echo),
        Reply(status=404, body=echo),
        Reply(hang_s=30),
    )
    cfg = config(
        fake_openai,
        tmp_path,
        api_key_env="LLM_TEST_KEY",
        timeout_s=0.3,
        cache={"enabled": True, "directory": str(tmp_path / "cache")},
        retry={"max_attempts": 3, "initial_backoff_s": 0.0},
    )
    p = Proposer(build_gateway(cfg), cfg)
    outcomes = [p.propose(sentiment_task, HISTORY, r) for r in range(4)]
    assert [o.status for o in outcomes] == ["ok", "unavailable", "unavailable", "unavailable"]
    assert fake_openai.received[0].headers["authorization"] == f"Bearer {secret}"
    assert "LLM_TEST_KEY" in outcomes[1].reason and "not authorised" in outcomes[1].reason
    errors = [o.reason for o in outcomes] + [r.error for r in p.gateway.log.records]
    assert any("***" in e for e in errors)  # the echoed key was scrubbed, not just absent
    assert not any(secret in e for e in errors)
    written = [f for f in tmp_path.rglob("*") if f.is_file()]
    assert any(f.name == "calls.jsonl" for f in written)
    assert any("cache" in f.parts for f in written)
    for f in written:
        assert secret.encode() not in f.read_bytes(), f


def test_missing_key_variable_is_a_clear_config_error(fake_openai, tmp_path, monkeypatch):
    monkeypatch.delenv("LLM_ABSENT_KEY", raising=False)
    cfg = config(fake_openai, tmp_path, api_key_env="LLM_ABSENT_KEY")
    with pytest.raises(ConfigError, match="export LLM_ABSENT_KEY="):
        build_gateway(cfg)


def test_budget_cap_stops_http_calls_and_rounds_go_on(fake_openai, tmp_path, sentiment_task: Task):
    fake_openai.script(Reply(body=chat_answer(GOOD)))
    cfg = config(fake_openai, tmp_path, budget={"max_calls": 2})
    p = Proposer(build_gateway(cfg), cfg)
    rounds = [p.propose(sentiment_task, HISTORY, r) for r in range(4)]
    assert [r.status for r in rounds] == ["ok", "ok", "budget", "budget"]
    assert "max_calls=2" in rounds[2].reason
    assert len(fake_openai.received) == 2
    assert isinstance(p.gateway.budget, Budget)
    assert p.gateway.budget.usage_record().fresh_calls == 2
    assert isinstance(p.gateway.cache, ResponseCache)
    assert isinstance(p.gateway.log, CallLog)
