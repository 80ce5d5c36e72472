"""Cache semantics, bounded retries, budget caps and the call log, through the gateway."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from llm_catalyst.llm.budget import Budget, BudgetExhausted, describe_plan
from llm_catalyst.llm.cache import ResponseCache, request_key
from llm_catalyst.llm.calllog import MAX_LOGGED_CHARS, CallLog
from llm_catalyst.llm.client import LLMRequest, LLMUnavailable, ProposalList, Usage
from llm_catalyst.llm.config import BudgetConfig, PriceConfig, RetryConfig, SamplingConfig
from llm_catalyst.llm.gateway import LLMGateway
from llm_catalyst.llm.scripted import ScriptedClient, ScriptedStep

REQUEST = LLMRequest(
    ({"role": "user", "content": "Write prompts."},),
    SamplingConfig(temperature=0.7, max_tokens=20, seed=3),
)


def gateway(client, tmp_path, *, cache=True, **kwargs) -> LLMGateway:
    return LLMGateway(
        client,
        cache=ResponseCache(tmp_path / "cache", enabled=cache),
        log=CallLog(tmp_path / "calls.jsonl"),
        sleep=kwargs.pop("sleep", lambda s: None),
        **kwargs,
    )


def log_lines(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


def test_identical_request_replays_from_cache(tmp_path) -> None:
    client = ScriptedClient(["first answer", "second answer"])
    gw = gateway(client, tmp_path)
    a = gw.call(REQUEST)
    b = gw.call(REQUEST)
    assert (a.completion.texts, a.cache_hit) == (("first answer",), False)
    assert (b.completion.texts, b.cache_hit) == (("first answer",), True)
    assert len(client.requests) == 1
    assert [r["outcome"] for r in log_lines(tmp_path)] == ["ok", "cache_hit"]
    assert gw.budget.usage_record().fresh_calls == 1
    assert gw.budget.usage_record().cache_hits == 1


def test_cache_survives_a_new_process_like_reopen(tmp_path) -> None:
    gateway(ScriptedClient(["stored"]), tmp_path).call(REQUEST)
    fresh = ScriptedClient([])
    result = gateway(fresh, tmp_path).call(REQUEST)
    assert result.completion.texts == ("stored",)
    assert fresh.requests == []


def test_other_sample_index_is_a_new_sample(tmp_path) -> None:
    client = ScriptedClient(["sample 0", "sample 1"])
    gw = gateway(client, tmp_path)
    gw.call(REQUEST)
    other = gw.call(replace(REQUEST, sample_index=1))
    assert other.completion.texts == ("sample 1",)
    assert not other.cache_hit
    assert len(client.requests) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"params": SamplingConfig(temperature=0.9, max_tokens=20, seed=3)},
        {"params": SamplingConfig(temperature=0.7, max_tokens=20, seed=4)},
        {"params": SamplingConfig(temperature=0.7, max_tokens=21, seed=3)},
        {"messages": ({"role": "user", "content": "Write prompts!"},)},
        {"params": SamplingConfig(temperature=0.7, max_tokens=20, seed=3, dry_multiplier=0)},
        {"structure": ProposalList(max_items=4, max_chars=240)},
    ],
)
def test_every_request_field_is_in_the_key(change) -> None:
    identity = {"backend": "scripted", "model": "m"}
    assert request_key(identity, REQUEST) != request_key(identity, replace(REQUEST, **change))


def test_the_structure_bounds_are_in_the_key() -> None:
    identity = {"backend": "scripted", "model": "m"}
    keys = {
        request_key(identity, replace(REQUEST, structure=structure))
        for structure in (
            ProposalList(max_items=6, max_chars=240),
            ProposalList(max_items=6, max_chars=240, min_items=4),
        )
    }
    assert len(keys) == 2


def test_a_request_without_dry_keeps_its_key_of_before_the_setting() -> None:
    """Sampling without the DRY penalty (``dry_multiplier: 0``) is how requests were sampled
    before the setting, and the key is the one they had then (computed with that code), so
    their cached answers replay."""
    off = replace(REQUEST, params=REQUEST.params.model_copy(update={"dry_multiplier": 0.0}))
    assert "dry_multiplier" not in off.to_json()["params"]
    assert request_key({"backend": "scripted", "model": "m"}, off) == (
        "6a46032a7ad376ad5d29d2b3d1a6643385e4d664908b8cd8f29fc9791c59d92e"
    )


def test_model_is_in_the_key() -> None:
    a = request_key({"backend": "openai", "model": "a"}, REQUEST)
    assert a != request_key({"backend": "openai", "model": "b"}, REQUEST)


def test_cache_off_means_off(tmp_path) -> None:
    client = ScriptedClient(["one", "two"])
    gw = gateway(client, tmp_path, cache=False)
    assert gw.call(REQUEST).completion.texts == ("one",)
    assert gw.call(REQUEST).completion.texts == ("two",)
    assert not (tmp_path / "cache").exists()
    assert [r["cache_hit"] for r in log_lines(tmp_path)] == [False, False]


def test_transient_errors_are_retried_with_the_same_request(tmp_path) -> None:
    waits: list[float] = []
    client = ScriptedClient(
        [
            ScriptedStep(error="transient", message="HTTP 500"),
            ScriptedStep(error="transient", message="HTTP 429", retry_after=7.0),
            "finally",
        ]
    )
    gw = gateway(
        client,
        tmp_path,
        sleep=waits.append,
        retry=RetryConfig(max_attempts=4, initial_backoff_s=1.0, max_backoff_s=30),
    )
    result = gw.call(REQUEST)
    assert result.completion.texts == ("finally",)
    assert result.attempts == 3
    assert waits == [1.0, 7.0]  # exponential backoff, then the server's Retry-After
    assert all(r == REQUEST for r in client.requests)
    assert log_lines(tmp_path)[-1]["attempts"] == 3


def test_backoff_grows_and_is_capped(tmp_path) -> None:
    waits: list[float] = []
    client = ScriptedClient([ScriptedStep(error="transient")] * 5)
    gw = gateway(
        client,
        tmp_path,
        sleep=waits.append,
        retry=RetryConfig(max_attempts=5, initial_backoff_s=1.0, max_backoff_s=3.0),
    )
    with pytest.raises(LLMUnavailable, match="gave up after 5 attempt") as info:
        gw.call(REQUEST)
    assert info.value.attempts == 5
    assert waits == [1.0, 2.0, 3.0, 3.0]
    assert len(client.requests) == 5
    assert log_lines(tmp_path)[-1]["outcome"] == "unavailable"


def test_retry_after_beyond_the_limit_gives_up_at_once(tmp_path) -> None:
    waits: list[float] = []
    client = ScriptedClient([ScriptedStep(error="transient", retry_after=3600), "never"])
    gw = gateway(client, tmp_path, sleep=waits.append, retry=RetryConfig(max_retry_after_s=60))
    with pytest.raises(LLMUnavailable, match="asked to wait 3600 s"):
        gw.call(REQUEST)
    assert waits == []
    assert len(client.requests) == 1


def test_permanent_errors_are_not_retried(tmp_path) -> None:
    client = ScriptedClient([ScriptedStep(error="unavailable", message="bad key"), "never"])
    with pytest.raises(LLMUnavailable, match="bad key"):
        gateway(client, tmp_path).call(REQUEST)
    assert len(client.requests) == 1


def test_call_cap_stops_calls_but_cache_hits_still_replay(tmp_path) -> None:
    client = ScriptedClient(["a", "b", "c"])
    gw = gateway(client, tmp_path, budget=Budget(BudgetConfig(max_calls=2)))
    gw.call(REQUEST)
    gw.call(replace(REQUEST, sample_index=1))
    with pytest.raises(BudgetExhausted, match="max_calls=2"):
        gw.call(replace(REQUEST, sample_index=2))
    assert len(client.requests) == 2
    assert gw.call(REQUEST).cache_hit
    assert log_lines(tmp_path)[2]["outcome"] == "budget"


def test_token_cap_is_checked_against_the_worst_case(tmp_path) -> None:
    client = ScriptedClient(["short"])
    # The request may use up to 20 completion tokens plus its prompt: 15 is not enough.
    gw = gateway(client, tmp_path, budget=Budget(BudgetConfig(max_tokens=15)))
    with pytest.raises(BudgetExhausted, match="max_tokens=15"):
        gw.call(REQUEST)
    assert client.requests == []


def test_cost_is_accounted_and_capped(tmp_path) -> None:
    price = PriceConfig(input_per_mtok=1_000_000.0, output_per_mtok=2_000_000.0)  # $1, $2 a token
    # Worst case of REQUEST: 13 prompt tokens (estimated) x $1 + 20 completion tokens x $2 = $53.
    budget = Budget(BudgetConfig(max_cost_usd=55.0), price)
    client = ScriptedClient(["two words", "more"])
    gw = gateway(client, tmp_path, budget=budget)
    result = gw.call(REQUEST)
    assert result.cost_usd == pytest.approx(2 * 1.0 + 2 * 2.0)  # 2 prompt words, 2 answer words
    assert budget.usage_record().cost == pytest.approx(6.0)
    with pytest.raises(BudgetExhausted, match="max_cost_usd=55"):
        gw.call(replace(REQUEST, sample_index=1))  # $6 spent + $53 could cross $55


def test_plan_says_how_many_calls_and_whether_the_cap_bites() -> None:
    text = describe_plan(5, 2, BudgetConfig(max_calls=4, max_cost_usd=1.5))
    assert "at most 10 LLM call(s)" in text
    assert "max_calls=4 will stop LLM calls early" in text
    assert "max_cost_usd=1.5" in text
    assert "stop" not in describe_plan(2, 1, BudgetConfig(max_calls=4))


def test_call_log_truncates_huge_answers(tmp_path) -> None:
    huge = "y" * (MAX_LOGGED_CHARS + 10)
    gateway(ScriptedClient([huge]), tmp_path).call(REQUEST)
    line = log_lines(tmp_path)[0]
    assert line["truncated"] is True
    assert len(line["texts"][0]) == MAX_LOGGED_CHARS
    assert line["request"]["messages"] == [{"role": "user", "content": "Write prompts."}]


def test_usage_adds_up() -> None:
    assert Usage(1, 2) + Usage(3, 4) == Usage(4, 6)
    assert Usage(4, 6).total_tokens == 10
