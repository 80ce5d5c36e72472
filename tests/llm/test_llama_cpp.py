from __future__ import annotations

from dataclasses import replace

import pytest

from llm_catalyst.errors import ConfigError
from llm_catalyst.llm.client import LLMRequest, SamplingParams
from llm_catalyst.llm.llama_cpp import LlamaCppClient, gguf_path


def test_preset_resolves_to_the_installed_gguf() -> None:
    path = gguf_path("smollm2-135m-instruct")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.is_file()


@pytest.mark.parametrize("model", ["no-such-preset", "missing.gguf"])
def test_unknown_models_are_clear_errors(model, tmp_path) -> None:
    with pytest.raises(ConfigError, match="neither a preset"):
        gguf_path(str(tmp_path / model) if model.endswith(".gguf") else model)


@pytest.mark.slow
def test_in_process_llama_cpp_is_seeded_and_samples_n() -> None:
    pytest.importorskip("llama_cpp", reason="optional extra: pip install 'llm-catalyst[llama-cpp]'")
    client = LlamaCppClient("smollm2-135m-instruct", n_ctx=512)
    assert client.has_chat_template
    request = LLMRequest(
        ({"role": "user", "content": "Name a colour."},),
        SamplingParams(n=2, temperature=1.0, max_tokens=12, seed=4),
    )
    first = client.complete(request)
    assert len(first.texts) == 2 and all(first.texts)
    assert first.usage.completion_tokens > 0
    other = LLMRequest(request.messages, replace(request.params, seed=40))
    assert client.complete(other).texts != first.texts
    assert client.complete(request).texts == first.texts  # whatever ran in between
