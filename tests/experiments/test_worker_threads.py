"""A grid worker's llama.cpp keeps to the worker's share of the cores, as its torch does: its
own default, every core, beside another worker's cell made each call many times slower."""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from llm_catalyst.experiments.workers import _share_threads
from llm_catalyst.llm import llama_cpp
from llm_catalyst.llm.llama_cpp import LlamaCppClient, server_threads


def _threads_here() -> tuple[int, int | None, int | None]:
    """In the worker: torch's threads, and llama.cpp's without and with ``llm.n_threads: 3``."""
    return torch.get_num_threads(), server_threads(None), server_threads(3)


def test_a_worker_given_one_thread_starts_llama_cpp_with_one():
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, context, _share_threads, (1,)) as pool:
        assert pool.submit(_threads_here).result() == (1, 1, 3)


def test_outside_a_worker_llama_cpp_chooses_its_threads():
    assert server_threads(None) is None
    assert server_threads(2) == 2


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The parameters of every llama.cpp server started, with no model loaded: xllamacpp and
    the GGUF file are stand-ins."""
    servers: list[Any] = []

    def params() -> SimpleNamespace:
        return SimpleNamespace(
            model=SimpleNamespace(path=None),
            cpuparams=SimpleNamespace(n_threads=None),
            cpuparams_batch=SimpleNamespace(n_threads=None),
        )

    fake = SimpleNamespace(CommonParams=params, Server=lambda p: servers.append(p) or p)
    monkeypatch.setitem(sys.modules, "xllamacpp", fake)
    monkeypatch.setattr(llama_cpp, "gguf_path", lambda model: Path(f"{model}.gguf"))
    monkeypatch.setattr(llama_cpp, "GGUFReader", lambda path: SimpleNamespace(fields={}))
    monkeypatch.setattr(llama_cpp, "_SERVERS", {})
    return servers


def test_the_server_takes_the_budget_unless_llm_n_threads_is_set(started, monkeypatch):
    LlamaCppClient("model")
    monkeypatch.setattr(llama_cpp, "_thread_budget", 1)  # what _share_threads(1) sets
    LlamaCppClient("model")
    LlamaCppClient("model", n_threads=3)
    assert [(p.cpuparams.n_threads, p.cpuparams_batch.n_threads) for p in started] == [
        (None, None),  # llama.cpp's own choice
        (1, 1),
        (3, 3),
    ]
