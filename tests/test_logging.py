"""The library logs through the ``llm_catalyst`` logger and leaves the output to its host.

A NullHandler on the package logger keeps the library silent (warnings included: logging's
last resort never prints them) until the application attaches a handler of its own, and then
every module's records reach it.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

import llm_catalyst
from llm_catalyst.weights.quiet import converting_once


class _Kept(logging.Handler):
    """A host application's handler: keeps what reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def host_handler() -> Iterator[_Kept]:
    """What ``logging.basicConfig(level=INFO)`` does in a host: a handler on the root logger."""
    root = logging.getLogger()
    handler, level = _Kept(), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def test_the_package_logger_has_a_null_handler() -> None:
    package = logging.getLogger(llm_catalyst.__name__)
    assert any(isinstance(handler, logging.NullHandler) for handler in package.handlers)


def test_a_library_message_reaches_a_handler_the_host_attaches(host_handler) -> None:
    with converting_once("converting x.gguf", "/cache"):
        pass
    assert [(r.name, r.levelname, r.getMessage()) for r in host_handler.records] == [
        ("llm_catalyst.weights.quiet", "INFO", "converting x.gguf (once; cached in /cache)")
    ]


def test_a_host_without_a_handler_sees_nothing_not_even_warnings() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import logging, llm_catalyst\n"
            "logging.getLogger('llm_catalyst.weights').warning('a warning for the host')",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert (done.stdout, done.stderr) == ("", "")
