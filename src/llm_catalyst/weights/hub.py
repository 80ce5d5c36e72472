"""Whether the Hugging Face hub can be asked for a model now, decided in seconds.

Left to itself, ``from_pretrained`` on an unreachable hub retries each file five times with
back-off (about 30 s, each attempt printed) before it looks in the local cache. So before a hub
id is loaded, offline mode (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``) is read and, when it
is off, the endpoint gets one request with a short timeout through huggingface_hub's own HTTP
session (its proxies, certificates and ``HF_ENDPOINT``). When the hub cannot be asked, the model
is loaded from the hub cache alone, or the load fails at once with the reason. Any answer, even
an HTTP error, counts as reachable: the ordinary hub path then runs unchanged.
"""

from __future__ import annotations

import functools
import threading

from huggingface_hub import constants
from huggingface_hub.utils import get_session

PROBE_TIMEOUT_S = 3.0


def hub_unavailable() -> str | None:
    """Why the hub cannot be asked for files now, or None when it can."""
    if constants.HF_HUB_OFFLINE:
        return "offline mode is set (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE)"
    return _probe(constants.ENDPOINT)


@functools.cache
def _probe(endpoint: str) -> str | None:
    """One request to ``endpoint``, answered within PROBE_TIMEOUT_S, once per process.

    The request runs in a daemon thread, so a name lookup that hangs (which no HTTP timeout
    bounds) cannot hold the caller longer than the timeout either.
    """
    outcome: list[str | None] = []

    def ask() -> None:
        try:
            get_session().head(endpoint, timeout=PROBE_TIMEOUT_S)
        # The hub's HTTP client differs between versions (requests, httpx, httpx2), and so do
        # its error classes; any failure to get an answer means the hub cannot be used now.
        except Exception as error:
            outcome.append(f"{endpoint} did not answer: {type(error).__name__}: {error}")
        else:
            outcome.append(None)

    thread = threading.Thread(target=ask, name="hub-probe", daemon=True)
    thread.start()
    thread.join(PROBE_TIMEOUT_S + 1.0)
    if not outcome:
        return f"{endpoint} did not answer within {PROBE_TIMEOUT_S:.0f} s"
    return outcome[0]
