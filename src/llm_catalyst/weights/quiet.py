"""Loading weights without third-party progress bars, through the libraries' own switches.

transformers draws a "Loading weights" bar on every ``from_pretrained``, even when the weights
are already on disk and load in a fraction of a second: on a normal run it is noise between our
own lines. Hub downloads keep huggingface_hub's bar: a first download can take minutes and is
worth watching. Both switches are process-wide, so they are set only around our loads and put
back as they were (a user's own transformers code keeps its bars).
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Iterator

from huggingface_hub.utils import (
    are_progress_bars_disabled,
    disable_progress_bars,
    enable_progress_bars,
)
from transformers.utils import logging as transformers_logging

_log = logging.getLogger(__name__)


@contextlib.contextmanager
def no_loading_bar() -> Iterator[None]:
    """transformers' own progress bars off inside the block; download bars as they were.

    ``transformers.utils.logging.disable_progress_bar`` switches huggingface_hub's bars off too,
    so they are switched back on at once when they were on before.
    """
    transformers_on = transformers_logging.is_progress_bar_enabled()
    hub_off = are_progress_bars_disabled()
    transformers_logging.disable_progress_bar()
    if not hub_off:
        enable_progress_bars()
    try:
        yield
    finally:
        if transformers_on:
            transformers_logging.enable_progress_bar()
            if hub_off:
                disable_progress_bars()


@contextlib.contextmanager
def converting_once(what: str, where: str) -> Iterator[None]:
    """Announce a one-time conversion in one INFO log record and keep its stderr, bars
    included, unless it fails.

    transformers' GGUF reader draws "Converting and de-quantizing GGUF tensors" with tqdm
    directly: neither transformers' switch nor ``HF_HUB_DISABLE_PROGRESS_BARS`` reaches it, and
    ``TQDM_DISABLE`` is read only when tqdm is first imported. The conversion reads a pinned
    file shipped in a package, so what it prints is only those bars; if it raises, what it
    printed is written out before the error propagates.
    """
    _log.info("%s (once; cached in %s)", what, where)
    captured = io.StringIO()
    try:
        with no_loading_bar(), contextlib.redirect_stderr(captured):
            yield
    except BaseException:
        sys.stderr.write(captured.getvalue())
        raise
