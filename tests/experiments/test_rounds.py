from __future__ import annotations

from pathlib import Path

from llm_catalyst.experiments.results import collect_runs
from llm_catalyst.experiments.rounds import round_outcomes, rounds_markdown
from tests.experiments.synthetic_runs import training_events, write_run


def candidate(text: str, loss: float | None, source: str | None = None) -> dict:
    return {"text": text, "dev_loss": loss, "dev_accuracy": None, "source": source}


def round_event(
    number: int, current: float, proposals: list[float], chosen: dict | None, skipped: bool
) -> dict:
    return {
        "event": "round",
        "round": number,
        "step": 4 * number,
        "pool": [candidate("S", current, "current"), candidate("pool text", 0.9, "trajectory")],
        "proposals": [candidate(f"p{i}", loss, "llm") for i, loss in enumerate(proposals)],
        "chosen": chosen,
        "reason": "why",
        "skipped": skipped,
        "skip_reason": "LLM unavailable" if skipped else None,
    }


def test_counts_restarts_kept_and_skipped_rounds_and_loss_gaps(tmp_path: Path) -> None:
    root = tmp_path / "grid"
    write_run(
        root / "catalyst-s1",
        method="catalyst",
        events=[
            *training_events(12),
            # a proposal 0.2 below S is taken
            round_event(1, 0.7, [0.5, 0.8], candidate("p0", 0.5, "llm"), skipped=False),
            # both proposals worse: S kept
            round_event(2, 0.4, [0.6, 0.9], None, skipped=False),
            round_event(3, 0.4, [], None, skipped=True),
        ],
    )
    write_run(
        root / "catalyst-s2",
        method="catalyst",
        seed=2,
        events=[round_event(1, 0.6, [0.3], candidate("p0", 0.3, "llm (step 4)"), skipped=False)],
    )
    write_run(root / "plain-s1", events=training_events(12))

    [outcome] = round_outcomes(collect_runs(root).finished)

    assert (outcome.task, outcome.method, outcome.runs) == ("sst2", "catalyst", 2)
    assert (outcome.rounds, outcome.skipped, outcome.kept) == (4, 1, 1)
    assert outcome.restarts == {"llm": 2}
    assert outcome.restarts_by_round == ((1, 2), (2, 0), (3, 0))
    assert (outcome.proposals_better, outcome.proposals_scored) == (2, 5)
    assert sorted(round(g, 6) for g in outcome.loss_gaps) == [-0.3, -0.2, 0.2]
    assert round(outcome.median_gap, 6) == -0.2
    table = rounds_markdown([outcome])
    assert "| sst2 | catalyst | 4 | 1 | 1 | 2 llm | r1: 2, r2: 0, r3: 0 | 2/5 | -0.200 |" in table


def test_runs_without_rounds_give_no_table(tmp_path: Path) -> None:
    write_run(tmp_path / "plain-s1", events=training_events(6))
    outcomes = round_outcomes(collect_runs(tmp_path).finished)
    assert outcomes == []
    assert rounds_markdown(outcomes) == ""


def test_proposals_a_race_dropped_are_left_out_of_the_counts(tmp_path: Path) -> None:
    """Scored on 8 of the 32 dev examples, a dropped proposal's loss is no whole-split loss."""
    item = round_event(1, 0.7, [0.5, 0.6, 0.1], candidate("p0", 0.5, "llm"), skipped=False)
    for record in item["pool"]:
        record["dev_n"] = 32
    for record, size in zip(item["proposals"], [32, 32, 8], strict=True):
        record["dev_n"] = size
    write_run(tmp_path / "grid" / "catalyst-s1", method="catalyst", events=[item])

    [outcome] = round_outcomes(collect_runs(tmp_path / "grid").finished)

    assert (outcome.proposals_better, outcome.proposals_scored) == (2, 2)
    assert [round(g, 6) for g in outcome.loss_gaps] == [-0.2]


def test_restarts_are_counted_by_the_round_that_made_them(tmp_path: Path) -> None:
    """Round 0 (an LLM initialisation) apart from the rounds that read a trajectory."""
    chosen = candidate("p0", 0.5, "llm")
    for seed, later in ((1, None), (2, chosen)):
        write_run(
            tmp_path / f"catalyst-s{seed}",
            method="catalyst",
            seed=seed,
            events=[
                round_event(0, 0.9, [0.5], chosen, skipped=False),
                round_event(1, 0.7, [0.5], later, skipped=False),
            ],
        )

    [outcome] = round_outcomes(collect_runs(tmp_path).finished)

    assert outcome.restarts_by_round == ((0, 2), (1, 1))
    assert "| r0: 2, r1: 1 |" in rounds_markdown([outcome])
