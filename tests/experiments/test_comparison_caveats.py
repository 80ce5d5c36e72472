"""What a comparison must say beside its numbers: intervals from too few seeds, the zero-shot
score, how many examples were scored, and how many LLM answers were replayed from the cache."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from llm_catalyst.experiments.report import write_report
from llm_catalyst.experiments.results import RunRecord
from llm_catalyst.experiments.stats import contrast
from llm_catalyst.experiments.tables import (
    comparison_table,
    contrasts_markdown,
    to_csv,
    to_markdown,
)
from llm_catalyst.records import LLMUsage, Metrics
from tests.experiments.synthetic_runs import write_run


def run(method: str, seed: int, accuracy: float, **fields) -> RunRecord:
    return RunRecord(
        path=Path(f"/runs/sst2-{method}-s{seed}"),
        task="sst2",
        method=method,
        seed=seed,
        test=Metrics(accuracy=accuracy, loss=0.5, n=300),
        dev=Metrics(accuracy=0.6, loss=0.6, n=32),
        **fields,
    )


def grid(seeds: int, **fields) -> list[RunRecord]:
    return [
        record
        for seed in range(1, seeds + 1)
        for record in (
            run("plain", seed, 0.5 + seed / 100, **fields),
            run("catalyst", seed, 0.6 + seed / 50, **fields),
        )
    ]


def test_an_interval_from_two_seeds_is_marked_and_explained() -> None:
    markdown = to_markdown(comparison_table(grid(2)))
    assert "| sst2 | catalyst | 2 | 63.0 ± 1.4 | +11.5 [+11.0, +12.0]† |" in markdown
    assert "† an interval from fewer than 3 seeds (sst2 catalyst: 2 seeds)" in markdown


def test_three_seeds_need_no_warning() -> None:
    assert "†" not in to_markdown(comparison_table(grid(3)))


def test_a_contrast_from_two_seeds_is_marked_and_explained() -> None:
    found = contrast(grid(2), "catalyst", "plain")
    assert found is not None
    markdown = contrasts_markdown([found])
    assert "| catalyst − plain | sst2 | 2 | +11.5 [+11.0, +12.0]† |" in markdown
    assert "† an interval from fewer than 3 seeds" in markdown


def test_the_zero_shot_score_is_a_row_of_its_task() -> None:
    zero = Metrics(accuracy=0.52, loss=0.7, n=300)
    lines = to_markdown(comparison_table(grid(3, zero_shot_test=zero))).splitlines()
    rows = [line for line in lines if line.startswith("| sst2 |")]
    assert rows[0] == "| sst2 | zero-shot | 3 | 52.0 ± 0.0 | — | — | — | — |"
    assert [row.split(" | ")[1] for row in rows] == ["zero-shot", "plain", "catalyst"]
    assert "zero-shot" not in to_markdown(comparison_table(grid(3)))


def test_held_out_scores_of_a_sweep_or_ablation_do_not_read_as_test_results() -> None:
    held_out = to_markdown(comparison_table(grid(3, protocol="validation")))
    assert held_out.startswith("| task | method | seeds | held-out acc. % (mean ± std) |")
    assert "Held-out accuracy in %" in held_out and "not the test split" in held_out
    assert "Examples scored: sst2 300 held-out, 32 dev." in held_out
    mixed = grid(3, protocol="validation")[:-1] + grid(3, protocol="fewshot")[-1:]
    assert to_markdown(comparison_table(mixed)).startswith(
        "| task | method | seeds | test acc. % (mean ± std) |"
    )


def test_the_examples_scored_are_given_per_task() -> None:
    table = comparison_table(grid(3))
    assert "Examples scored: sst2 300 test, 32 dev." in to_markdown(table)
    rows = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert {(r["method"], r["test_n"], r["dev_n"]) for r in rows} == {
        ("plain", "300", "32"),
        ("catalyst", "300", "32"),
    }


def test_answers_replayed_from_the_cache_are_counted_apart() -> None:
    usage = LLMUsage(calls=3, fresh_calls=1, cache_hits=2)
    table = comparison_table(grid(3, llm=usage))
    markdown = to_markdown(table)
    assert "LLM answers replayed from the response cache" in markdown
    assert "plain 6 of 9" in markdown and "catalyst 6 of 9" in markdown
    rows = {r["method"]: r for r in csv.DictReader(io.StringIO(to_csv(table)))}
    assert (rows["catalyst"]["llm_fresh_calls"], rows["catalyst"]["llm_cache_hits"]) == ("3", "6")
    fresh_only = to_markdown(comparison_table(grid(3, llm=LLMUsage(calls=3, fresh_calls=3))))
    assert "replayed" not in fresh_only


def test_the_report_shows_the_caveats_and_each_runs_cached_answers(tmp_path: Path) -> None:
    zero = {"accuracy": 0.52, "loss": 0.7, "n": 100}
    llm = {"calls": 3, "fresh_calls": 0, "cache_hits": 3}
    for seed in (1, 2):
        write_run(tmp_path / f"plain-s{seed}", seed=seed, accuracy=0.5, zero_shot_test=zero)
        write_run(
            tmp_path / f"catalyst-s{seed}",
            method="catalyst",
            seed=seed,
            accuracy=0.6 + seed / 10,
            zero_shot_test=zero,
            llm=llm,
            wall_clock={"total_s": 60.0, "llm_s": 0.0},
        )
    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert "<td>sst2</td><td>zero-shot</td><td>2</td><td>52.0 ± 0.0</td>" in page
    assert "+25.0 [+20.0, +30.0]†" in page
    assert "† an interval from fewer than 3 seeds (sst2 catalyst: 2 seeds)" in page
    assert "whiskers of fewer than 3 seeds" in page
    assert "Examples scored: sst2 100 test, 32 dev." in page
    assert "catalyst 6 of 6" in page
    assert "<td>LLM calls</td><td>3: 0 fresh, 3 replayed from the response cache</td>" in page
    assert "<td>dev examples</td><td>32</td>" in page
