"""The start race (methods race, random-race, llm-init): the field, the budget, the rungs, the
records, and a race killed mid-rung resumed to the uninterrupted result."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from llm_catalyst.catalyst import load_run_config, run
from llm_catalyst.catalyst.config import RaceConfig
from llm_catalyst.catalyst.schedule import race_fields, race_steps
from llm_catalyst.catalyst.setup import setup
from llm_catalyst.catalyst.state import LoopState
from llm_catalyst.distributed import Distributed
from llm_catalyst.errors import ConfigError
from llm_catalyst.rundir import RunDirectory
from llm_catalyst.training.trainer import PromptTrainer
from tests.catalyst.small_runs import PROMPTS, run_settings, script

SST2_INSTRUCTION = "Decide whether this movie review is positive or negative."

# 20 steps; the field is the random start, SST-2's instruction and 3 LLM texts (5 entrants):
# rungs of 5, 3 and 2 entrants of 1 step take 10 steps, of which the winner's 3 are kept, and
# the winner takes the 10 steps left.
RACE: dict[str, Any] = {
    "train.steps": 20,
    "race.rung_steps": 1,
    "llm.proposer.num_proposals": 3,
}


def _race_run(tmp_path: Path, data_dir: Path, method: str = "race", **extra: Any) -> Path:
    answers = [json.dumps(PROMPTS[:3])]
    settings = run_settings(tmp_path, data_dir, script(tmp_path, answers), method=method)
    config = load_run_config(None, {**settings, **RACE, **extra})
    return run(config, name=method).run_dir


def _lines(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    lines = (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [event for event in map(json.loads, lines) if event["event"] == kind]


def _results(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "results.json").read_text(encoding="utf-8"))


def test_successive_halving_fields():
    race = RaceConfig(rung_steps=4, eta=2)
    assert race_fields(8, race) == [8, 4, 2]
    assert race_fields(5, race) == [5, 3, 2]
    assert race_fields(1, race) == []
    assert race_steps(8, race) == 4 * 14
    assert race_fields(8, RaceConfig(eta=3)) == [8, 3]
    assert race_fields(8, RaceConfig(zero_step_rung=True)) == [4, 2]


@pytest.mark.parametrize("method", ["race", "random-race"])
def test_a_race_executes_exactly_the_budget(tmp_path, shared_data_dir, method):
    run_dir = _race_run(tmp_path, shared_data_dir, method)
    results = _results(run_dir)
    race, compute = results["race"], results["compute"]
    leg_steps = sum(len(leg["train_losses"]) for leg in race["legs"])
    final_steps = len(_lines(run_dir, "train_step"))
    assert (
        leg_steps
        == race["steps"]
        == compute["race_steps"]
        == race_steps(5, RaceConfig(rung_steps=1))
    )
    assert leg_steps + final_steps == compute["gradient_steps"] == 20
    winner_steps = max(leg["steps"] for leg in race["legs"] if leg["entrant"] == race["winner"])
    assert race["discarded_steps"] == race["steps"] - winner_steps
    assert _lines(run_dir, "train_step")[0]["step"] == winner_steps + 1
    # The field: the random start, the instruction, three texts; every cut keeps the best half.
    origins = [entrant["origin"] for entrant in race["entrants"]]
    assert origins == ["initial", "instruction", *["llm" if method == "race" else "random"] * 3]
    assert [len(cut["survivors"]) for cut in race["cuts"]] == [3, 2, 1]
    assert race["cuts"][-1]["survivors"] == [race["winner"]]


def test_random_race_calls_no_llm(tmp_path, shared_data_dir):
    unreadable = tmp_path / "not-a-script.json"
    unreadable.write_text("an LLM asked would fail the run", encoding="utf-8")
    run_dir = _race_run(tmp_path, shared_data_dir, "random-race", **{"llm.script": str(unreadable)})
    assert _results(run_dir)["llm"]["calls"] == 0
    assert not (run_dir / "llm_calls.jsonl").exists()


def test_entrants_are_ranked_by_dev_loss_and_keep_their_moments(tmp_path, shared_data_dir):
    """A survivor's second leg continues its first: its train losses over both rungs equal
    those of one trainer taking the same steps from its rows without a break (moments kept)."""
    run_dir = _race_run(tmp_path, shared_data_dir, **{"race.rung_steps": 2, "train.steps": 40})
    race = _results(run_dir)["race"]
    for cut in race["cuts"]:
        legs = {leg["entrant"]: leg for leg in race["legs"] if leg["rung"] == cut["rung"]}
        keys = [(legs[i]["dev_loss"], -legs[i]["dev_accuracy"]) for i in cut["ranking"]]
        assert keys == sorted(keys)
        assert set(cut["survivors"]) == set(cut["ranking"][: len(cut["survivors"])])
    survivor = race["cuts"][0]["survivors"][0]
    losses = [
        loss
        for leg in race["legs"]
        if leg["entrant"] == survivor and leg["rung"] in (1, 2)
        for loss in leg["train_losses"]
    ]
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    entrant = checkpoint["state"]["race"]["entrants"][survivor]["rows"]
    config = load_run_config(run_dir / "config.yaml")
    state = LoopState.fresh(config.train.select_by)
    parts = setup(config, state, RunDirectory.open(run_dir), Distributed.single())
    trainer = PromptTrainer(
        parts.backbone, entrant, parts.splits.train, config.train, config.data.seed, 40
    )
    straight = [trainer.train_step().loss for _ in range(4)]
    assert losses == pytest.approx(straight, abs=1e-6)


def test_llm_init_ranks_the_field_before_any_step(tmp_path, shared_data_dir):
    run_dir = _race_run(tmp_path, shared_data_dir, "llm-init")
    results = _results(run_dir)
    race = results["race"]
    assert {leg["rung"] for leg in race["legs"]} == {0}
    assert all(leg["steps"] == 0 and not leg["train_losses"] for leg in race["legs"])
    (cut,) = race["cuts"]
    assert cut["survivors"] == [cut["ranking"][0]] == [race["winner"]]
    assert race["steps"] == race["discarded_steps"] == 0
    assert len(_lines(run_dir, "train_step")) == results["compute"]["gradient_steps"] == 20


def test_the_zero_step_rung_cuts_before_the_first_step(tmp_path, shared_data_dir):
    run_dir = _race_run(tmp_path, shared_data_dir, **{"race.zero_step_rung": True})
    race = _results(run_dir)["race"]
    assert [cut["rung"] for cut in race["cuts"]] == [0, 1, 2]
    assert [len(cut["survivors"]) for cut in race["cuts"]] == [3, 2, 1]
    assert race["steps"] == 3 + 2


def test_a_race_that_cannot_fit_the_budget_is_refused(tmp_path, shared_data_dir):
    with pytest.raises(ConfigError, match=re.escape("race.rung_steps=4 x (5 + 3 + 2) = 40 steps")):
        _race_run(tmp_path, shared_data_dir, **{"race.rung_steps": 4})
    assert not (tmp_path / "runs").exists(), "a refused run writes nothing"


def test_a_field_of_one_is_no_race(tmp_path, shared_data_dir):
    """The LLM wrote nothing usable and there is no instruction: the random start trains alone
    for the whole budget, and the race records why."""
    settings = {
        "race.instruction": False,
        "llm.script": str(script(tmp_path, ["[]"] * 4, "unusable.json")),
    }
    run_dir = _race_run(tmp_path, shared_data_dir, **settings)
    results = _results(run_dir)
    assert results["race"]["entrants"][0]["origin"] == "initial"
    assert len(results["race"]["entrants"]) == 1 and results["race"]["legs"] == []
    assert len(_lines(run_dir, "train_step")) == 20
    (entrants,) = _lines(run_dir, "race_entrants")
    assert entrants["details"]["skip_reason"]


def test_an_llm_text_equal_to_the_instruction_is_merged_into_it(tmp_path, shared_data_dir):
    """The instruction is cut to the 10 slots of the tiny model's tokenizer (recorded with the
    text it was cut from), and an LLM text that fills the slots alike is the same entrant."""
    answers = [json.dumps([SST2_INSTRUCTION, PROMPTS[1]])]
    settings = run_settings(tmp_path, shared_data_dir, script(tmp_path, answers), method="race")
    run_dir = run(load_run_config(None, {**settings, **RACE}), name="race").run_dir
    _, instruction, llm = _results(run_dir)["race"]["entrants"]
    assert instruction["origin"] == "instruction" and instruction["written"] == SST2_INSTRUCTION
    assert (
        SST2_INSTRUCTION.startswith(instruction["text"]) and instruction["text"] != SST2_INSTRUCTION
    )
    assert (llm["origin"], llm["text"], llm["written"]) == ("llm", PROMPTS[1], None)
    (event,) = _lines(run_dir, "race_entrants")
    assert event["details"]["merged"] == [{"text": SST2_INSTRUCTION, "into": instruction["text"]}]


# -- a race killed mid-rung ---------------------------------------------------------------------


def _arguments(tmp_path: Path, data_dir: Path, name: str) -> list[str]:
    answers = [json.dumps(PROMPTS[:3])]
    settings = run_settings(
        tmp_path,
        data_dir,
        script(tmp_path, answers),
        method="race",
        **{
            **RACE,
            "race.rung_steps": 2,
            "train.steps": 40,
            "output_dir": str(tmp_path / name),
            "llm.cache.directory": str(tmp_path / f"cache-{name}"),
        },
    )
    return ["run", *(arg for k, v in settings.items() for arg in ("--set", f"{k}={json.dumps(v)}"))]


def _reduced(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    results = _results(run_dir)
    kept = {k: results[k] for k in ("test", "dev", "best_step", "best_origin", "race", "compute")}
    compared = ("race_leg", "race_cut", "train_step", "dev_eval")
    lines = (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()
    events = [
        {k: v for k, v in event.items() if k != "time"}
        for event in map(json.loads, lines)
        if event["event"] in compared
    ]
    return kept, events


def test_a_race_killed_mid_rung_resumes_to_the_uninterrupted_result(tmp_path, shared_data_dir):
    from typer.testing import CliRunner

    from llm_catalyst.commands import app

    outcome = CliRunner().invoke(app, _arguments(tmp_path, shared_data_dir, "reference"))
    assert outcome.exit_code == 0, outcome.output
    (reference,) = (tmp_path / "reference").iterdir()

    command = [sys.executable, "-m", "llm_catalyst", *_arguments(tmp_path, shared_data_dir, "runs")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    root, deadline = tmp_path / "runs", time.monotonic() + 120
    run_dir = None
    while time.monotonic() < deadline and run_dir is None:
        assert child.poll() is None, child.communicate()
        events = root / "x" if not root.exists() else next(root.iterdir(), root) / "events.jsonl"
        if events.is_file() and events.read_text().count('"race_leg"') >= 6:  # rung 2 begun
            run_dir = events.parent
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert run_dir is not None, "the race made no progress in 120 s"
    assert not (run_dir / "results.json").exists(), "the child was killed before finishing"
    outcome = CliRunner().invoke(app, ["run", "--resume", str(run_dir)])
    assert outcome.exit_code == 0, outcome.output
    assert _reduced(run_dir) == _reduced(reference)


def test_a_long_llm_text_is_cut_to_fit_and_kept_with_what_the_llm_wrote(tmp_path, shared_data_dir):
    """``max_words: fit``: a text over the slots enters cut at a word boundary, never
    rejected, and the record keeps the LLM's text beside the cut."""
    long = " ".join(["Decide carefully whether the opinion in this movie review"] * 4)
    answers = [json.dumps([long, PROMPTS[1]])]
    settings = run_settings(tmp_path, shared_data_dir, script(tmp_path, answers), method="race")
    settings |= {**RACE, "llm.proposer.max_words": "fit"}
    run_dir = run(load_run_config(None, settings), name="race").run_dir
    entrants = _results(run_dir)["race"]["entrants"]
    (cut,) = [e for e in entrants if e["written"] == long]
    assert cut["origin"] == "llm" and long.startswith(cut["text"]) and cut["text"] != long
    assert len(cut["text"].split()) < len(long.split())
    assert [e["written"] or e["text"] for e in entrants if e["origin"] == "llm"] == [
        long,
        PROMPTS[1],
    ]
