"""Whole runs of every method on the tiny causal LM with a scripted LLM (deterministic)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from llm_catalyst.catalyst.config import METHODS, load_run_config
from llm_catalyst.catalyst.runner import resume, run
from llm_catalyst.data.registry import get_task
from llm_catalyst.errors import TrainingError
from llm_catalyst.experiments.results import load_run, read_events
from llm_catalyst.prompts.projection import FitPolicy, embed_text, project
from tests.catalyst.small_runs import ANSWER, PROMPTS, run_settings, script


def _events(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]


def _run(tmp_path: Path, data_dir: Path, steps: list, **settings):
    path = script(tmp_path, steps)
    return run(load_run_config(None, run_settings(tmp_path, data_dir, path, **settings)))


@pytest.fixture(scope="module")
def every_method(tmp_path_factory, shared_data_dir) -> dict[str, Path]:
    """Every method on one task, seed and budget (2 rounds of 3 steps, 2 final steps; the
    races: 4 entrants in rungs of 4 and 2 of 1 step, 6 steps, then 2 of the winner's)."""
    tmp_path = tmp_path_factory.mktemp("methods")
    path = script(tmp_path, [ANSWER] * 4)
    settings = {"race.rung_steps": 1}
    return {
        method: run(
            load_run_config(
                None, run_settings(tmp_path, shared_data_dir, path, method=method, **settings)
            )
        ).run_dir
        for method in METHODS
    }


def test_every_method_gets_the_same_gradient_budget(every_method):
    for method, run_dir in every_method.items():
        budget = json.loads((run_dir / "results.json").read_text())["compute"]
        expected = 0 if method == "llm-only" else 8
        assert budget["gradient_steps"] == expected, method
        race_steps = 6 if method in ("race", "random-race") else 0
        assert budget["race_steps"] == race_steps, method
        assert len(_events(run_dir, "train_step")) == expected - race_steps, method


def test_llm_only_makes_as_many_llm_calls_as_the_catalyst(every_method):
    calls = {m: load_run(d).llm.calls for m, d in every_method.items()}
    assert calls == {
        "plain": 0,
        "plain-text-init": 0,
        "random-restart": 0,
        "projection-restart": 0,
        "llm-only": 2,
        "catalyst": 2,
        "race": 1,
        "random-race": 0,
        "llm-init": 1,
    }


def test_results_are_read_by_the_experiment_layer(every_method):
    for method, run_dir in every_method.items():
        record = load_run(run_dir)
        assert (record.method, record.task, record.seed) == (method, "sst2", 1)
        assert record.test.n == 16 and record.dev is not None and record.dev.n == 8
        assert record.wall_clock is not None and record.wall_clock.gradient_s is not None
        assert record.llm is not None and record.llm.skipped_rounds == 0
        assert record.projected_text
        assert (run_dir / "artifact" / "adapter_model.safetensors").is_file()


def test_catalyst_rounds_record_pool_proposals_and_choice(every_method):
    run_dir = every_method["catalyst"]
    rounds = read_events(run_dir).rounds
    assert [(r.round, r.step) for r in rounds] == [(1, 3), (2, 6)]
    for item, asked in zip(rounds, [PROMPTS[0:2], PROMPTS[2:4]], strict=True):
        assert item.pool[0].origin == "current"
        assert 2 <= len(item.pool) <= 1 + 3, "the current prompt plus at most K=3 texts"
        assert all(c.dev_loss is not None and c.dev_accuracy is not None for c in item.pool)
        assert [c.text for c in item.proposals] == asked, "texts tried before are not proposed"
        assert all(c.dev_loss is not None for c in item.proposals)
        assert item.reason and not item.skipped
    trajectories = _events(run_dir, "trajectory")
    assert [len(t["points"]) for t in trajectories] == [3, 3]
    assert [p["step"] for p in trajectories[1]["points"]] == [3, 4, 5]


def test_the_llm_sees_the_task_and_the_scored_pool(every_method):
    run_dir = every_method["catalyst"]
    calls = [json.loads(line) for line in (run_dir / "llm_calls.jsonl").read_text().splitlines()]
    assert len(calls) == 2
    first_round = read_events(run_dir).rounds[0]
    message = calls[0]["request"]["messages"][-1]["content"]
    assert get_task("sst2").description in message
    for candidate in first_round.pool[1:]:
        assert f"{json.dumps(candidate.text)}: loss {candidate.dev_loss:.3f}" in message


def test_controls_propose_from_their_own_sources(every_method):
    random_rounds = read_events(every_method["random-restart"]).rounds
    assert all(len(r.proposals) == 2 for r in random_rounds)
    assert all(c.origin == "random" for r in random_rounds for c in r.proposals)
    assert random_rounds[0].proposals[0].text != random_rounds[1].proposals[0].text
    for item in read_events(every_method["projection-restart"]).rounds:
        (proposal,) = item.proposals
        assert proposal.origin == "projection" and proposal.detail.startswith("step ")
        pool_entry = next(c for c in item.pool[1:] if c.text == proposal.text)
        assert proposal.dev_loss == pool_entry.dev_loss == min(c.dev_loss for c in item.pool[1:])
    assert not read_events(every_method["plain"]).rounds
    assert not _events(every_method["plain"], "trajectory")


def test_llm_only_searches_hard_prompts_without_gradients(every_method):
    run_dir = every_method["llm-only"]
    rounds = read_events(run_dir).rounds
    assert [[c.text for c in r.proposals] for r in rounds] == [PROMPTS[0:2], PROMPTS[2:4]]
    assert len(rounds[1].pool) == 3, "the second round sees the start and round 1's proposals"
    results = json.loads((run_dir / "results.json").read_text())
    scored = [c for r in rounds for c in r.proposals] + [rounds[0].pool[0]]
    assert results["dev"]["loss"] in [c.dev_loss for c in scored]


def test_first_selection_restarts_from_the_first_proposal(tmp_path, shared_data_dir, sst2_vocab):
    result = _run(
        tmp_path,
        shared_data_dir,
        [ANSWER] * 2,
        **{"loop.selection": "first", "loop.moments": "keep"},
    )
    restarts = _events(result.run_dir, "restart")
    assert [(r["step"], r["round"], r["text"]) for r in restarts] == [
        (3, 1, PROMPTS[0]),
        (6, 2, PROMPTS[2]),
    ]
    assert all(r["moments"] == "keep" for r in restarts)
    assert result.results.restarts == 2
    # The next stage really starts from the restart text, fitted to the 10 slots.
    fitted = embed_text(PROMPTS[0], sst2_vocab, 10, FitPolicy.parse("truncate+pad_repeat"))
    second_stage = _events(result.run_dir, "trajectory")[1]["points"]
    assert second_stage[0]["step"] == 3
    assert second_stage[0]["text"] == project(fitted.embeddings, sst2_vocab).text


def test_best_of_everything_picks_the_lowest_dev_loss(tmp_path, shared_data_dir):
    result = _run(tmp_path, shared_data_dir, [ANSWER] * 2, **{"loop.selection": "best"})
    for item in read_events(result.run_dir).rounds:
        everything = [*item.pool, *item.proposals]
        lowest = min(c.dev_loss for c in everything)
        if item.pool[0].dev_loss == lowest:
            assert item.chosen is None
        else:
            assert item.chosen is not None and item.chosen.dev_loss == lowest


def test_unavailable_llm_skips_the_round_and_training_goes_on(tmp_path, shared_data_dir):
    steps = [{"error": "unavailable", "message": "server down"}, ANSWER]
    result = _run(tmp_path, shared_data_dir, steps)
    first, second = read_events(result.run_dir).rounds
    assert first.skipped and "server down" in (first.skip_reason or "")
    assert first.proposals == () and first.chosen is None
    assert not second.skipped and [c.text for c in second.proposals] == PROMPTS[0:2]
    assert len(_events(result.run_dir, "train_step")) == 8
    assert result.results.llm.skipped_rounds == 1
    assert result.results.llm.calls == 1


def test_llm_budget_exhausted_mid_run_skips_later_rounds(tmp_path, shared_data_dir):
    result = _run(
        tmp_path,
        shared_data_dir,
        [ANSWER] * 3,
        **{"loop.rounds": 3, "loop.stage_steps": 2, "llm.budget.max_calls": 1},
    )
    rounds = read_events(result.run_dir).rounds
    assert [r.skipped for r in rounds] == [False, True, True]
    assert all("budget" in (r.skip_reason or "") for r in rounds[1:])
    assert len(_events(result.run_dir, "train_step")) == 8
    assert (result.results.llm.calls, result.results.llm.skipped_rounds) == (1, 2)


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(
    tmp_path, shared_data_dir
):
    # An absurd learning rate blows the encoder's LayerNorm up on the second step.
    settings = {
        "method": "plain",
        "backbone.model": "tiny-encoder",
        "train.lr": 1e37,
        "train.eval_every": 1,  # a checkpoint after every step: the last good one is step 1
    }
    with pytest.raises(TrainingError, match=r"nan at step 2(.|\n)*last good checkpoint \(step 1\)"):
        _run(tmp_path, shared_data_dir, [], **settings)
    (run_dir,) = (tmp_path / "runs").iterdir()
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert checkpoint["trainer"]["step"] == 1
    assert torch.isfinite(checkpoint["trainer"]["prompt"]).all()
    assert _events(run_dir, "error")[0]["step"] == 1
    assert not (run_dir / "results.json").exists()


def _custom_task(tmp_path: Path) -> dict:
    """A tiny CSV task: 12 train rows (3 steps per epoch at batch 4) and 6 test rows."""
    rows = ["good film", "bad film", "great acting", "awful plot", "loved it", "hated it"]
    train = tmp_path / "train.csv"
    test = tmp_path / "test.csv"
    train.write_text("text,label\n" + "".join(f"{t},{i % 2}\n" for i, t in enumerate(rows * 2)))
    test.write_text("text,label\n" + "".join(f"{t},{i % 2}\n" for i, t in enumerate(rows)))
    return {
        "name": "tiny-reviews",
        "description": "Short movie reviews, positive or negative.",
        "train": str(train),
        "test": str(test),
        "columns": {"text": "text"},
        "label_names": ["positive", "negative"],
        "label_words": ["positive", "negative"],
        "template": "Review: {text}\nSentiment:",
        "text_fields": ["text"],
    }


def test_paper_protocol_reproduces_the_reference_choices(tmp_path, shared_data_dir):
    path = script(tmp_path, [ANSWER] * 3)
    settings = run_settings(tmp_path, shared_data_dir, path, protocol="paper")
    for key in ("data.shots", "loop.rounds", "loop.stage_steps", "llm.proposer.num_proposals"):
        settings.pop(key)
    settings |= {"data.task": _custom_task(tmp_path), "train.steps": 11}
    result = run(load_run_config(None, settings))
    (splits,) = _events(result.run_dir, "splits")
    assert (splits["train"], splits["dev"], splits["test"]) == (12, 6, 6)
    assert splits["selection_split"] == "test" and result.results.selection_split == "test"
    rounds = read_events(result.run_dir).rounds
    assert [r.step for r in rounds] == [3, 6, 9], "rounds at the ends of epochs 1-3"
    assert [len(r.proposals) for r in rounds] == [3, 3, 2]
    restarts = _events(result.run_dir, "restart")
    assert [r["text"] for r in restarts] == [PROMPTS[0], PROMPTS[3], PROMPTS[6]]
    assert all(r["moments"] == "keep" for r in restarts)
    call = json.loads((result.run_dir / "llm_calls.jsonl").read_text().splitlines()[0])
    assert call["request"]["messages"][0]["content"].startswith("Hi GPT")
    # The recorded configuration reads back: the run resumes (here from its final checkpoint).
    (result.run_dir / "results.json").unlink()
    assert resume(result.run_dir).results.test == result.results.test


def test_llm_seed_run_follows_the_runs_seed(tmp_path, shared_data_dir):
    """Two seeds of a grid sample the LLM differently, and the call log says with which seed."""
    for seed in (3, 4):
        result = _run(
            tmp_path,
            shared_data_dir,
            [ANSWER] * 2,
            **{"data.seed": seed, "llm.sampling.seed": "run"},
        )
        lines = (result.run_dir / "llm_calls.jsonl").read_text().splitlines()
        assert [json.loads(line)["request"]["params"]["seed"] for line in lines] == [seed, seed + 1]


def test_a_local_llm_that_is_the_backbone_shares_its_model(tmp_path, shared_data_dir):
    """The tiny random model proposes nonsense, but through the real in-process back-end."""
    result = _run(
        tmp_path,
        shared_data_dir,
        [],
        **{
            "llm.backend": "local_hf",
            "llm.model": "tiny-causal-lm",
            "llm.cache.enabled": False,
            "llm.sampling.max_tokens": 12,
        },
    )
    llm = result.results.llm
    assert llm is not None and llm.shares_backbone_model is True and llm.calls == 2
    lines = (result.run_dir / "llm_calls.jsonl").read_text().splitlines()
    identities = [json.loads(line)["identity"] for line in lines]
    assert identities == [{"backend": "local_hf", "model": "tiny-causal-lm"}] * 2
    assert len(read_events(result.run_dir).rounds) == 2
