"""A model name that cannot load fails in seconds when the hub cannot be asked, and says why.

The tests run with HF_HUB_OFFLINE=1 (tests/conftest.py). The unreachable hub is a closed port on
loopback given as HF_ENDPOINT to a child process: huggingface_hub reads it only at import.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from llm_catalyst.errors import BackboneError
from llm_catalyst.weights.presets import load_pretrained_causal_lm, load_pretrained_encoder

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("load", [load_pretrained_causal_lm, load_pretrained_encoder])
def test_offline_an_unknown_name_fails_at_once_naming_it_and_the_fix(load):
    start = time.monotonic()
    with pytest.raises(BackboneError) as error:
        load("no-such-org/made-up-model")
    assert time.monotonic() - start < 2.0
    text = str(error.value)
    assert "'no-such-org/made-up-model'" in text
    assert "offline mode is set (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE)" in text
    assert "couldn't connect" not in text  # transformers' advice does not apply offline
    assert "fix: use a preset (smollm2-135m-instruct" in text


def test_a_misspelt_preset_gets_the_preset_it_resembles():
    with pytest.raises(BackboneError, match="did you mean 'smollm2-135m-instruct'"):
        load_pretrained_causal_lm("smollm2-135m-instruc")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _hub_cache_with(tmp_path: Path, repo: str) -> Path:
    """A hub cache (huggingface_hub's layout) holding the tiny causal LM under ``repo``."""
    cache = tmp_path / "hub"
    snapshot = cache / f"models--{repo.replace('/', '--')}" / "snapshots" / ("0" * 40)
    model, tokenizer = load_pretrained_causal_lm("tiny-causal-lm")
    model.save_pretrained(snapshot)
    tokenizer.save_pretrained(snapshot)
    refs = snapshot.parent.parent / "refs"
    refs.mkdir()
    (refs / "main").write_text("0" * 40)
    return cache


def test_an_unreachable_hub_is_not_retried(tmp_path):
    """A cached hub id still loads and an unknown one fails, both in seconds (the hub's own
    retries take about 30 s and print every attempt)."""
    child = textwrap.dedent(
        """
        import json, sys, time
        from llm_catalyst.errors import BackboneError
        from llm_catalyst.weights.presets import load_pretrained_causal_lm

        start = time.monotonic()
        model, _ = load_pretrained_causal_lm("test-org/tiny")
        cached = time.monotonic() - start
        start = time.monotonic()
        try:
            load_pretrained_causal_lm("no-such-org/made-up-model")
        except BackboneError as error:
            message = str(error)
        print(json.dumps({"cached_s": cached, "unknown_s": time.monotonic() - start,
                          "layers": model.config.num_hidden_layers, "message": message}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")}
    env.update(
        HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}",
        HF_HUB_CACHE=str(_hub_cache_with(tmp_path, "test-org/tiny")),
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]),
    )
    done = subprocess.run(
        [sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["layers"] == 2
    assert report["cached_s"] < 10 and report["unknown_s"] < 5, report
    assert "'no-such-org/made-up-model'" in report["message"]
    assert "did not answer" in report["message"]
    assert "fix:" in report["message"]
    assert "Retrying" not in done.stderr
