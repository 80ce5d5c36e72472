"""Loading a model says so, through ``logging`` only: the library prints nothing itself.

The command line shows these INFO lines (tests/commands/test_startup.py); a host application
that configures no handler sees nothing (tests/test_logging.py).
"""

from __future__ import annotations

import logging

import pytest

from llm_catalyst.backbones.config import BackboneConfig, build_backbone
from llm_catalyst.llm.local_hf import LocalHFClient


def test_building_a_backbone_logs_which_model_it_loads(sentiment_task, caplog, capfd) -> None:
    with caplog.at_level(logging.INFO, logger="llm_catalyst"):
        build_backbone(BackboneConfig(model="tiny-causal-lm"), sentiment_task)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("llm_catalyst")] == [
        "loading backbone tiny-causal-lm…"
    ]
    assert "loading" not in capfd.readouterr().err


def test_loading_a_transformers_llm_logs_which_model_it_loads(caplog, capfd) -> None:
    with caplog.at_level(logging.INFO, logger="llm_catalyst"):
        LocalHFClient.from_pretrained("tiny-causal-lm")
    assert [r.getMessage() for r in caplog.records if r.name.startswith("llm_catalyst")] == [
        "loading LLM tiny-causal-lm (transformers)…"
    ]
    assert "loading" not in capfd.readouterr().err


@pytest.mark.slow
def test_starting_a_llama_cpp_server_logs_once_per_server(caplog) -> None:
    """A second client of the same model and settings reuses the server: nothing is loaded."""
    from llm_catalyst.llm.llama_cpp import LlamaCppClient

    with caplog.at_level(logging.INFO, logger="llm_catalyst"):
        LlamaCppClient("smollm2-135m-instruct", n_ctx=384)
        LlamaCppClient("smollm2-135m-instruct", n_ctx=384)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("llm_catalyst")] == [
        "loading LLM smollm2-135m-instruct (llama.cpp)…"
    ]
