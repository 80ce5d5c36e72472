"""``sweep``, ``compare --experiment`` and ``compare --ablation``, and custom tasks in a grid,
run for real on the tiny causal LM with a scripted LLM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from llm_catalyst.commands import app
from llm_catalyst.experiments.results import collect_runs
from tests.catalyst.small_runs import ANSWER, run_settings, script


def _nested(dotted: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def _experiment(tmp_path: Path, data_dir: Path) -> Path:
    settings = run_settings(tmp_path, data_dir, script(tmp_path, [ANSWER] * 40))
    for key in ("data.task", "output_dir"):
        settings.pop(key)
    tree = {
        "run": _nested(settings),
        "tasks": {"sst2": {"train.lr": 0.01}},
        "arms": {"plain": {"method": "plain"}, "catalyst": {"method": "catalyst"}},
        "seeds": [1, 2],
        "contrasts": [["catalyst", "plain"]],
        "sweep": {"learning_rates": [0.003, 0.1], "seeds": [101], "validation_examples": 24},
        "ablation": {
            "tasks": ["sst2"],
            "seeds": [1],
            "arms": {"first": {"loop.selection": "first"}, "best": {"loop.selection": "best"}},
            "validation_examples": 24,
        },
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    return path


def test_sweep_then_experiment_then_ablation(tmp_path, shared_data_dir):
    experiment = _experiment(tmp_path, shared_data_dir)
    sweep = CliRunner().invoke(
        app, ["sweep", "--experiment", str(experiment), "--output", str(tmp_path / "sweep")]
    )
    assert sweep.exit_code == 0, sweep.output
    choice = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    scores = choice["sst2"]["scores"]
    assert [s["lr"] for s in scores] == [0.003, 0.1]
    best = max(scores, key=lambda s: (s["accuracy"], -s["loss"]))
    assert choice["sst2"]["lr"] == best["lr"]
    assert f"| sst2 | {scores[0]['accuracy']:.3f}" in sweep.output
    swept = collect_runs(tmp_path / "sweep").finished
    assert {r.protocol for r in swept} == {"validation"} and {r.test.n for r in swept} == {24}

    grid = tmp_path / "grid"
    args = ["compare", "--experiment", str(experiment), "--output", str(grid)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    runs = collect_runs(grid).finished
    assert sorted((r.arm_name, r.seed) for r in runs) == [
        ("catalyst", 1),
        ("catalyst", 2),
        ("plain", 1),
        ("plain", 2),
    ]
    assert {r.protocol for r in runs} == {"fewshot"}
    assert "| sst2 | catalyst | 2 |" in first.output
    assert "| catalyst − plain | all | 2 |" in first.output
    again = CliRunner().invoke(app, args)
    assert "grid: 4 cell(s), 4 finished, 0 to run" in again.output

    ablation = CliRunner().invoke(
        app,
        ["compare", "--experiment", str(experiment), "--ablation", "--output", str(tmp_path / "a")],
    )
    assert ablation.exit_code == 0, ablation.output
    assert "Δ vs first" in ablation.output and "| sst2 | best | 1 |" in ablation.output
    assert {r.protocol for r in collect_runs(tmp_path / "a").finished} == {"validation"}
    # the rule's verdict on the two variants (no ingredients set: the better mean wins)
    verdict = json.loads((tmp_path / "a" / "ablation.json").read_text())
    assert f"chosen: {verdict['chosen']}" in ablation.output
    assert {s["arm"] for s in verdict["scores"]} == {"first", "best"}


def _custom_config(tmp_path: Path, data_dir: Path, name: str, words: tuple[str, str]) -> Path:
    rows = [f"{w} film number {i}" for i in range(12) for w in words]
    train = tmp_path / f"{name}.csv"
    train.write_text(
        "text,label\n" + "".join(f"{row},{i % 2}\n" for i, row in enumerate(rows)),
        encoding="utf-8",
    )
    settings = run_settings(tmp_path, data_dir, script(tmp_path, [ANSWER] * 8, f"{name}.json"))
    settings.pop("output_dir")
    settings |= {
        "train.steps": 4,
        "loop.rounds": 1,
        "loop.stage_steps": 2,
        "data.task": {
            "name": name,
            "description": "Short film reviews.",
            "train": str(train),
            "holdout": 8,
            "columns": {"text": "text"},
            "label_names": ["negative", "positive"],
            "label_words": [" bad", " good"],
            "template": "{text} It was",
            "text_fields": ["text"],
        },
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(_nested(settings), sort_keys=False), encoding="utf-8")
    return path


def test_compare_runs_custom_tasks_one_config_per_task(tmp_path, shared_data_dir):
    first = _custom_config(tmp_path, shared_data_dir, "films", ("dull", "fine"))
    second = _custom_config(tmp_path, shared_data_dir, "plays", ("boring", "grand"))
    grid = tmp_path / "grid"
    outcome = CliRunner().invoke(
        app,
        [
            "compare",
            "--config",
            str(first),
            "--config",
            str(second),
            "--methods",
            "plain,catalyst",
            "--seeds",
            "1",
            "--output",
            str(grid),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    names = sorted(str(p.relative_to(grid).parent) for p in grid.rglob("results.json"))
    assert names == [
        "films/catalyst/seed1",
        "films/plain/seed1",
        "plays/catalyst/seed1",
        "plays/plain/seed1",
    ]
    assert (
        "| films | catalyst | 1 |" in outcome.output and "| plays | plain | 1 |" in outcome.output
    )
    one = CliRunner().invoke(
        app, ["compare", "--config", str(first), "--methods", "plain", "--output", str(grid)]
    )
    assert one.exit_code == 0, one.output
    assert "grid: 3 cell(s), 1 finished, 2 to run" in one.output, "seeds 1-3 of the one task"
    report = CliRunner().invoke(app, ["report", str(grid)])
    assert report.exit_code == 0, report.output
    assert "films" in (grid / "report" / "report.html").read_text(encoding="utf-8")
