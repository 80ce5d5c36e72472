"""Experiment files: cells as a pure function of the file, the task, the arm and the seed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llm_catalyst.errors import ConfigError
from llm_catalyst.experiments.experiment import Experiment
from llm_catalyst.experiments.grid import llm_plan
from llm_catalyst.experiments.sweep import sweep_cells

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, tree: dict) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    return path


def _tree(**extra) -> dict:
    return {
        "run": {"data": {"shots": 4}, "train": {"steps": 8, "lr": 0.003}},
        "tasks": {"sst2": {"train.lr": 0.03}, "mr": None},
        "arms": {
            "plain": {"method": "plain"},
            "paper": {"method": "catalyst", "loop.selection": "first"},
        },
        "seeds": [1, 2],
        **extra,
    }


def test_cells_apply_run_then_task_then_arm_then_command_line(tmp_path):
    experiment = Experiment.load(_write(tmp_path, _tree()))
    cells = experiment.cells(tmp_path / "out", overrides={"train.steps": 6})
    assert [c.name for c in cells] == [
        f"{task}/{arm}/seed{seed}"
        for task in ("sst2", "mr")
        for arm in ("plain", "paper")
        for seed in (1, 2)
    ]
    by_name = {c.name: c.config for c in cells}
    sst2 = by_name["sst2/paper/seed2"]
    assert (sst2.data.task, sst2.data.seed, sst2.data.shots) == ("sst2", 2, 4)
    assert (sst2.method, sst2.arm, sst2.loop.selection) == ("catalyst", "paper", "first")
    assert sst2.train.lr == 0.03, "the task's own learning rate"
    assert by_name["mr/plain/seed1"].train.lr == 0.003, "the run section's rate"
    assert all(c.config.train.steps == 6 for c in cells), "the command line wins"
    assert all(c.config.output_dir == tmp_path / "out" for c in cells)


def test_cells_pick_tasks_arms_and_seeds_and_name_unknown_ones(tmp_path):
    experiment = Experiment.load(_write(tmp_path, _tree()))
    cells = experiment.cells(tmp_path, tasks=["mr"], arms=["paper"], seeds=[2])
    assert [c.name for c in cells] == ["mr/paper/seed2"]
    with pytest.raises(ConfigError, match="has no arm magic; it defines plain, paper"):
        experiment.cells(tmp_path, arms=["magic"])


def test_bad_files_are_refused_with_the_key_at_fault(tmp_path):
    with pytest.raises(ConfigError, match="baseline 'control' is not one of the arms"):
        Experiment.load(_write(tmp_path, _tree(baseline="control")))
    with pytest.raises(ConfigError, match="arms: Field required"):
        tree = _tree()
        del tree["arms"]
        Experiment.load(_write(tmp_path, tree))
    experiment = Experiment.load(_write(tmp_path, _tree(arms={"plain": {"method": "magic"}})))
    with pytest.raises(ConfigError, match="unknown method 'magic'"):
        experiment.cells(tmp_path)


def test_a_custom_task_is_a_task_entry_with_its_spec(tmp_path):
    spec = {
        "name": "reviews",
        "description": "Short reviews.",
        "train": str(tmp_path / "train.csv"),
        "holdout": 4,
        "columns": {"text": "text"},
        "label_names": ["negative", "positive"],
        "label_words": [" bad", " good"],
        "template": "{text} It was",
        "text_fields": ["text"],
    }
    tree = _tree(tasks={"reviews": {"data.task": spec}})
    (cell,) = Experiment.load(_write(tmp_path, tree)).cells(tmp_path, arms=["plain"], seeds=[1])
    assert cell.name == "reviews/plain/seed1"
    assert cell.config.data.task.name == "reviews"


def test_sweep_and_ablation_cells_never_score_the_test_split(tmp_path):
    tree = _tree(
        sweep={"learning_rates": [0.01, 0.1], "seeds": [101], "validation_examples": 50},
        ablation={
            "tasks": ["sst2"],
            "seeds": [1],
            "base_arm": "paper",
            "arms": {"short": {"loop.margin": 0.5}},
            "validation_examples": 40,
        },
    )
    experiment = Experiment.load(_write(tmp_path, tree))
    sweep = sweep_cells(experiment, tmp_path)
    assert [c.name for c in sweep] == [
        "sst2/lr0.01/seed101",
        "sst2/lr0.1/seed101",
        "mr/lr0.01/seed101",
        "mr/lr0.1/seed101",
    ]
    assert all(c.config.protocol == "validation" for c in sweep)
    assert all(c.config.max_test_examples == 50 and c.config.method == "plain" for c in sweep)
    assert [c.config.train.lr for c in sweep] == [0.01, 0.1, 0.01, 0.1], "over the task's rate"
    (ablation,) = experiment.ablation_cells(tmp_path)
    assert ablation.name == "sst2/short/seed1"
    config = ablation.config
    assert (config.protocol, config.max_test_examples) == ("validation", 40)
    assert (config.method, config.loop.selection, config.loop.margin) == ("catalyst", "first", 0.5)


def test_the_committed_experiment_file_loads():
    experiment = Experiment.load(REPO / "configs" / "experiment.yaml")
    cells = experiment.cells(Path("runs/experiment"))
    assert len(cells) == 6 * 6 * 5
    arms = {c.config.arm for c in cells}
    assert arms == {
        "plain",
        "plain-text-init",
        "random-restart",
        "llm-only",
        "catalyst-paper",
        "catalyst",
    }
    assert len(sweep_cells(experiment, Path("runs/sweep"))) == 6 * 4 * 2
    assert len(experiment.ablation_cells(Path("runs/ablation"))) == 2 * 4 * 3


def test_the_llm_plan_counts_the_init_round_and_gives_each_distinct_plan_a_line():
    """catalyst asks in an initial round and 2 regular ones, llm-only in its 3 rounds (it has no
    gradient step to start), catalyst-paper in 2: the old line took the first cell's 2 rounds."""
    experiment = Experiment.load(REPO / "configs" / "experiment.yaml")
    plan = llm_plan(experiment.cells(Path("runs/experiment"), tasks=["sst2"]))
    assert plan is not None
    assert plan.splitlines() == [
        "10 cell(s) call the LLM; per cell: LLM plan: 3 round(s) x up to 1 call(s) = at most 3 "
        "LLM call(s)",
        "5 cell(s) call the LLM; per cell: LLM plan: 2 round(s) x up to 1 call(s) = at most 2 "
        "LLM call(s)",
    ]
    assert llm_plan(experiment.cells(Path("runs/experiment"), arms=["plain"])) is None


def test_null_in_the_file_or_on_the_command_line_sets_null(tmp_path):
    tree = _tree()
    tree["arms"]["plain"]["train.max_grad_norm"] = None
    experiment = Experiment.load(_write(tmp_path, tree))
    cells = {c.name: c.config for c in experiment.cells(tmp_path / "out", seeds=[1])}
    assert cells["sst2/plain/seed1"].train.max_grad_norm is None, "the arm's null"
    assert cells["sst2/paper/seed1"].train.max_grad_norm == 1.0
    overridden = experiment.cells(tmp_path / "out", overrides={"train.max_grad_norm": None})
    assert {c.config.train.max_grad_norm for c in overridden} == {None}, "the command line's"
