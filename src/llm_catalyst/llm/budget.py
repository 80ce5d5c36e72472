"""Hard caps on LLM calls, tokens and money, and the usage a run records.

A cap is checked BEFORE each call against the worst case of that call (its prompt, estimated
from its length, plus ``n * max_tokens``), so a run never spends more than the user allowed.
Cache hits cost nothing and are never refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from llm_catalyst.errors import LLMCatalystError
from llm_catalyst.llm.client import LLMRequest, Usage
from llm_catalyst.llm.config import BudgetConfig, PriceConfig
from llm_catalyst.records import LLMUsage

# Conservative: English text runs about 4 characters per token, so 3 over-estimates the prompt.
_CHARS_PER_TOKEN_LOW = 3
_TOKENS_PER_MESSAGE = 8


class BudgetExhausted(LLMCatalystError):
    """The next LLM call could cross a configured cap; the caller stops calling the LLM."""


def worst_case_usage(request: LLMRequest) -> Usage:
    """An upper estimate of what ``request`` can consume."""
    chars = sum(len(m["content"]) for m in request.messages)
    prompt = math.ceil(chars / _CHARS_PER_TOKEN_LOW) + _TOKENS_PER_MESSAGE * len(request.messages)
    return Usage(
        prompt_tokens=prompt, completion_tokens=request.params.n * request.params.max_tokens
    )


class Budget:
    """Totals of one run and the caps they must stay under."""

    def __init__(self, limits: BudgetConfig | None = None, price: PriceConfig | None = None):
        self.limits = limits or BudgetConfig()
        self.price = price or PriceConfig()
        self.calls = 0
        self.cache_hits = 0
        self.usage = Usage()
        self.cached_usage = Usage()
        self.cost_usd = 0.0

    def check(self, request: LLMRequest) -> None:
        """Raise ``BudgetExhausted`` when making ``request`` could cross a cap."""
        lim = self.limits
        worst = worst_case_usage(request)
        if lim.max_calls is not None and self.calls + 1 > lim.max_calls:
            raise BudgetExhausted(
                f"LLM call cap reached: {self.calls} of max_calls={lim.max_calls} made; "
                "raise budget.max_calls in the LLM config to allow more"
            )
        if (
            lim.max_tokens is not None
            and self.usage.total_tokens + worst.total_tokens > lim.max_tokens
        ):
            raise BudgetExhausted(
                f"LLM token cap: {self.usage.total_tokens} tokens used, the next call may use up "
                f"to {worst.total_tokens}, max_tokens={lim.max_tokens}; raise budget.max_tokens "
                "or lower sampling.max_tokens"
            )
        worst_cost = self._cost(worst)
        if lim.max_cost_usd is not None and self.cost_usd + worst_cost > lim.max_cost_usd:
            raise BudgetExhausted(
                f"LLM cost cap: ${self.cost_usd:.4f} spent, the next call may cost up to "
                f"${worst_cost:.4f}, max_cost_usd={lim.max_cost_usd}; raise budget.max_cost_usd"
            )

    def record(self, usage: Usage) -> float:
        """Account for one answered call; returns its cost in US dollars."""
        cost = self._cost(usage)
        self.calls += 1
        self.usage = self.usage + usage
        self.cost_usd += cost
        return cost

    def _cost(self, usage: Usage) -> float:
        return (
            usage.prompt_tokens * self.price.input_per_mtok
            + usage.completion_tokens * self.price.output_per_mtok
        ) / 1e6

    def record_cache_hit(self, usage: Usage) -> None:
        self.cache_hits += 1
        self.cached_usage = self.cached_usage + usage

    def usage_record(self) -> LLMUsage:
        """What a run record reports: every answered call, fresh or from the cache."""
        return LLMUsage(
            calls=self.calls + self.cache_hits,
            fresh_calls=self.calls,
            cache_hits=self.cache_hits,
            prompt_tokens=self.usage.prompt_tokens + self.cached_usage.prompt_tokens,
            completion_tokens=self.usage.completion_tokens + self.cached_usage.completion_tokens,
            cost=round(self.cost_usd, 6),
        )

    def state_dict(self) -> dict[str, Any]:
        """The running totals a checkpoint stores, so a resumed run keeps counting."""
        return {
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "usage": [self.usage.prompt_tokens, self.usage.completion_tokens],
            "cached_usage": [self.cached_usage.prompt_tokens, self.cached_usage.completion_tokens],
            "cost_usd": self.cost_usd,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.calls = state["calls"]
        self.cache_hits = state["cache_hits"]
        self.usage = Usage(*state["usage"])
        self.cached_usage = Usage(*state["cached_usage"])
        self.cost_usd = state["cost_usd"]


def describe_plan(rounds: int, calls_per_round: int, limits: BudgetConfig) -> str:
    """One line saying how many LLM calls a run will make at most, and whether caps bite."""
    projected = rounds * calls_per_round
    text = (
        f"LLM plan: {rounds} round(s) x up to {calls_per_round} call(s) = "
        f"at most {projected} LLM call(s)"
    )
    if limits.max_calls is not None and limits.max_calls < projected:
        text += (
            f"; max_calls={limits.max_calls} will stop LLM calls early "
            "(later rounds are skipped, training goes on)"
        )
    caps = [
        f"{name}={value}"
        for name, value in (
            ("max_tokens", limits.max_tokens),
            ("max_cost_usd", limits.max_cost_usd),
        )
        if value is not None
    ]
    return text + (f"; caps: {', '.join(caps)}" if caps else "")
