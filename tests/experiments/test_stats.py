from __future__ import annotations

from pathlib import Path

import pytest

from llm_catalyst.errors import ConfigError, DataError
from llm_catalyst.experiments.results import RunRecord
from llm_catalyst.experiments.stats import (
    Bootstrap,
    bootstrap_ci,
    contrast,
    mean_std,
    paired_deltas,
    paired_t_ci,
    summarize,
    t_quantile,
    wall_clock_summary,
)
from llm_catalyst.records import Metrics, WallClock


def run(
    task: str,
    method: str,
    seed: int,
    accuracy: float,
    wall_clock: WallClock | None = None,
    arm: str | None = None,
) -> RunRecord:
    return RunRecord(
        path=Path(f"/runs/{task}-{arm or method}-s{seed}"),
        task=task,
        method=method,
        arm=arm,
        seed=seed,
        test=Metrics(accuracy=accuracy, loss=0.5, n=100),
        wall_clock=wall_clock,
    )


def test_mean_and_sample_std_by_hand() -> None:
    mean, std = mean_std([0.5, 0.7, 0.9])
    assert mean == pytest.approx(0.7)
    # sample std: sqrt((0.04 + 0 + 0.04) / 2) = 0.2 (the population std would be 0.163)
    assert std == pytest.approx(0.2)


def test_std_of_one_value_is_undefined() -> None:
    assert mean_std([0.8]) == (0.8, None)
    with pytest.raises(ValueError):
        mean_std([])


def test_constant_differences_give_a_zero_width_interval() -> None:
    ci = bootstrap_ci([0.1, 0.1, 0.1, 0.1])
    assert ci.low == pytest.approx(0.1)
    assert ci.high == pytest.approx(0.1)
    assert (ci.level, ci.resamples) == (0.95, 10_000)


def test_bootstrap_quantiles_of_two_values_by_hand() -> None:
    # Resampling [0, 1] twice gives means 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4.
    wide = bootstrap_ci([0.0, 1.0], Bootstrap(level=0.95))
    assert (wide.low, wide.high) == (0.0, 1.0)
    # The 30% and 70% quantiles both fall on 0.5: a 40% interval has zero width there.
    narrow = bootstrap_ci([0.0, 1.0], Bootstrap(level=0.4))
    assert (narrow.low, narrow.high) == (0.5, 0.5)


