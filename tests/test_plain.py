"""``tune``, the plain run, on real benchmark data: run directory, selection by dev, artifact."""

from __future__ import annotations

import json
import os

import pytest
import torch
import yaml

from llm_catalyst import load_run_config, load_tune_config, tune
from llm_catalyst.backbones import BackboneConfig, build_backbone
from llm_catalyst.data.config import load_splits
from llm_catalyst.data.registry import get_task
from llm_catalyst.prompts.artifact import load_prompt
from llm_catalyst.training.scoring import evaluate


def _config(tmp_path, shared_data_dir, **overrides):
    values = {
        "data.task": "sst2",
        "data.data_dir": str(shared_data_dir),
        "data.shots": 4,
        "backbone.model": "tiny-causal-lm",
        "train.steps": 6,
        "train.eval_every": 3,
        "train.batch_size": 4,
        "train.progress": False,
        "max_test_examples": 40,
        "output_dir": str(tmp_path),
    }
    values.update(overrides)
    return load_tune_config(None, values)


def test_tune_writes_a_complete_run_directory(tmp_path, shared_data_dir):
    config = _config(tmp_path, shared_data_dir)
    result = tune(config)
    run = result.run_dir
    assert {p.name for p in run.iterdir()} >= {
        "config.yaml",
        "run.json",
        "events.jsonl",
        "results.json",
        "artifact",
    }
    assert yaml.safe_load((run / "config.yaml").read_text()) == config.model_dump(mode="json")
    info = json.loads((run / "run.json").read_text())
    assert info["seed"] == 1 and info["protocol"] == "fewshot"
    assert info["versions"]["torch"].startswith("2.")
    assert "finished_at" in info
    # what else the machine ran, so a wall-clock figure can be read; the thread count sets the
    # order of float sums, so a rerun that matches bit for bit needs it
    assert info["cpus"] == os.cpu_count()
    assert info["torch_threads"] == torch.get_num_threads()
    assert len(info["load_average_at_start"]) == len(info["load_average_at_finish"]) == 3
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("train_step") == 6
    assert [e["step"] for e in events if e["event"] == "dev_eval"] == [0, 3, 6]
    splits = next(e for e in events if e["event"] == "splits")
    assert (splits["train"], splits["dev"], splits["test"]) == (8, 8, 40)
    results = json.loads((run / "results.json").read_text())
    assert results == result.results.model_dump(mode="json") and results["method"] == "plain"
    assert results["test"]["n"] == 40
    assert results["best_step"] in {0, 3, 6}
    assert results["zero_shot_test"]["n"] == 40


def test_the_saved_prompt_is_the_one_selected_on_dev(tmp_path, shared_data_dir):
    config = _config(tmp_path, shared_data_dir, **{"train.lr": 0.5, "evaluate_zero_shot": False})
    result = tune(config)
    backbone = build_backbone(BackboneConfig(model="tiny-causal-lm"), get_task("sst2"))
    artifact = load_prompt(result.run_dir / "artifact", backbone)
    dev_events = [
        json.loads(line)
        for line in (result.run_dir / "events.jsonl").read_text().splitlines()
        if '"dev_eval"' in line
    ]
    best = max(dev_events, key=lambda e: (e["accuracy"], -e["loss"]))
    results = result.results.model_dump()
    assert results["best_step"] == best["step"]
    assert results["dev"]["loss"] == pytest.approx(best["loss"])
    rescored = evaluate(backbone, artifact.prompt.embeddings, load_splits(config.data).dev)
    assert rescored.loss == pytest.approx(results["dev"]["loss"], abs=1e-5)
    assert artifact.metrics["test"]["accuracy"] == pytest.approx(results["test"]["accuracy"])
    assert results["zero_shot_test"] is None


def test_encoder_head_run_saves_the_head(tmp_path, shared_data_dir):
    config = _config(
        tmp_path, shared_data_dir, **{"data.task": "rte", "backbone.model": "tiny-encoder"}
    )
    result = tune(config)
    artifact = load_prompt(result.run_dir / "artifact")
    assert artifact.head_state, "the trained linear head must be saved with the prompt"


@pytest.mark.slow
def test_smollm2_tuning_lowers_dev_loss_on_sst2(tmp_path, shared_data_dir):
    config = _config(
        tmp_path,
        shared_data_dir,
        **{
            "backbone.model": "smollm2-135m-instruct",
            "data.shots": 4,
            "train.steps": 5,
            "train.eval_every": 5,
            "train.batch_size": 8,
            "train.lr": 0.01,
            "max_test_examples": 32,
            "evaluate_zero_shot": False,
        },
    )
    result = tune(config)
    dev = [
        json.loads(line)
        for line in (result.run_dir / "events.jsonl").read_text().splitlines()
        if '"dev_eval"' in line
    ]
    assert dev[-1]["loss"] < dev[0]["loss"]


def test_tune_runs_any_run_config_as_plain(tmp_path, shared_data_dir):
    values = {"data.task": "sst2", "data.data_dir": str(shared_data_dir), "data.shots": 2}
    values |= {"backbone.model": "tiny-causal-lm", "train.steps": 2, "max_test_examples": 4}
    config = load_run_config(None, {**values, "train.progress": False, "output_dir": tmp_path})
    assert config.method == "catalyst"
    result = tune(config)
    assert result.results.method == "plain"
    recorded = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert (recorded["method"], recorded["loop"]["rounds"]) == ("plain", 0)
