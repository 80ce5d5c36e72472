"""Fixtures for the LLM tests.

fake_openai      a FakeOpenAIServer (fake_openai_server.py) on loopback, stopped after the test
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.llm.fake_openai_server import FakeOpenAIServer


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer()
    server.start()
    yield server
    server.stop()
