"""The ablation's pre-registered rule, applied to run directories whose scores are known."""

from __future__ import annotations

from pathlib import Path

from llm_catalyst.experiments.ablation import choice_markdown, choose_variant, write_choice
from llm_catalyst.experiments.experiment import AblationConfig
from llm_catalyst.experiments.results import collect_runs
from tests.experiments.synthetic_runs import write_run

ABLATION = AblationConfig(
    tasks=["sst2", "mr"],
    seeds=[1, 2],
    arms={
        "trajectory": {"llm.proposer.ingredients": ["trajectory"]},
        "task": {"llm.proposer.ingredients": ["usage", "exemplars"]},
        "all": {"llm.proposer.ingredients": ["usage", "exemplars", "trajectory", "errors"]},
    },
)


def _runs(root: Path, accuracies: dict[str, list[float]], protocol: str = "validation"):
    for arm, values in accuracies.items():
        for i, accuracy in enumerate(values):
            task, seed = ("sst2", "mr")[i % 2], 1 + i // 2
            write_run(
                root / arm / f"{task}-{seed}",
                task=task,
                seed=seed,
                method="catalyst",
                arm=arm,
                protocol=protocol,
                accuracy=accuracy,
            )
    return collect_runs(root).finished


def test_the_best_mean_wins_when_no_simpler_variant_is_close(tmp_path):
    runs = _runs(
        tmp_path,
        {"trajectory": [0.70, 0.70, 0.70, 0.70], "task": [0.72] * 4, "all": [0.80] * 4},
    )
    choice = choose_variant(runs, ABLATION)
    assert choice is not None
    assert (choice.chosen, choice.best) == ("all", "all")
    assert {s.arm: round(s.accuracy, 3) for s in choice.scores} == {
        "trajectory": 0.70,
        "task": 0.72,
        "all": 0.80,
    }


def test_a_variant_with_fewer_ingredients_within_the_tolerance_wins(tmp_path):
    runs = _runs(
        tmp_path,
        {"trajectory": [0.776] * 4, "task": [0.779] * 4, "all": [0.780] * 4},
    )
    choice = choose_variant(runs, ABLATION)
    assert choice is not None
    assert (choice.chosen, choice.best) == ("trajectory", "all")
    assert "chosen: trajectory (fewer ingredients, within 0.5 points of the best, all)" in (
        choice_markdown(choice)
    )


def test_listed_first_prefers_the_first_variant_within_the_tolerance(tmp_path):
    """The race's recipes are listed cheapest first: within the tolerance the cheaper one
    wins, beyond it the best does."""
    race = AblationConfig(
        tasks=["sst2", "mr"],
        seeds=[1, 2],
        base_arm="race",
        arms={"cheap": {"race.rung_steps": 2}, "mid": {}, "dear": {"race.rung_steps": 8}},
        tolerance=0.01,
        tie_break="listed_first",
    )
    close = _runs(tmp_path / "close", {"cheap": [0.771] * 4, "mid": [0.70] * 4, "dear": [0.78] * 4})
    choice = choose_variant(close, race)
    assert choice is not None and (choice.chosen, choice.best) == ("cheap", "dear")
    assert "chosen: cheap (listed first, within 1.0 points of the best, dear)" in (
        choice_markdown(choice)
    )
    apart = _runs(tmp_path / "apart", {"cheap": [0.76] * 4, "mid": [0.775] * 4, "dear": [0.78] * 4})
    choice = choose_variant(apart, race)
    assert choice is not None and (choice.chosen, choice.best) == ("mid", "dear")


def test_a_variant_with_fewer_finished_pairs_cannot_win_by_luck(tmp_path):
    runs = _runs(tmp_path, {"trajectory": [0.70] * 4, "all": [0.95, 0.95]})
    choice = choose_variant(runs, ABLATION)
    assert choice is not None
    assert choice.chosen == "trajectory"
    assert {s.arm: len(s.pairs) for s in choice.scores} == {"trajectory": 4, "all": 2}


def test_runs_scored_on_test_never_inform_the_choice(tmp_path):
    assert choose_variant(_runs(tmp_path, {"all": [0.9] * 4}, protocol="fewshot"), ABLATION) is None


def test_the_choice_is_kept_beside_the_runs(tmp_path):
    choice = choose_variant(_runs(tmp_path / "runs", {"task": [0.7] * 4}), ABLATION)
    assert choice is not None
    path = write_choice(tmp_path, choice)
    assert '"chosen": "task"' in path.read_text()