def test_bootstrap_is_seeded() -> None:
    values = [0.02, -0.01, 0.05, 0.03, 0.0]
    first = bootstrap_ci(values, Bootstrap(resamples=2000, seed=3))
    assert bootstrap_ci(values, Bootstrap(resamples=2000, seed=3)) == first
    other = bootstrap_ci(values, Bootstrap(resamples=2000, seed=4))
    assert (other.low, other.high) != (first.low, first.high)
    assert min(values) <= first.low < sum(values) / len(values) < first.high <= max(values)


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"level": 95}, "0.95"), ({"resamples": 0}, "at least 1")]
)
def test_bootstrap_settings_are_checked(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Bootstrap(**kwargs)


def test_summaries_per_task_and_method() -> None:
    runs = [
        run("sst2", "catalyst", 2, 0.8),
        run("sst2", "plain", 1, 0.5),
        run("sst2", "plain", 2, 0.7),
        run("rte", "plain", 1, 0.6),
        run("sst2", "catalyst", 1, 0.6),
    ]
    summaries = {(s.task, s.method): s for s in summarize(runs)}
    assert [(s.task, s.method) for s in summarize(runs)] == [
        ("rte", "plain"),
        ("sst2", "plain"),
        ("sst2", "catalyst"),
    ]
    plain = summaries[("sst2", "plain")]
    assert plain.seeds == (1, 2)
    assert plain.mean == pytest.approx(0.6)
    assert plain.std == pytest.approx(0.1414213562)  # sqrt(0.02)
    assert summaries[("rte", "plain")].std is None


def test_differences_are_paired_by_task_and_seed() -> None:
    runs = [
        run("sst2", "plain", 1, 0.5),
        run("sst2", "plain", 2, 0.6),
        run("sst2", "plain", 3, 0.7),
        run("sst2", "catalyst", 2, 0.7),
        run("sst2", "catalyst", 3, 0.7),
        run("sst2", "catalyst", 4, 0.9),  # no plain run with seed 4: not paired
        run("rte", "plain", 2, 0.1),  # another task's baseline is never used
    ]
    (delta,) = paired_deltas(runs)
    assert (delta.task, delta.method, delta.baseline) == ("sst2", "catalyst", "plain")
    assert delta.seeds == (2, 3)
    assert delta.mean == pytest.approx(0.05)  # (0.1 + 0.0) / 2
    assert delta.ci is not None
    assert delta.ci.low == pytest.approx(0.0)
    assert delta.ci.high == pytest.approx(0.1)


def test_a_constant_gain_has_a_zero_width_interval_at_the_gain() -> None:
    runs = [run("sst2", "plain", s, acc) for s, acc in ((1, 0.5), (2, 0.8), (3, 0.6))]
    runs += [run("sst2", "catalyst", s, acc + 0.1) for s, acc in ((1, 0.5), (2, 0.8), (3, 0.6))]
    (delta,) = paired_deltas(runs)
    assert delta.mean == pytest.approx(0.1)
    assert delta.ci is not None
    assert (delta.ci.low, delta.ci.high) == pytest.approx((0.1, 0.1))


def test_one_pair_has_no_interval_and_unpaired_methods_are_left_out() -> None:
    runs = [
        run("sst2", "plain", 1, 0.5),
        run("sst2", "catalyst", 1, 0.75),
        run("sst2", "llm-only", 7, 0.6),
        run("rte", "catalyst", 1, 0.6),  # no baseline on rte
    ]
    (delta,) = paired_deltas(runs)
    assert (delta.method, delta.mean, delta.ci) == ("catalyst", 0.25, None)


def test_two_runs_of_one_cell_and_seed_are_refused() -> None:
    first, second = run("sst2", "plain", 1, 0.5), run("sst2", "plain", 1, 0.6)
    second = second.model_copy(update={"path": Path("/elsewhere/run")})
    with pytest.raises(DataError, match="seed 1") as error:
        summarize([first, second])
    assert "/runs/sst2-plain-s1" in str(error.value)
    assert "/elsewhere/run" in str(error.value)


def test_wall_clock_and_llm_share() -> None:
    runs = [
        run("sst2", "catalyst", 1, 0.5, WallClock(total_s=100, llm_s=30)),
        run("sst2", "catalyst", 2, 0.5, WallClock(total_s=300, llm_s=30)),
        run("sst2", "catalyst", 3, 0.5, WallClock(total_s=200)),  # LLM time not recorded
        run("rte", "catalyst", 1, 0.5, WallClock(total_s=600, llm_s=540)),
        run("sst2", "plain", 1, 0.5, WallClock(total_s=50)),
        run("sst2", "plain", 2, 0.5),  # no timing at all
    ]
    per_cell = {(w.task, w.method): w for w in wall_clock_summary(runs)}
    catalyst = per_cell[("sst2", "catalyst")]
    assert catalyst.runs == 3
    assert catalyst.mean_total_s == pytest.approx(200.0)
    assert catalyst.llm_share == pytest.approx(60 / 400)
    assert per_cell[("sst2", "plain")].runs == 1
    assert per_cell[("sst2", "plain")].llm_share is None

    per_method = {w.method: w for w in wall_clock_summary(runs, per_task=False)}
    assert per_method["catalyst"].task is None
    assert per_method["catalyst"].runs == 4
    assert per_method["catalyst"].mean_total_s == pytest.approx(300.0)
    assert per_method["catalyst"].llm_share == pytest.approx(600 / 1000)


def test_arms_of_one_method_are_separate_rows() -> None:
    runs = [run("sst2", "catalyst", 1, 0.8, arm="paper"), run("sst2", "catalyst", 1, 0.7)]
    assert {(s.method, s.mean) for s in summarize(runs)} == {("paper", 0.8), ("catalyst", 0.7)}


def test_contrast_per_task_and_overall_by_hand() -> None:
    runs = [
        run("sst2", "plain", 1, 0.70),
        run("sst2", "plain", 2, 0.60),
        run("sst2", "catalyst", 1, 0.80),
        run("sst2", "catalyst", 2, 0.70),
        run("rte", "plain", 1, 0.50),
        run("rte", "plain", 2, 0.50),
        run("rte", "plain", 3, 0.50),
        run("rte", "catalyst", 1, 0.50),
        run("rte", "catalyst", 2, 0.50),
        run("rte", "catalyst", 3, 0.50),
    ]
    found = contrast(runs, "catalyst", "plain")
    assert found is not None
    by_task = {d.task: d for d in found.per_task}
    assert by_task["sst2"].mean == pytest.approx(0.1) and by_task["rte"].mean == pytest.approx(0)
    # Each task weighs the same: (0.1 + 0) / 2, not the mean over the five pairs (0.04).
    assert found.overall.mean == pytest.approx(0.05)
    assert found.overall.seeds == (1, 2, 3)
    # Every resample of constant differences within each task gives the same overall mean.
    assert found.overall.ci.low == pytest.approx(0.05) and found.overall.ci.high == pytest.approx(
        0.05
    )
    assert contrast(runs, "catalyst", "random-restart") is None


def test_t_quantiles_match_the_printed_tables() -> None:
    assert t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-4)
    assert t_quantile(0.975, 4) == pytest.approx(2.7764, abs=1e-4)
    assert t_quantile(0.995, 9) == pytest.approx(3.2498, abs=1e-4)
    assert t_quantile(0.975, 1e9) == pytest.approx(1.95996, abs=1e-5)  # the normal's


