"""llama.cpp in-process through ``xllamacpp``'s prebuilt wheel (no compiler needed).

llama.cpp answers one sample per call, so ``n`` samples are ``n`` calls seeded ``seed, seed + 1,
...``; each re-evaluates the whole prompt (no prompt cache), because logits over a reused cache
prefix differ slightly from a fresh evaluation and a seeded call must not depend on the calls
before it. A GGUF without a chat template gets plain-text completion, as in ``local_hf``.
xllamacpp also listens on a loopback port; a random API key keeps other processes off it.

One server per model and settings serves every client of a process: starting Qwen and reading
its GGUF metadata (the 151k-token vocabulary is parsed in Python) takes 15-20 s on 2 cores,
which a grid worker would otherwise pay again for every cell. Since no call keeps state (no
prompt cache, one slot), a reused server answers exactly as a fresh one.

Answers are streamed from a thread of their own, so that a stop is honoured during one
(``_generate``); the streamed text is the text the same call answers whole.

A structured request sends its JSON schema, which llama.cpp turns into a grammar that the
sampler follows token by token: the answer is the list and nothing else, on both endpoints.
``sampling.dry_multiplier`` switches on llama.cpp's DRY sampler, which no grammar can replace:
a list with one item twice, or with a copy of a prompt the meta-prompt shows, is valid JSON.

Threads: ``llm.n_threads`` where set; otherwise, in a grid worker, the worker's share of the
cores (``use_thread_budget``), since llama.cpp's own choice, every core, beside another
worker's cell makes its threads wait on one another (calls many times slower); elsewhere
llama.cpp's own choice.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any

from gguf import GGUFReader

from llm_catalyst.errors import ConfigError
from llm_catalyst.llm.client import Completion, InProcessClient, LLMRequest, Usage
from llm_catalyst.weights.gguf import gguf_path

_log = logging.getLogger(__name__)

# (model, n_ctx, n_threads) -> the loaded server and whether the GGUF has a chat template.
_SERVERS: dict[tuple[str, int, int | None], tuple[Any, bool]] = {}

# The threads this process was given (a grid worker's share), for a server whose config leaves
# ``n_threads`` unset; None: llama.cpp chooses.
_thread_budget: int | None = None


def use_thread_budget(threads: int | None) -> None:
    """Start later servers with ``threads`` where ``llm.n_threads`` is unset (None: llama.cpp's
    own choice). A grid worker calls it with the torch threads it was given, so the LLM and
    torch keep to the same share of the cores."""
    global _thread_budget
    _thread_budget = threads


def server_threads(n_threads: int | None) -> int | None:
    """The threads a server is started with: ``n_threads`` (``llm.n_threads``) where set, else
    this process's budget (``use_thread_budget``), else None (llama.cpp's own choice)."""
    return n_threads if n_threads is not None else _thread_budget


class LlamaCppClient(InProcessClient):
    backend = "llama_cpp"
    supports_structured = True

    def __init__(self, model: str, *, n_ctx: int = 2048, n_threads: int | None = None):
        try:
            import xllamacpp
        except ImportError:
            raise ConfigError(
                "backend 'llama_cpp' needs xllamacpp (a dependency of llm-catalyst); fix: pip "
                "install xllamacpp (a prebuilt wheel), or use backend 'local_hf'"
            ) from None
        self._name = model
        n_threads = server_threads(n_threads)
        key = (model, n_ctx, n_threads)
        if key not in _SERVERS:
            # Seconds to a minute, silent otherwise; the command line shows INFO lines.
            _log.info("loading LLM %s (llama.cpp)…", model)
            path = gguf_path(model)
            chat = "tokenizer.chat_template" in GGUFReader(path).fields
            params = xllamacpp.CommonParams()
            params.model.path = str(path)
            params.n_ctx = n_ctx
            params.n_parallel = 1
            params.cache_ram_mib = 0
            params.verbosity = -1
            params.api_keys = [secrets.token_hex(16)]
            if n_threads is not None:
                params.cpuparams.n_threads = n_threads
                params.cpuparams_batch.n_threads = n_threads
            _SERVERS[key] = (xllamacpp.Server(params), chat)
        self._server, self._chat = _SERVERS[key]

    def complete(self, request: LLMRequest) -> Completion:
        p = request.params
        texts, finishes = [], []
        usage = Usage()
        for i in range(p.n):
            body: dict[str, Any] = {
                "temperature": p.temperature,
                "top_p": p.top_p,
                "max_tokens": p.max_tokens,
                "stop": list(p.stop),
                "cache_prompt": False,
            }
            if p.seed is not None:
                body["seed"] = p.seed + i
            if p.dry_multiplier:
                body["dry_multiplier"] = p.dry_multiplier
            if request.structure is not None:
                body["json_schema"] = request.structure.json_schema()
            if self._chat:
                body["messages"] = [dict(m) for m in request.messages]
                handle = self._server.handle_chat_completions
            else:
                body["prompt"] = self.plain_prompt(request.messages)
                handle = self._server.handle_completions
            try:
                chunks = _generate(handle, body)
            except (RuntimeError, ValueError) as exc:
                raise self.failure(exc) from None
            pieces, finish = [], ""
            for chunk in chunks:
                if "error" in chunk:
                    raise self.failure(chunk["error"])
                for choice in chunk.get("choices") or ():
                    piece = choice["delta"].get("content") if self._chat else choice.get("text")
                    pieces.append(piece or "")
                    finish = choice.get("finish_reason") or finish
                u = chunk.get("usage") or {}
                usage = usage + Usage(u.get("prompt_tokens", 0), u.get("completion_tokens", 0))
            texts.append("".join(pieces))
            finishes.append(str(finish))
        return Completion(tuple(texts), usage, self._name, tuple(finishes))


def _generate(handle: Callable[..., Any], body: dict[str, Any]) -> list[dict[str, Any]]:
    """The chunks of one answer, streamed from a thread of its own while this thread waits.

    Python runs a signal's handler in the main thread only, and not while it is inside a call
    into llama.cpp, which lasts the whole generation: waiting here instead, the main thread
    handles a stop at once (catalyst/stop.py), and whatever ends the wait (the stop's
    exception) ends the stream, which cancels the generation at its next token (after the
    prompt's evaluation, if that is under way).
    """
    chunks: list[dict[str, Any]] = []
    failed: list[Exception] = []
    cancel = threading.Event()

    def take(chunk: dict[str, Any]) -> bool:
        chunks.append(chunk)
        return cancel.is_set()  # True ends the stream

    def stream() -> None:
        try:
            handle({**body, "stream": True, "stream_options": {"include_usage": True}}, take)
        except Exception as exc:  # raised in the waiting thread
            failed.append(exc)

    generating = threading.Thread(target=stream, name="llama.cpp", daemon=True)
    generating.start()
    try:
        generating.join()
    finally:
        cancel.set()
        generating.join()
    if failed:
        raise failed[0]
    return chunks
