"""The OpenAI-compatible client against a real server: llama.cpp (xllamacpp) serving SmolLM2.

Each server runs in its own process on 127.0.0.1 on a free port and is stopped by the fixture.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from llm_catalyst.data.registry import get_task
from llm_catalyst.llm.client import LLMRequest
from llm_catalyst.llm.config import LLMConfig, SamplingConfig
from llm_catalyst.llm.gateway import build_gateway
from llm_catalyst.llm.openai_compat import OpenAICompatClient
from llm_catalyst.llm.proposer import Proposer, ScoredPrompt

pytestmark = pytest.mark.server

MODEL = "smollm2-135m-instruct"
# How long the server may take to start or to answer before it counts as dead: far beyond what
# it needs even on a fully loaded machine, so that only a server that never answers fails a test.
PATIENCE_S = 300


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    url: str
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log: Path) -> Server:
    port = free_port()
    command = [
        sys.executable,
        str(Path(__file__).with_name("xllamacpp_server.py")),
        MODEL,
        str(port),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return Server(process, port, url, log)
        except OSError:
            time.sleep(0.3)
    process.kill()
    pytest.fail(f"the server did not answer within {PATIENCE_S} s:\n{log.read_text()[-3000:]}")


def stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)


def wait_for_a_connection(port: int) -> None:
    """Until a client is connected to ``port`` on loopback. A stopped server's kernel still
    accepts the connection (it waits in the listen queue, the server side ESTABLISHED), so this
    is the moment the request is on its way, however slowly the client got there."""
    wanted = f":{port:04X}"
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        rows = [row.split() for row in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        if any(local.endswith(wanted) and state == "01" for _, local, _, state, *_ in rows):
            return
        time.sleep(0.05)
    pytest.fail(f"no client connected to port {port} within {PATIENCE_S} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("llama") / "server.log")
    yield running
    stop(running)


def config(url: str, tmp_path: Path, **extra) -> LLMConfig:
    data = {
        "backend": "openai",
        "base_url": url,
        "model": MODEL,
        "timeout_s": PATIENCE_S,
        "cache": {"enabled": False, "directory": str(tmp_path / "cache")},
        "call_log": str(tmp_path / "calls.jsonl"),
        "proposer": {"num_proposals": 3, "max_words": 15, "template": "list"},
        "sampling": {"max_tokens": 80, "seed": 0},
    }
    data.update(extra)
    return LLMConfig.model_validate(data)


HISTORY = [
    ScoredPrompt("terrible great movie", 0.8, 0.55),
    ScoredPrompt("Is this movie review positive or negative?", 0.5, 0.75),
]


def test_proposals_from_a_real_server_are_parsed(server, tmp_path) -> None:
    cfg = config(
        server.url,
        tmp_path,
        proposer={"num_proposals": 3, "max_words": 15, "template": "list", "calls_per_round": 3},
    )
    proposer = Proposer(build_gateway(cfg), cfg)
    result = proposer.propose(get_task("sst2"), HISTORY, round_index=0)
    assert result.status in ("ok", "partial"), (result.reason, result.raw_answers)
    assert result.proposals
    assert all(len(p.split()) <= 15 for p in result.proposals)
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert (tmp_path / "calls.jsonl").read_text().count('"outcome": "ok"') == result.calls


def test_seeds_are_respected(server) -> None:
    client = OpenAICompatClient(server.url, MODEL, timeout_s=PATIENCE_S)
    messages = ({"role": "user", "content": "Write one sentence about the sea."},)

    def sample(seed: int) -> str:
        params = SamplingConfig(temperature=1.0, top_p=1.0, max_tokens=24, seed=seed)
        return client.complete(LLMRequest(messages, params)).texts[0]

    # The server reuses the KV cache of a repeated prompt prefix, and logits over a reused
    # prefix differ slightly from a fresh evaluation: the first call warms the cache so every
    # compared call sees the same server state.
    sample(0)
    first = sample(7)
    assert first
    assert sample(8) != first
    assert sample(7) == first


def test_a_server_killed_mid_call_is_retried_then_the_round_is_skipped(tmp_path) -> None:
    doomed = start_server(tmp_path / "doomed.log")
    try:
        cfg = config(
            doomed.url,
            tmp_path,
            retry={"max_attempts": 3, "initial_backoff_s": 0.2, "max_backoff_s": 0.5},
            sampling={"max_tokens": 1500, "seed": 0, "temperature": 1.0},
            proposer={"num_proposals": 50, "max_words": 15, "template": "list"},
        )
        proposer = Proposer(build_gateway(cfg), cfg)
        outcome: list = []
        call = threading.Thread(
            target=lambda: outcome.append(proposer.propose(get_task("sst2"), HISTORY, 0))
        )
        # Freeze the server first, so the request reaches it but can never be answered however
        # fast the model is; then kill it while the client waits for the answer.
        doomed.process.send_signal(signal.SIGSTOP)
        call.start()
        wait_for_a_connection(doomed.port)
        assert call.is_alive(), "the call ended before the server was killed"
        doomed.process.kill()
        call.join(timeout=PATIENCE_S)
        assert not call.is_alive()
    finally:
        stop(doomed)
    (result,) = outcome
    assert result.status == "unavailable" and result.skipped
    assert "gave up after 3 attempt(s)" in result.reason
    (record,) = proposer.gateway.log.records
    assert (record.outcome, record.attempts) == ("unavailable", 3)


def test_a_real_llama_cpp_server_constrains_a_structured_request(server, tmp_path) -> None:
    """llama.cpp's server honours response_format's JSON schema: the answer is the bounded list
    and nothing else, and the client never had to fall back."""
    cfg = config(
        server.url,
        tmp_path,
        proposer={"num_proposals": 3, "max_words": 8, "template": "catalyst"},
        sampling={"max_tokens": 120, "seed": 2, "temperature": 1.0},
    )
    proposer = Proposer(build_gateway(cfg), cfg)
    result = proposer.propose(get_task("sst2"), HISTORY, round_index=0)
    (answer,) = result.raw_answers
    items = json.loads(answer)
    assert 1 <= len(items) <= 3
    assert all(isinstance(s, str) and 1 <= len(s) <= 8 * 12 for s in items)
    (record,) = proposer.gateway.log.records
    assert record.structured and not record.structure_refused
