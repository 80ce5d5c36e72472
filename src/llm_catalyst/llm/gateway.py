"""One call path for every back-end: cache, budget, bounded retries and the call log.

Why in that order: docs/design.md, "The LLM gateway: cache, budget, retries".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from llm_catalyst.llm.budget import Budget, BudgetExhausted
from llm_catalyst.llm.cache import ResponseCache, request_key
from llm_catalyst.llm.calllog import CallLog, CallRecord
from llm_catalyst.llm.client import (
    Completion,
    LLMClient,
    LLMRequest,
    LLMUnavailable,
    TransientLLMError,
)
from llm_catalyst.llm.config import LLMConfig, RetryConfig

if TYPE_CHECKING:
    from tenacity import RetryCallState


@dataclass(frozen=True)
class CallResult:
    completion: Completion
    cache_hit: bool
    attempts: int
    latency_s: float
    cost_usd: float


@dataclass
class _RetryAfterTooLong:
    """tenacity stop condition: the server asked for a longer pause than the user allows."""

    limit_s: float
    asked_s: float | None = field(default=None, init=False)

    def __call__(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None and retry_after > self.limit_s:
            self.asked_s = retry_after
            return True
        return False


class LLMGateway:
    """Wraps a client; the only object the proposer and the catalyst loop talk to."""

    def __init__(
        self,
        client: LLMClient,
        *,
        cache: ResponseCache | None = None,
        budget: Budget | None = None,
        retry: RetryConfig | None = None,
        log: CallLog | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client = client
        self.cache = cache
        self.budget = budget or Budget()
        self.retry = retry or RetryConfig()
        self.log = log or CallLog()
        self._sleep = sleep

    @property
    def identity(self) -> dict[str, str]:
        return self.client.identity

    @property
    def has_chat_template(self) -> bool:
        return self.client.has_chat_template

    @property
    def supports_structured(self) -> bool:
        return self.client.supports_structured

    def call(self, request: LLMRequest) -> CallResult:
        identity = self.client.identity
        key = request_key(identity, request)
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            self.budget.record_cache_hit(cached.usage)
            self.log.write(CallRecord.build(identity, request, "cache_hit", cached, cache_hit=True))
            return CallResult(cached, cache_hit=True, attempts=0, latency_s=0.0, cost_usd=0.0)
        try:
            self.budget.check(request)
        except BudgetExhausted as exc:
            self.log.write(CallRecord.build(identity, request, "budget", error=str(exc)))
            raise
        start = time.perf_counter()
        attempts = 0

        def attempt() -> Completion:
            nonlocal attempts
            attempts += 1
            return self.client.complete(request)

        too_long = _RetryAfterTooLong(self.retry.max_retry_after_s)
        retrying = Retrying(
            stop=stop_after_attempt(self.retry.max_attempts) | too_long,
            wait=self._wait,
            retry=retry_if_exception_type(TransientLLMError),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            completion = retrying(attempt)
        except (TransientLLMError, LLMUnavailable) as exc:
            latency = time.perf_counter() - start
            error = self._unavailable(exc, attempts, too_long.asked_s)
            self.log.write(
                CallRecord.build(
                    identity,
                    request,
                    "unavailable",
                    error=str(error),
                    attempts=attempts,
                    latency_s=latency,
                )
            )
            raise error from None
        latency = time.perf_counter() - start
        cost = self.budget.record(completion.usage)
        if self.cache is not None:
            self.cache.put(key, completion)
        self.log.write(
            CallRecord.build(
                identity,
                request,
                "ok",
                completion,
                attempts=attempts,
                latency_s=latency,
                cost_usd=cost,
            )
        )
        return CallResult(completion, False, attempts, latency, cost)

    def _wait(self, state: RetryCallState) -> float:
        backoff = wait_exponential(
            multiplier=self.retry.initial_backoff_s, max=self.retry.max_backoff_s
        )(state)
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None) or 0.0
        return max(backoff, retry_after)

    def _unavailable(
        self, exc: Exception, attempts: int, retry_after_asked: float | None
    ) -> LLMUnavailable:
        if isinstance(exc, LLMUnavailable):
            return LLMUnavailable(str(exc), attempts=attempts)
        if retry_after_asked is not None:
            return LLMUnavailable(
                f"{exc}; the server asked to wait {retry_after_asked:g} s (Retry-After), more "
                f"than retry.max_retry_after_s={self.retry.max_retry_after_s:g}; gave up after "
                f"{attempts} attempt(s)",
                attempts=attempts,
            )
        return LLMUnavailable(
            f"{exc}; gave up after {attempts} attempt(s) (retry.max_attempts="
            f"{self.retry.max_attempts})",
            attempts=attempts,
        )


def build_client(config: LLMConfig, loaded: tuple[object, object] | None = None) -> LLMClient:
    """The back-end a config names; ``loaded`` reuses an in-memory (model, tokenizer) pair for
    ``local_hf`` so a backbone that is also the LLM is loaded once."""
    if config.backend == "openai":
        from llm_catalyst.llm.openai_compat import OpenAICompatClient

        assert config.base_url is not None  # enforced by LLMConfig
        return OpenAICompatClient(
            config.base_url,
            config.model,
            api_key_env=config.api_key_env,
            timeout_s=config.timeout_s,
        )
    if config.backend == "scripted":
        from llm_catalyst.llm.scripted import ScriptedClient

        assert config.script is not None  # enforced by LLMConfig
        return ScriptedClient.from_file(config.script)
    if config.backend == "llama_cpp":
        from llm_catalyst.llm.llama_cpp import LlamaCppClient

        return LlamaCppClient(config.model, n_ctx=config.n_ctx, n_threads=config.n_threads)
    from llm_catalyst.llm.local_hf import LocalHFClient

    if loaded is not None:
        model, tokenizer = loaded
        return LocalHFClient(model, tokenizer, name=config.model)
    return LocalHFClient.from_pretrained(config.model)


def build_gateway(
    config: LLMConfig,
    loaded: tuple[object, object] | None = None,
    *,
    log_path: Path | None = None,
    client: LLMClient | None = None,
) -> LLMGateway:
    """A gateway wired as the config says; ``log_path`` overrides ``config.call_log`` (a run
    directory puts its call log beside its other records)."""
    return LLMGateway(
        client or build_client(config, loaded),
        cache=ResponseCache(config.cache.resolved_directory(), enabled=config.cache.enabled),
        budget=Budget(config.budget, config.price()),
        retry=config.retry,
        log=CallLog(log_path or config.call_log),
    )
