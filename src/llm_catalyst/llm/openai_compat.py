"""An OpenAI-compatible HTTP back-end (OpenAI, vLLM, Ollama, llama.cpp servers, ...).

The key is read from the environment variable whose NAME the user configured, at construction,
and lives only inside the ``openai`` client object: it is not part of ``identity``, the cache
key, the call log or any error message (server text quoted in errors is scrubbed of it).
The ``openai`` package's own retries are switched off; ``gateway.py`` retries with one policy
for every back-end.

A structured request asks for its JSON list through ``response_format`` (llama.cpp and vLLM
servers constrain their sampling to it). A server that refuses the field (HTTP 400 or 422, where
the same request without it is answered) is asked once more without it, and never again for the
life of the client, which is the run: the answer says so (``structure_refused``) and is parsed
as any other.
"""

from __future__ import annotations

import email.utils
import logging
import os
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import openai

from llm_catalyst.errors import ConfigError
from llm_catalyst.llm.client import (
    Completion,
    LLMRequest,
    LLMUnavailable,
    ProposalList,
    TransientLLMError,
    Usage,
)

_log = logging.getLogger(__name__)

# Local servers (llama.cpp, vLLM, Ollama) accept any key, but the openai package insists on one.
_NO_KEY = "no-key"
_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_QUOTED_BODY_CHARS = 300
# What servers answer to a request field they do not support.
_REFUSED_STATUS = frozenset({400, 422})


class OpenAICompatClient:
    """Chat completions over HTTP; any server that speaks the OpenAI chat API works."""

    supports_structured = True

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        timeout_s: float = 60.0,
    ):
        key = _NO_KEY
        if api_key_env:
            key = os.environ.get(api_key_env, "")
            if not key:
                raise ConfigError(
                    f"the LLM config names the environment variable {api_key_env!r} for the API "
                    f"key, but it is not set; fix: export {api_key_env}=<your key>, or remove "
                    "api_key_env for a server that needs no key"
                )
        self._secret = key if key != _NO_KEY else ""
        self._api_key_env = api_key_env
        self._base_url = base_url
        self._model = model
        self._client = openai.OpenAI(
            api_key=key, base_url=base_url, timeout=timeout_s, max_retries=0
        )
        # Why the server refused response_format, once it has; then no request carries it.
        self._structure_refused = ""

    @property
    def identity(self) -> dict[str, str]:
        return {"backend": "openai", "base_url": self._base_url, "model": self._model}

    @property
    def has_chat_template(self) -> bool:
        return True

    def complete(self, request: LLMRequest) -> Completion:
        try:
            return self._answer(request)
        except openai.APIStatusError as exc:
            raise self._status_error(exc) from None
        except openai.APITimeoutError:
            raise TransientLLMError(f"{self._base_url}: no answer within the timeout") from None
        except openai.APIConnectionError as exc:
            raise TransientLLMError(
                f"{self._base_url}: connection failed ({self._scrub(str(exc.__cause__ or exc))})"
            ) from None
        except (openai.APIResponseValidationError, ValueError) as exc:
            raise TransientLLMError(
                f"{self._base_url}: the server's answer is not a valid chat completion "
                f"({self._scrub(str(exc))[:_QUOTED_BODY_CHARS]})"
            ) from None

    def _answer(self, request: LLMRequest) -> Completion:
        """The answer, constrained where asked and not refused; ``openai``'s errors pass."""
        if request.structure is None:
            return self._create(request)
        if self._structure_refused:
            return replace(self._create(request), structure_refused=self._structure_refused)
        try:
            return self._create(request, _response_format(request.structure))
        except openai.APIStatusError as exc:
            if exc.status_code not in _REFUSED_STATUS:
                raise
            refused = (
                f"{self._base_url} refused response_format (HTTP {exc.status_code}): "
                f"{self._scrub(exc.response.text)[:_QUOTED_BODY_CHARS]}"
            )
        # If this fails too, the error was not about the format: it is raised, not remembered.
        answer = self._create(request)
        self._structure_refused = refused
        _log.warning("%s; asking for proposals without it for the rest of the run", refused)
        return replace(answer, structure_refused=refused)

    def _create(
        self, request: LLMRequest, response_format: dict[str, Any] | None = None
    ) -> Completion:
        p = request.params
        # Unset options are left out rather than sent as null: some servers reject nulls.
        optional = {
            "seed": p.seed,
            "stop": list(p.stop) or None,
            "response_format": response_format,
        }
        response = self._client.chat.completions.create(
            model=self._model,
            messages=[dict(m) for m in request.messages],  # type: ignore[misc]
            n=p.n,
            temperature=p.temperature,
            top_p=p.top_p,
            max_tokens=p.max_tokens,
            **{k: v for k, v in optional.items() if v is not None},
        )
        return self._completion(response)

    def _completion(self, response: object) -> Completion:
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise TransientLLMError(f"{self._base_url}: the answer holds no choices")
        texts = tuple((c.message.content or "") if c.message else "" for c in choices)
        usage = getattr(response, "usage", None)
        return Completion(
            texts=texts,
            usage=Usage(
                prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            ),
            model=str(getattr(response, "model", "") or self._model),
            finish_reasons=tuple(str(c.finish_reason or "") for c in choices),
        )

    def _status_error(self, exc: openai.APIStatusError) -> Exception:
        status = exc.status_code
        body = self._scrub(exc.response.text)[:_QUOTED_BODY_CHARS]
        where = f"{self._base_url} answered HTTP {status}"
        if status in _RETRYABLE_STATUS:
            return TransientLLMError(f"{where}: {body}", retry_after=_retry_after(exc.response))
        if status in (401, 403):
            source = (
                f"the key in ${self._api_key_env}"
                if self._api_key_env
                else "no key (api_key_env is not set in the LLM config)"
            )
            return LLMUnavailable(f"{where} (not authorised) with {source}; check the key: {body}")
        if status == 404:
            return LLMUnavailable(
                f"{where} (not found): check base_url (usually ends in /v1) and that the server "
                f"serves model {self._model!r}: {body}"
            )
        return LLMUnavailable(f"{where}: {body}")

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text


def _response_format(structure: ProposalList) -> dict[str, Any]:
    """The OpenAI ``json_schema`` response format. Not ``strict``: OpenAI's strict mode wants
    an object at the root; a server that refuses a list there is asked again without it."""
    return {
        "type": "json_schema",
        "json_schema": {"name": "proposals", "schema": structure.json_schema()},
    }


def _retry_after(response: object) -> float | None:
    """Seconds from retry-after-ms, or Retry-After as seconds or an HTTP date; None if absent."""
    headers = getattr(response, "headers", {}) or {}
    millis, value = headers.get("retry-after-ms"), headers.get("retry-after")
    try:
        if millis is not None:
            return max(0.0, float(millis) / 1000)
        if value is not None:
            return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(when.tzinfo or UTC)).total_seconds())
    return None
