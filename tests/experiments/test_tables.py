from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from llm_catalyst.experiments.results import RunRecord
from llm_catalyst.experiments.stats import Bootstrap
from llm_catalyst.experiments.tables import comparison_table, to_csv, to_markdown, write_tables
from llm_catalyst.records import Metrics, WallClock


def run(method: str, seed: int, accuracy: float, task: str = "sst2", **fields) -> RunRecord:
    return RunRecord(
        path=Path(f"/runs/{task}-{method}-s{seed}"),
        task=task,
        method=method,
        seed=seed,
        test=Metrics(accuracy=accuracy, loss=0.5, n=100),
        **fields,
    )


@pytest.fixture
def runs() -> list[RunRecord]:
    plain = [(1, 0.5), (2, 0.6), (3, 0.7)]
    return [
        *(run("plain", s, a, wall_clock=WallClock(total_s=60, llm_s=0)) for s, a in plain),
        *(
            run("catalyst", s, a + 0.1, wall_clock=WallClock(total_s=180, llm_s=45))
            for s, a in plain
        ),
        run("random-restart", 1, 0.55),
        run("random-restart", 2, 0.5),
    ]


def test_markdown_rows(runs: list[RunRecord]) -> None:
    lines = to_markdown(comparison_table(runs)).splitlines()

    assert lines[0].startswith("| task | method | seeds | test acc. % (mean ± std) |")
    # one unit per column, chosen by its largest value: 60 s reads "1.0 min" beside 3 min
    assert "| sst2 | plain | 3 | 60.0 ± 10.0 | (baseline) | — | 1.0 min | 0% |" in lines
    assert (
        "| sst2 | catalyst | 3 | 70.0 ± 10.0 | +10.0 [+10.0, +10.0] | [+10.0, +10.0] | 3.0 min "
        "| 25% |"
    ) in lines
    # pairs (1: +5, 2: -10): the bootstrap means are -10, -2.5 and +5, marked as too few seeds;
    # the t-interval: -2.5 -/+ t(1) * 10.607 / sqrt(2) = -2.5 -/+ 12.706 * 7.5 = [-97.8, +92.8]
    assert (
        "| sst2 | random-restart | 2 | 52.5 ± 3.5 | -2.5 [-10.0, +5.0]† | [-97.8, +92.8] | — | — |"
    ) in lines
    assert "| Δ vs plain, pp [95% CI, bootstrap] | 95% CI, paired t |" in lines[0]
    method_rows = [line for line in lines if line.startswith("| sst2 |")]
    assert [row.split(" | ")[1] for row in method_rows] == ["plain", "random-restart", "catalyst"]
    assert "10000 resamples" in "\n".join(lines)
    assert "| catalyst | 3 | 3.0 min | 25% |" in lines  # wall-clock per method, all tasks
    assert "| plain | 3 | 1.0 min | 0% |" in lines


def test_a_column_of_short_runs_stays_in_seconds() -> None:
    runs = [
        run("plain", 1, 0.5, wall_clock=WallClock(total_s=30, llm_s=0)),
        run("catalyst", 1, 0.6, wall_clock=WallClock(total_s=90, llm_s=30)),
    ]
    lines = to_markdown(comparison_table(runs)).splitlines()
    assert "| sst2 | plain | 1 | 50.0 | (baseline) | — | 30.0 s | 0% |" in lines
    assert "| sst2 | catalyst | 1 | 60.0 | +10.0 | — | 90.0 s | 33% |" in lines


def test_fewer_pairs_than_seeds_are_shown() -> None:
    table = comparison_table(
        [run("plain", 1, 0.5), run("catalyst", 1, 0.6), run("catalyst", 2, 0.9)],
        bootstrap=Bootstrap(level=0.9),
    )
    markdown = to_markdown(table)
    assert "| sst2 | catalyst | 2 | 75.0 ± 21.2 | +10.0 (n=1) |" in markdown
    assert "Δ vs plain, pp [90% CI, bootstrap] | 90% CI, paired t" in markdown


def test_pipes_in_names_do_not_break_the_table() -> None:
    markdown = to_markdown(comparison_table([run("plain", 1, 0.5, task="a|b")]))
    assert "| a\\|b | plain |" in markdown


def test_csv_holds_raw_numbers(runs: list[RunRecord]) -> None:
    rows = {r["method"]: r for r in csv.DictReader(io.StringIO(to_csv(comparison_table(runs))))}

    catalyst = rows["catalyst"]
    assert catalyst["seeds"] == "1 2 3"
    assert float(catalyst["mean_accuracy"]) == pytest.approx(0.7)
    assert float(catalyst["std_accuracy"]) == pytest.approx(0.1)
    assert float(catalyst["delta_vs_plain"]) == pytest.approx(0.1)
    assert float(catalyst["ci_low"]) == pytest.approx(0.1)
    assert float(catalyst["ci_high"]) == pytest.approx(0.1)
    assert float(catalyst["t_ci_low"]) == pytest.approx(0.1)
    assert float(catalyst["t_ci_high"]) == pytest.approx(0.1)
    random_restart = rows["random-restart"]
    assert float(random_restart["t_ci_low"]) == pytest.approx(-0.025 - 12.7062 * 0.075, abs=1e-5)
    assert catalyst["n_pairs"] == "3"
    assert float(catalyst["mean_wall_clock_s"]) == 180.0
    assert float(catalyst["llm_share"]) == 0.25
    assert (catalyst["ci_level"], catalyst["resamples"]) == ("0.95", "10000")
    plain = rows["plain"]
    assert plain["delta_vs_plain"] == plain["ci_low"] == plain["n_pairs"] == ""


def test_write_tables_and_empty_table(tmp_path: Path, runs: list[RunRecord]) -> None:
    markdown_path, csv_path = write_tables(comparison_table(runs), tmp_path / "out")
    assert markdown_path.read_text(encoding="utf-8").startswith("| task |")
    assert len(csv_path.read_text(encoding="utf-8").splitlines()) == 1 + 3
    assert to_markdown(comparison_table([])) == "No finished runs.\n"
