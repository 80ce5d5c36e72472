from __future__ import annotations

from dataclasses import replace

import pytest

from llm_catalyst.llm.client import LLMRequest, SamplingParams
from llm_catalyst.llm.llama_cpp import LlamaCppClient


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
