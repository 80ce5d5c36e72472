"""Data-parallel training: two CPU processes under ``accelerate launch`` against one process.

The launched tests start real processes (gloo over loopback) running the command-line
entry point, and compare their run directory with the one a single in-process run writes with
the same configuration and global batch. Batches of 5 split 3 + 2, and evaluation batches of
4 over 8 dev and 15 test examples leave the processes uneven shares.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from llm_catalyst import load_tune_config, tune
from llm_catalyst.backbones import BackboneConfig, build_backbone
from llm_catalyst.catalyst.config import load_run_config
from llm_catalyst.catalyst.runner import run
from llm_catalyst.distributed import Distributed
from llm_catalyst.training.config import TrainConfig
from llm_catalyst.training.trainer import PromptTrainer
from tests.catalyst.small_runs import ANSWER, run_settings, script

LAUNCH = [
    sys.executable,
    "-m",
    "accelerate.commands.launch",
    "--multi_gpu",  # torchrun's launcher: the only one that starts several CPU processes
    "--num_processes",
    "2",
    "--num_machines",
    "1",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
    "--main_process_port",
    "0",
]
UNEVEN = {"train.batch_size": 5, "train.eval_batch_size": 4, "max_test_examples": 15}


def _launch(command: str, settings: dict, cwd: Path) -> str:
    """Run ``llm-catalyst COMMAND`` on two processes; returns what they printed to stdout."""
    args = [f"--set={key}={value}" for key, value in settings.items()]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [*LAUNCH, "-m", "llm_catalyst", command, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _only_run_dir(output: Path) -> Path:
    (run_dir,) = [p for p in output.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return run_dir


def _events(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]


def _assert_same_run(two: Path, one: Path) -> None:
    """Same per-step losses (1e-5), same evaluations, each step logged once."""
    losses = [[e["loss"] for e in _events(d, "train_step")] for d in (two, one)]
    assert [e["step"] for e in _events(two, "train_step")] == list(range(1, len(losses[1]) + 1))
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)
    evals = [_events(d, "dev_eval") for d in (two, one)]
    assert [(e["step"], e["accuracy"], e["n"]) for e in evals[0]] == [
        (e["step"], e["accuracy"], e["n"]) for e in evals[1]
    ]
    assert [e["loss"] for e in evals[0]] == pytest.approx([e["loss"] for e in evals[1]], abs=1e-5)
    results = [json.loads((d / "results.json").read_text()) for d in (two, one)]
    for key in ("test", "dev", "zero_shot_test"):
        assert results[0][key]["n"] == results[1][key]["n"]
        assert results[0][key]["accuracy"] == results[1][key]["accuracy"]
        assert results[0][key]["loss"] == pytest.approx(results[1][key]["loss"], abs=1e-5)
    assert results[0]["best_step"] == results[1]["best_step"]
    assert (two / "artifact").is_dir()


@pytest.mark.slow
def test_two_processes_run_the_catalyst_like_one(tmp_path, shared_data_dir):
    steps = [ANSWER] * 4
    shared = {**UNEVEN, "method": "catalyst", "evaluate_zero_shot": True}
    two = run_settings(tmp_path, shared_data_dir, script(tmp_path, steps, "two.json"), **shared)
    two |= {"output_dir": str(tmp_path / "two"), "llm.cache.directory": str(tmp_path / "c2")}
    stdout = _launch("run", two, tmp_path)
    assert stdout.count("test accuracy") == 1, stdout  # the summary is printed once
    one = run_settings(tmp_path, shared_data_dir, script(tmp_path, steps, "one.json"), **shared)
    one |= {"output_dir": str(tmp_path / "one"), "llm.cache.directory": str(tmp_path / "c1")}
    run(load_run_config(None, one))

    launched, single = _only_run_dir(tmp_path / "two"), _only_run_dir(tmp_path / "one")
    _assert_same_run(launched, single)
    calls = (launched / "llm_calls.jsonl").read_text().splitlines()
    assert len(calls) == 2  # two rounds, one call each, by the main process only
    rounds = [[e["proposals"] for e in _events(d, "round")] for d in (launched, single)]
    assert len(rounds[0]) == 2 and all(rounds[0])
    assert [[p["text"] for p in r] for r in rounds[0]] == [
        [p["text"] for p in r] for r in rounds[1]
    ]


@pytest.mark.slow
def test_two_processes_tune_an_encoder_head_like_one(tmp_path, shared_data_dir):
    """The head's gradients are summed too (head dropout off: masks are drawn per process)."""
    settings = {
        "data.task": "sst2",
        "data.data_dir": str(shared_data_dir),
        "data.shots": 4,
        "backbone.model": "tiny-encoder",
        "backbone.head_dropout": 0.0,
        "train.steps": 6,
        "train.eval_every": 3,
        "train.lr": 0.05,
        "train.progress": False,
        **UNEVEN,
    }
    stdout = _launch("tune", {**settings, "output_dir": str(tmp_path / "two")}, tmp_path)
    assert stdout.count("test accuracy") == 1, stdout  # the summary is printed once
    tune(load_tune_config(None, {**settings, "output_dir": str(tmp_path / "one")}))
    _assert_same_run(_only_run_dir(tmp_path / "two"), _only_run_dir(tmp_path / "one"))


