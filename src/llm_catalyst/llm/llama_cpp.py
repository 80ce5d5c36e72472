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
"""

from __future__ import annotations

import secrets
from typing import Any

from gguf import GGUFReader

from llm_catalyst.errors import ConfigError
from llm_catalyst.llm.client import Completion, InProcessClient, LLMRequest, Usage
from llm_catalyst.weights.gguf import gguf_path

# (model, n_ctx, n_threads) -> the loaded server and whether the GGUF has a chat template.
_SERVERS: dict[tuple[str, int, int | None], tuple[Any, bool]] = {}


class LlamaCppClient(InProcessClient):
    backend = "llama_cpp"

    def __init__(self, model: str, *, n_ctx: int = 2048, n_threads: int | None = None):
        try:
            import xllamacpp
        except ImportError:
            raise ConfigError(
                "backend 'llama_cpp' needs xllamacpp (a dependency of llm-catalyst); fix: pip "
                "install xllamacpp (a prebuilt wheel), or use backend 'local_hf'"
            ) from None
        self._name = model
        key = (model, n_ctx, n_threads)
        if key not in _SERVERS:
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
            try:
                if self._chat:
                    body["messages"] = [dict(m) for m in request.messages]
                    answer = self._server.handle_chat_completions(body)
                else:
                    body["prompt"] = self.plain_prompt(request.messages)
                    answer = self._server.handle_completions(body)
            except (RuntimeError, ValueError) as exc:
                raise self.failure(exc) from None
            if "error" in answer:
                raise self.failure(answer["error"])
            choice = answer["choices"][0]
            text = choice["message"].get("content") if self._chat else choice.get("text")
            texts.append(text or "")
            finishes.append(str(choice.get("finish_reason") or ""))
            u = answer.get("usage") or {}
            usage = usage + Usage(u.get("prompt_tokens", 0), u.get("completion_tokens", 0))
        return Completion(tuple(texts), usage, self._name, tuple(finishes))