def test_paired_t_interval_of_mrs_five_differences_by_hand() -> None:
    # catalyst - plain on MR, points: mean 4.74, s = sqrt(64.33 / 4) = 4.0103, s/sqrt(5) =
    # 1.7935, t_4 = 2.7764: 4.74 -/+ 4.979 = [-0.24, +9.72].
    differences = [0.107, 0.053, 0.030, -0.003, 0.050]
    ci = paired_t_ci(differences)
    assert (ci.low, ci.high) == pytest.approx((-0.0023944, 0.0971944), abs=1e-6)
    assert (ci.level, ci.resamples) == (0.95, None)
    assert ci.in_points() == "[-0.2, +9.7]"
    # With 5 seeds the percentile bootstrap is about 1.96 * sqrt(4/5) / 2.776 = 0.63 as wide.
    boot = bootstrap_ci(differences)
    assert 0.5 < (boot.high - boot.low) / (ci.high - ci.low) < 0.75
    constant = paired_t_ci([0.1, 0.1, 0.1])
    assert (constant.low, constant.high) == pytest.approx((0.1, 0.1))


def test_deltas_and_contrasts_carry_the_t_interval() -> None:
    task_a = [(1, 0.5, 0.6), (2, 0.5, 0.8)]  # differences 0.1, 0.3
    task_b = [(1, 0.5, 0.5), (2, 0.5, 0.7), (3, 0.5, 0.9)]  # differences 0.0, 0.2, 0.4
    runs = [
        run(task, method, seed, acc)
        for task, rows in (("a", task_a), ("b", task_b))
        for seed, plain, catalyst in rows
        for method, acc in (("plain", plain), ("catalyst", catalyst))
    ]
    by_task = {d.task: d for d in paired_deltas(runs)}
    expected, got = paired_t_ci([0.0, 0.2, 0.4]), by_task["b"].t_ci
    assert got is not None and (got.low, got.high) == pytest.approx((expected.low, expected.high))
    found = contrast(runs, "catalyst", "plain")
    assert found is not None and found.per_task[0].t_ci is not None
    # Overall: the mean of the task means, var = (0.02/2 + 0.04/3) / 2^2, Welch-Satterthwaite
    # df = (0.01 + 0.01333)^2 / (0.01^2 / 1 + 0.01333^2 / 2) = 2.882.
    se, df = (0.0233333 / 4) ** 0.5, 0.0233333**2 / (0.01**2 + 0.0133333**2 / 2)
    half = t_quantile(0.975, df) * se
    overall = found.overall.t_ci
    assert overall is not None
    assert (overall.low, overall.high) == pytest.approx((0.2 - half, 0.2 + half), rel=1e-4)