@pytest.fixture
def accelerator_of() -> Iterator:
    """Accelerators built in this process (one process, no launcher); state reset afterwards."""
    yield lambda **kwargs: Accelerator(cpu=True, **kwargs)
    AcceleratorState._reset_state(reset_partial_state=True)


def _losses(trainer: PromptTrainer, steps: int) -> list[float]:
    return [trainer.train_step().loss for _ in range(steps)]


def test_one_process_is_not_wrapped_without_a_launcher(monkeypatch):
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    dist = Distributed.from_environment(torch.device("cpu"))
    assert not dist.active and dist.world_size == 1 and dist.is_main
    assert dist.shard([1, 2, 3]) == [1, 2, 3]


def test_accumulation_splits_the_batch_without_changing_the_step(
    accelerator_of, sentiment_task, sentiment_examples
):
    """Micro-batches of 3 + 2 give the step of the batch of 5, head included.

    Head dropout is drawn per micro-batch, so it is off here, as documented."""
    config = TrainConfig(steps=4, batch_size=5, lr=0.05, progress=False)
    backbone_config = BackboneConfig(model="tiny-encoder", head_dropout=0.0)

    def train(dist: Distributed | None) -> tuple[list[float], torch.Tensor, dict]:
        backbone = build_backbone(backbone_config, sentiment_task)
        prompt = backbone.embedding_table[:4].clone()
        trainer = PromptTrainer(backbone, prompt, sentiment_examples, config, seed=0, dist=dist)
        return _losses(trainer, config.steps), trainer.current_prompt(), backbone.head_state()

    plain_losses, plain_prompt, plain_head = train(None)
    dist = Distributed(accelerator_of(gradient_accumulation_steps=2))
    assert dist.active and dist.accumulation_steps == 2
    losses, prompt, head = train(dist)
    assert losses == pytest.approx(plain_losses, abs=1e-6)
    assert torch.allclose(prompt, plain_prompt, atol=1e-6)
    for name, weight in plain_head.items():
        assert torch.allclose(head[name], weight, atol=1e-6), name


def test_bf16_autocast_trains_close_to_float32(
    accelerator_of, tiny_causal_backbone, sentiment_examples
):
    config = TrainConfig(steps=3, batch_size=4, lr=0.05, progress=False)
    prompt = tiny_causal_backbone.embedding_table[:4].clone()
    plain = _losses(PromptTrainer(tiny_causal_backbone, prompt, sentiment_examples, config, 0), 3)
    dist = Distributed(accelerator_of(mixed_precision="bf16"))
    trainer = PromptTrainer(tiny_causal_backbone, prompt, sentiment_examples, config, 0, dist=dist)
    mixed = _losses(trainer, 3)
    assert trainer.prompt.dtype == torch.float32  # autocast leaves the trained tensor alone
    assert mixed != plain  # the forward passes did run in bfloat16
    assert mixed == pytest.approx(plain, abs=2e-2)
