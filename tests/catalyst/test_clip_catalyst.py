"""The catalyst loop and plain tuning on EuroSAT with the tiny random CLIP and a scripted LLM.

The LLM answers with CLIP templates ("... {class}."): their context words become the restart.
"""

from __future__ import annotations

import json
from pathlib import Path

from llm_catalyst import load_tune_config, tune
from llm_catalyst.backbones import BackboneConfig, build_backbone
from llm_catalyst.catalyst.config import load_run_config
from llm_catalyst.catalyst.runner import run
from llm_catalyst.data.registry import get_task
from llm_catalyst.experiments.results import read_events
from llm_catalyst.prompts.projection import FitPolicy, Vocabulary, embed_text, project
from tests.catalyst.small_runs import run_settings, script

TEMPLATES = [
    "a satellite photo of a {class}.",
    "an aerial view of {class} land.",
    "a centered photo of a {class}.",
    "a top view of the {class}.",
]


def _settings(tmp_path: Path, data_dir: Path, **extra) -> dict:
    path = script(tmp_path, [json.dumps(TEMPLATES[:2]), json.dumps(TEMPLATES[2:])])
    return run_settings(
        tmp_path,
        data_dir,
        path,
        **{
            "data.task": "eurosat",
            "data.shots": 1,
            "backbone.model": "tiny-clip",
            "backbone.clip.cache_dir": str(tmp_path / "features"),
            "prompt.length": 4,
            "prompt.init": "text",
            "prompt.init_text": "a photo of a {class}.",
            "train.lr": 0.02,
            "loop.selection": "first",
            "max_test_examples": 40,
            **extra,
        },
    )


def test_catalyst_runs_on_eurosat_and_restarts_from_the_llms_template(tmp_path, shared_data_dir):
    result = run(load_run_config(None, _settings(tmp_path, shared_data_dir)))
    results = result.results.model_dump()
    assert results["compute"]["gradient_steps"] == 8
    assert results["test"]["n"] == 40 and results["dev"]["n"] == 10
    rounds = read_events(result.run_dir).rounds
    assert [[c.text for c in r.proposals] for r in rounds] == [TEMPLATES[:2], TEMPLATES[2:]]
    assert all(c.dev_loss is not None for r in rounds for c in r.proposals)
    calls = (result.run_dir / "llm_calls.jsonl").read_text().splitlines()
    meta_prompt = json.loads(calls[0])["request"]["messages"][-1]["content"]
    assert get_task("eurosat").description in meta_prompt

    # The restart of round 1 is the context of the first template, fitted to the 4 slots.
    backbone = build_backbone(BackboneConfig(model="tiny-clip"), get_task("eurosat"))
    vocab = Vocabulary.of(backbone)
    fitted = embed_text(TEMPLATES[0], vocab, 4, FitPolicy.parse("truncate+pad_repeat"))
    assert project(fitted.embeddings, vocab).text == "a satellite photo of"
    second_stage = [
        json.loads(line)
        for line in (result.run_dir / "events.jsonl").read_text().splitlines()
        if json.loads(line)["event"] == "trajectory"
    ][1]["points"]
    assert second_stage[0]["text"] == "a satellite photo of"
    assert results["projected_text"]
    assert (result.run_dir / "artifact" / "adapter_model.safetensors").is_file()


def test_plain_tuning_on_eurosat_with_the_zero_shot_baseline(tmp_path, shared_data_dir):
    config = load_tune_config(
        None,
        {
            "data": {"task": "eurosat", "data_dir": str(shared_data_dir), "shots": 1},
            "backbone": {"model": "tiny-clip", "clip": {"cache_dir": str(tmp_path / "f")}},
            "prompt": {"length": 4},
            "train": {"steps": 3, "batch_size": 5, "eval_every": 3, "progress": False},
            "output_dir": str(tmp_path / "runs"),
            "max_test_examples": 30,
        },
    )
    results = tune(config).results.model_dump()
    assert results["zero_shot_test"] is not None and results["zero_shot_test"]["n"] == 30
    assert results["test"]["n"] == 30
    assert results["projected_text"] == results["projected_text"].replace("</w>", "")
