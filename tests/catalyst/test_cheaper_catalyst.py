"""A cheaper catalyst changes no result: reused dev scores, the scoring path, races (off by
default) and the zero-shot score computed once per grid; and a run's progress lines.

The runs are the experiment's catalyst recipe in small: an LLM round before the first step,
rounds whose best proposal and S each take probe steps, on 16 dev examples per class.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pytest
from rich.console import Console

from llm_catalyst.catalyst.config import load_run_config
from llm_catalyst.catalyst.dev_scorer import DevScorer
from llm_catalyst.catalyst.runner import run
from llm_catalyst.catalyst.zero_shot import ZeroShotCache
from llm_catalyst.errors import ConfigError
from tests.catalyst.small_runs import ANSWER, PROMPTS, run_settings, script

RECIPE = {
    "train.steps": 24,
    "loop.stage_steps": None,
    "loop.init_round": True,
    "loop.probe_steps": 2,
    "loop.probe_top": 1,
    "loop.pool_size": 4,
    "data.shots": 16,
    "max_test_examples": 32,
    "train.eval_every": 4,
    "evaluate_zero_shot": True,
}
RESULT_KEYS = ("test", "dev", "best_step", "best_origin", "projected_text", "restarts")
COUNTS = ("dev_prompts_scored", "dev_prompts_reused")


def _run(
    tmp_path: Path,
    data_dir: Path,
    name: str,
    console: Console | None = None,
    answers: tuple[str, ...] = (ANSWER,) * 3,
    **extra,
):
    settings = run_settings(
        tmp_path,
        data_dir,
        script(tmp_path, list(answers), f"{name}.json"),
        **{**RECIPE, "llm.cache.directory": str(tmp_path / f"cache-{name}"), **extra},
    )
    config = load_run_config(None, settings)
    shared = ZeroShotCache(tmp_path / "grid")  # as the cells of a grid share it
    run_dir = run(config, console=console or Console(quiet=True), zero_shot=shared).run_dir
    results = json.loads((run_dir / "results.json").read_text())
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    events = [{k: v for k, v in e.items() if k != "time"} for e in map(json.loads, lines)]
    return results, events


def _decisions(events: list[dict]) -> list[dict]:
    """What the run decided and logged, without the counts of scored and reused prompts."""
    kept = ("train_step", "dev_eval", "round", "restart")
    return [{k: v for k, v in e.items() if k not in COUNTS} for e in events if e["event"] in kept]


@pytest.fixture(scope="module")
def reused(tmp_path_factory, shared_data_dir):
    """Scores reused (the default), with the progress shown as log lines."""
    tmp_path = tmp_path_factory.mktemp("reused")
    output = io.StringIO()
    console = Console(file=output, width=200)
    results, events = _run(tmp_path, shared_data_dir, "reused", console, **{"train.progress": True})
    return results, events, output.getvalue(), tmp_path


@pytest.fixture(scope="module")
def not_reused(tmp_path_factory, shared_data_dir, reused):
    """Every score computed afresh (each prompt gets a key of its own), sharing the zero-shot
    cache of ``reused``, whose zero-shot score it finds there."""
    tmp_path = reused[3]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DevScorer, "_key", lambda self, prompt, way: uuid.uuid4().hex)
        return _run(tmp_path, shared_data_dir, "fresh")


def test_reused_scores_change_no_result(reused, not_reused):
    results, events, _, _ = reused
    fresh_results, fresh_events = not_reused
    assert {k: results[k] for k in RESULT_KEYS} == {k: fresh_results[k] for k in RESULT_KEYS}
    assert _decisions(events) == _decisions(fresh_events)
    budget, fresh = results["compute"], fresh_results["compute"]
    assert budget["dev_prompts_reused"] > 0 and fresh["dev_prompts_reused"] == 0
    assert (
        budget["dev_prompts_scored"] + budget["dev_prompts_reused"] == fresh["dev_prompts_scored"]
    )
    assert budget["dev_forward_passes"] < fresh["dev_forward_passes"]
    rounds = [e for e in events if e["event"] == "round"]
    assert sum(r["dev_prompts_reused"] for r in rounds) > 0
    assert all(r["race"] == [] for r in rounds), "racing is off by default"
    assert all(p["dev_n"] == 32 for r in rounds for p in r["proposals"])


def test_the_zero_shot_score_is_computed_once_per_grid(reused, not_reused):
    results, events, _, tmp_path = reused
    fresh_results, fresh_events = not_reused
    first, second = (
        next(e for e in evs if e["event"] == "zero_shot_test") for evs in (events, fresh_events)
    )
    assert (first["reused"], second["reused"]) == (False, True)
    assert results["zero_shot_test"] == fresh_results["zero_shot_test"]
    assert results["compute"]["test_forward_passes"] == 2 * 32
    assert fresh_results["compute"]["test_forward_passes"] == 32
    assert len(list((tmp_path / "grid" / ".zero-shot").glob("*.json"))) == 1
    assert not (tmp_path / "runs" / ".zero-shot").exists()


def test_another_test_subset_gets_its_own_zero_shot_score(reused, shared_data_dir):
    _, _, _, tmp_path = reused
    _, events = _run(tmp_path, shared_data_dir, "subset", max_test_examples=24)
    (zero,) = [e for e in events if e["event"] == "zero_shot_test"]
    assert not zero["reused"] and zero["n"] == 24
    assert len(list((tmp_path / "grid" / ".zero-shot").glob("*.json"))) == 2


def test_progress_lines_name_stage_round_step_loss_and_scores(reused):
    _, _, output, _ = reused
    lines = output.splitlines()
    assert any(line.startswith("zero-shot on test: step 0/24") for line in lines), output
    assert any(line.startswith("round 0/2: LLM: step 0/24") for line in lines), output
    assert any(line.startswith("round 1/2: scoring the pool: step 8/24") for line in lines)
    assert any(line.startswith("round 2/2: probes: step") for line in lines), output
    assert any(line.startswith("final stage: step") and "ETA" in line for line in lines), output
    assert any(line.startswith("test: step 24/24, loss") for line in lines), output
    assert all("scored" in line for line in lines if ": step " in line)


def test_stacked_and_sequential_scoring_choose_alike(reused, tmp_path, shared_data_dir):
    """The stacked passes give the sequential scores to float rounding: the same choices."""
    results, events, _, _ = reused
    stacked, stacked_events = _run(
        tmp_path, shared_data_dir, "stacked", **{"loop.scoring": "stacked"}
    )
    assert {k: stacked[k] for k in ("test", "best_step", "best_origin", "restarts")} == {
        k: results[k] for k in ("test", "best_step", "best_origin", "restarts")
    }
    rounds = [e for e in events if e["event"] == "round"]
    stacked_rounds = [e for e in stacked_events if e["event"] == "round"]
    assert [r["reason"][:40] for r in rounds] == [r["reason"][:40] for r in stacked_rounds]
    for ours, theirs in zip(rounds, stacked_rounds, strict=True):
        for a, b in zip(ours["proposals"], theirs["proposals"], strict=True):
            assert a["text"] == b["text"]
            assert a["dev_loss"] == pytest.approx(b["dev_loss"], abs=1e-5)


def test_a_race_chooses_among_finalists_scored_on_the_whole_dev_split(tmp_path, shared_data_dir):
    """6 proposals a round raced from 4 of the 32 dev examples: 6 on 4 (3 kept), 3 on 8 (2
    kept); the 2 finalists are scored on all 32, and the probed proposal is the finalist with
    the lowest whole-split loss."""
    extra = {"loop.racing": True, "loop.race_start": 4, "llm.proposer.num_proposals": 6}
    answers = tuple(json.dumps([f"Round {r}: {p}" for p in PROMPTS[:6]]) for r in range(3))
    results, events = _run(tmp_path, shared_data_dir, "race", answers=answers, **extra)
    rounds = [e for e in events if e["event"] == "round"]
    assert len(rounds) == 3
    for item in rounds:
        assert [list(s.values()) for s in item["race"]] == [[4, 6, 3], [8, 3, 2]]
        finalists = [p for p in item["proposals"] if p["dev_n"] == 32]
        assert len(finalists) == 2
        assert sorted(p["dev_n"] for p in item["proposals"] if p["dev_n"] != 32) == [4, 4, 4, 8]
        best = min(finalists, key=lambda p: p["dev_loss"])
        entrant = item["probes"][1]
        assert (entrant["text"], entrant["dev_loss_before"]) == (best["text"], best["dev_loss"])
    assert results["compute"]["dev_prompts_raced_out"] == 3 * 4


def test_racing_refuses_the_first_proposal_rule(tmp_path, shared_data_dir):
    settings = run_settings(tmp_path, shared_data_dir, script(tmp_path, [ANSWER]))
    with pytest.raises(ConfigError, match="racing"):
        load_run_config(None, {**settings, "loop.racing": True, "loop.selection": "first"})
