"""Restarts judged after probe steps, and the initialisation round (round 0), in whole runs of
the tiny causal LM with a scripted LLM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from llm_catalyst.catalyst.config import load_run_config
from llm_catalyst.catalyst.runner import RunResult, run
from llm_catalyst.experiments.results import load_run, read_events
from llm_catalyst.experiments.rounds import round_outcomes
from llm_catalyst.prompts.projection import FitPolicy, embed_text, project
from llm_catalyst.training.trainer import BatchStream
from tests.catalyst.small_runs import ANSWER, run_settings, script

# 2 rounds after stages of 3 steps; each round probes S and the 2 best proposals for 1 step:
# 2 x 3 x 1 = 6 probe steps, so the final stage gets 14 - 6 - 6 = 2 steps.
PROBED = {
    "train.steps": 14,
    "loop.probe_steps": 1,
    "loop.probe_top": 2,
    "loop.selection": "best",
    "loop.margin": 0.0,
}


def _events(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]


def _run(tmp_path: Path, data_dir: Path, answers: int, **settings) -> RunResult:
    path = script(tmp_path, [ANSWER] * answers)
    return run(load_run_config(None, run_settings(tmp_path, data_dir, path, **settings)))


@pytest.fixture(scope="module")
def probed(tmp_path_factory, shared_data_dir) -> tuple[RunResult, list[int]]:
    """The probed run and the step of every batch its trainer drew, in order."""
    drawn: list[int] = []
    original = BatchStream.batch

    def recording(stream: BatchStream, step: int):
        drawn.append(step)
        return original(stream, step)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BatchStream, "batch", recording)
        # Seed 3 keeps S in round 1 and restarts in round 2 (probed S keeps its moments).
        settings = {**PROBED, "data.seed": 3}
        result = _run(tmp_path_factory.mktemp("probed"), shared_data_dir, 2, **settings)
    return result, drawn


def test_a_run_with_probes_executes_exactly_train_steps_optimizer_steps(probed):
    result, drawn = probed
    rounds = read_events(result.run_dir).rounds
    probe_steps = sum(r.probe_steps * len(r.probes) for r in rounds)
    train_steps = len(_events(result.run_dir, "train_step"))
    assert (train_steps, probe_steps) == (8, 6)
    assert len(drawn) == train_steps + probe_steps == 14
    budget = result.results.compute
    assert budget is not None
    assert (budget.gradient_steps, budget.probe_steps, budget.discarded_probe_steps) == (14, 6, 4)
    # The LR schedule stepped once per optimizer step, probes included.
    checkpoint = torch.load(result.run_dir / "checkpoint.pt", weights_only=False)
    assert checkpoint["trainer"]["scheduler"]["last_epoch"] == 14
    assert result.results.schedule is not None
    assert result.results.schedule.probe_steps == 1 and result.results.schedule.final_steps == 2


def test_every_entrant_of_a_round_trains_on_the_same_next_batches(probed):
    _, drawn = probed
    # stage 1: 0-2; round 1 probes three entrants on batch 3; stage 2 continues at 4 (the
    # winner took step 3) up to 6; round 2 probes on batch 7; the final stage takes 8 and 9.
    assert drawn == [0, 1, 2, 3, 3, 3, 4, 5, 6, 7, 7, 7, 8, 9]


def test_s_and_the_best_proposals_are_probed_and_the_winner_continues(probed):
    result, _ = probed
    rounds = read_events(result.run_dir).rounds
    for item in rounds:
        current, *entrants = item.probes
        assert current.origin == "current" and current.dev_loss_before == item.pool[0].dev_loss
        best_two = sorted(p.dev_loss for p in item.proposals if p.dev_loss is not None)[:2]
        assert sorted(p.dev_loss_before for p in entrants) == best_two
        assert all(len(p.train_losses) == 1 for p in item.probes)
        (winner,) = [p for p in item.probes if p.continued]
        lowest = min(p.dev_loss for p in item.probes)
        assert winner.dev_loss == lowest, "selection 'best' compares the probed scores"
        if winner is current:
            assert item.chosen is None
        else:
            assert item.chosen is not None and item.chosen.dev_loss == winner.dev_loss
    # This seed keeps S in round 1 and restarts in round 2, so both outcomes are checked.
    assert [item.chosen is not None for item in rounds] == [False, True]
    restarts = _events(result.run_dir, "restart")
    assert [(r["step"], r["round"], r["moments"]) for r in restarts] == [(8, 2, "reset")]
    # The kept trajectory went on from the winner's probe step: round 2's pool saw step 3.
    second = _events(result.run_dir, "trajectory")[1]["points"]
    assert [p["step"] for p in second] == [3, 4, 5, 6]
    assert second[0]["loss"] == next(p for p in rounds[0].probes if p.continued).train_losses[0]


def test_probes_off_and_no_init_round_are_the_defaults(tmp_path, shared_data_dir):
    """The pre-probe rule: explicit off switches give the run that the defaults give."""
    runs = {}
    for name, extra in {
        "defaults": {},
        "explicit": {"loop.probe_steps": 0, "loop.probe_top": 5, "loop.init_round": False},
    }.items():
        (tmp_path / name).mkdir()
        result = _run(tmp_path / name, shared_data_dir, 2, **{"loop.selection": "first", **extra})
        events = [
            {k: v for k, v in e.items() if k != "time"}
            for kind in ("train_step", "dev_eval", "round", "restart")
            for e in _events(result.run_dir, kind)
        ]
        runs[name] = (result.results.test, result.results.restarts, events)
    assert runs["defaults"] == runs["explicit"]
    assert runs["defaults"][1] == 2, "selection 'first' restarts in every round"


def test_init_round_starts_from_the_best_by_dev(tmp_path, shared_data_dir, sst2_vocab):
    result = _run(
        tmp_path,
        shared_data_dir,
        3,
        **{"loop.init_round": True, "loop.selection": "best", "loop.margin": 0.0},
    )
    rounds = read_events(result.run_dir).rounds
    assert [(r.round, r.step) for r in rounds] == [(0, 0), (1, 3), (2, 6)]
    init = rounds[0]
    assert [c.origin for c in init.pool] == ["current"], "no stage before round 0: S alone"
    assert init.probes == ()
    lowest = min(c.dev_loss for c in [*init.pool, *init.proposals] if c.dev_loss is not None)
    start = init.pool[0].text
    if init.chosen is None:
        assert init.pool[0].dev_loss == lowest
    else:
        assert init.chosen.dev_loss == lowest
        fitted = embed_text(
            init.chosen.text, sst2_vocab, 10, FitPolicy.parse("truncate+pad_repeat")
        )
        start = project(fitted.embeddings, sst2_vocab).text
    first_stage = _events(result.run_dir, "trajectory")[0]["points"]
    assert first_stage[0]["step"] == 0 and first_stage[0]["text"] == start
    assert result.results.rounds_done == 3 and result.results.llm is not None
    assert result.results.llm.calls == 3
    assert len(_events(result.run_dir, "train_step")) == 8
    (outcome,) = round_outcomes([load_run(result.run_dir)])
    assert outcome.rounds == 3 and outcome.kept + sum(outcome.restarts.values()) == 3


def test_init_round_with_probes_starts_from_the_best_by_probe(tmp_path, shared_data_dir):
    # Round 0, round 1 and round 2 probe 3 entrants for 1 step: 9 steps; 2 stages of 3 steps
    # leave 17 - 9 - 6 = 2 final steps.
    result = _run(
        tmp_path,
        shared_data_dir,
        3,
        **{**PROBED, "train.steps": 17, "loop.init_round": True},
    )
    init = read_events(result.run_dir).rounds[0]
    assert (init.round, init.step, init.probe_steps, len(init.probes)) == (0, 0, 1, 3)
    (winner,) = [p for p in init.probes if p.continued]
    assert winner.dev_loss == min(p.dev_loss for p in init.probes)
    assert (winner.origin == "current") == (init.chosen is None)
    steps = [e["step"] for e in _events(result.run_dir, "train_step")]
    assert steps[0] == 2, "the winner's probe took step 1"
    budget = result.results.compute
    assert budget is not None and budget.gradient_steps == 17
    assert len(steps) + budget.probe_steps == 17
