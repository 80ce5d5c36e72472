"""The SST-2 vocabulary of the tiny causal LM, and one torch thread for the catalyst tests: the
tiny models' matrices are too small to gain from two threads, and on a loaded machine two
threads contend and run about twice as slow. Child
processes of the resume tests get the same setting through OMP_NUM_THREADS, so that they compute
bit for bit what this process computes. The previous setting is restored after each module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llm_catalyst.backbones import BackboneConfig, build_backbone
from llm_catalyst.data.registry import get_task
from llm_catalyst.prompts.projection import Vocabulary
from tests.torch_threads import one_torch_thread


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def sst2_vocab() -> Vocabulary:
    return Vocabulary.of(build_backbone(BackboneConfig(model="tiny-causal-lm"), get_task("sst2")))
