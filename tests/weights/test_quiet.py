"""Loading quietly: the bar switches are put back, and a failed conversion is not silent."""

from __future__ import annotations

import logging
import sys

import pytest
from huggingface_hub.utils import (
    are_progress_bars_disabled,
    disable_progress_bars,
    enable_progress_bars,
)
from transformers.utils import logging as transformers_logging

from llm_catalyst.weights.quiet import converting_once, no_loading_bar


def _switches() -> tuple[bool, bool]:
    return transformers_logging.is_progress_bar_enabled(), are_progress_bars_disabled()


@pytest.fixture
def bars_on():
    """Both libraries' bars on for the test; the session's switches back after it."""
    transformers_on, hub_off = _switches()
    transformers_logging.enable_progress_bar()
    yield
    transformers_logging.disable_progress_bar()
    if transformers_on:
        transformers_logging.enable_progress_bar()
    (disable_progress_bars if hub_off else enable_progress_bars)()


def test_only_the_loading_bar_is_off_and_only_inside(bars_on):
    with no_loading_bar():
        assert _switches() == (False, False)  # download bars stay
    assert _switches() == (True, False)


def test_switches_the_user_set_are_kept(bars_on):
    disable_progress_bars()  # huggingface_hub's off, transformers' on
    with no_loading_bar():
        assert _switches() == (False, True)
    assert _switches() == (True, True)
    transformers_logging.disable_progress_bar()
    with no_loading_bar():
        pass
    assert _switches() == (False, True)


def test_a_conversion_logs_one_line_and_hides_its_bars(capfd, caplog):
    with (
        caplog.at_level(logging.INFO, logger="llm_catalyst"),
        converting_once("converting x.gguf", "/cache"),
    ):
        print("Converting: 100%|##########| 3/3 [00:00<00:00, 9.0it/s]", file=sys.stderr)
    assert [r.getMessage() for r in caplog.records] == [
        "converting x.gguf (once; cached in /cache)"
    ]
    assert capfd.readouterr().err == ""


def test_a_failed_conversion_shows_what_it_printed(capfd):
    with pytest.raises(RuntimeError), converting_once("converting x.gguf", "/cache"):
        print("tensor 3 has an unknown type", file=sys.stderr)
        raise RuntimeError("cannot convert")
    assert "tensor 3 has an unknown type" in capfd.readouterr().err
