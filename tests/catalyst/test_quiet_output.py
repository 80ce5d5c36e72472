"""What a run says: no third-party warning or loading bar on stderr, and its own messages as
records of the library's logger, from the main process alone."""

from __future__ import annotations

import io
import json
import logging
import warnings

import pytest
from transformers.utils import logging as transformers_logging

from llm_catalyst.catalyst.config import load_run_config
from llm_catalyst.catalyst.domain import Round
from llm_catalyst.catalyst.output import RoundRecord, RunOutput, RunProgress
from llm_catalyst.catalyst.runner import run
from llm_catalyst.catalyst.state import LoopState
from llm_catalyst.catalyst.stop import StopRequest
from llm_catalyst.progress import NoProgress
from llm_catalyst.records import RoundEvent
from llm_catalyst.rundir import RunDirectory
from llm_catalyst.weights.presets import load_pretrained_causal_lm
from tests.catalyst.small_runs import ANSWER, run_settings, script

NOISE = ("FutureWarning", "DeprecationWarning", "deprecated", "Loading weights", "it/s]")


def _said(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str]]:
    return [
        (record.name, record.levelname, record.getMessage())
        for record in caplog.records
        if record.name.startswith("llm_catalyst.catalyst")
    ]


def test_a_catalyst_run_from_a_saved_model_prints_no_third_party_noise(
    tmp_path, shared_data_dir, capfd, caplog
):
    """The tiny model is saved and loaded back by path, so ``from_pretrained`` runs as it does
    for a real model; the packed scoring path passes the prompt's key/value cache.

    Three channels: the process's stderr, Python warnings, and transformers' logger, whose
    handler holds the stderr of the moment transformers was imported (pytest's, not capfd's).
    The run's own messages (the LLM plan, its directory, each round's decision) are records of
    the library's logger: printed by no one unless the host gives them a handler.
    """
    model, tokenizer = load_pretrained_causal_lm("tiny-causal-lm")
    saved = tmp_path / "tiny-saved"
    model.save_pretrained(saved)
    tokenizer.save_pretrained(saved)
    settings = run_settings(
        tmp_path,
        shared_data_dir,
        script(tmp_path, [ANSWER] * 4),
        method="catalyst",
        **{"backbone.model": str(saved)},
    )
    capfd.readouterr()
    # transformers says some things once per process; an earlier test must not hide them here.
    transformers_logging.warning_once.cache_clear()
    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    transformers_logger = logging.getLogger("transformers")
    transformers_logger.addHandler(handler)
    try:
        with (
            warnings.catch_warnings(record=True) as caught,
            caplog.at_level(logging.INFO, logger="llm_catalyst"),
        ):
            warnings.simplefilter("always")
            result = run(load_run_config(None, settings))
    finally:
        transformers_logger.removeHandler(handler)
    err = capfd.readouterr().err
    assert logged.getvalue() == ""
    assert result.results.test.n == 16
    assert [str(w.message) for w in caught if issubclass(w.category, Warning)] == []
    assert [word for word in NOISE if word in err] == [], err
    assert "LLM plan" not in err and "run directory" not in err, err

    lines = (result.run_dir / "events.jsonl").read_text().splitlines()
    rounds = [event for event in map(json.loads, lines) if event["event"] == "round"]
    assert [event["round"] for event in rounds] == [1, 2]
    plan = "LLM plan: 2 round(s) x up to 1 call(s) = at most 2 LLM call(s)"
    decisions = [
        f"round {event['round']}/2"
        + (f" at step {event['step']}" if event["step"] else "")
        + f": {event['reason']}"
        for event in rounds
    ]
    assert _said(caplog) == [
        ("llm_catalyst.catalyst.setup", "INFO", plan),
        ("llm_catalyst.catalyst.runner", "INFO", f"run directory: {result.run_dir}"),
        *[("llm_catalyst.catalyst.output", "INFO", decision) for decision in decisions],
    ]


def test_a_run_names_a_label_word_scored_by_its_first_token_once(tmp_path, shared_data_dir, caplog):
    rows = ["a gripping film", "a dull mess", "warm and funny", "the jokes fall flat"]
    for split in ("train", "test"):
        lines = "".join(f"{text},{i % 2}\n" for i, text in enumerate(rows * 2))
        (tmp_path / f"{split}.csv").write_text("text,label\n" + lines, encoding="utf-8")
    task = {
        "name": "reviews",
        "description": "Short movie reviews, good or bad.",
        "train": str(tmp_path / "train.csv"),
        "test": str(tmp_path / "test.csv"),
        "columns": {"text": "text"},
        "label_names": ["good", "bad"],
        "label_words": [" terrific", " abominable"],
        "template": "Review: {text}\nSentiment:",
        "text_fields": ["text"],
    }
    settings = run_settings(tmp_path, shared_data_dir, script(tmp_path, []), method="plain")
    settings |= {"data.task": task, "data.shots": 2, "train.steps": 6, "max_test_examples": 4}
    with caplog.at_level(logging.INFO, logger="llm_catalyst"):
        run(load_run_config(None, settings))
    named = [said for said in _said(caplog) if "abominable" in said[2]]
    assert named == [
        (
            "llm_catalyst.catalyst.setup",
            "WARNING",
            "warning: 'tiny-causal-lm' splits label words of task 'reviews' into several tokens "
            "and only the first is scored: ' abominable' as ' ab'; for whole words, choose label "
            "words of one token each",
        )
    ]


@pytest.mark.parametrize("is_main", [True, False], ids=["main", "other"])
def test_a_round_is_said_by_the_main_process_alone(tmp_path, caplog, is_main):
    """Every process of a data-parallel run ends each round; were they all to say so, each
    line would come once per process. The round's record is written all the same (the other
    processes' run directory drops it: distributed.py)."""
    progress = RunProgress(NoProgress(), LoopState.fresh("accuracy"), total=8)
    stop = StopRequest(tmp_path)
    output = RunOutput(RunDirectory(tmp_path), lambda: None, stop, progress, is_main)
    event = RoundEvent(round=1, step=3, reason="kept 'Was the film good or bad?' [dev 0.75]")
    with caplog.at_level(logging.INFO, logger="llm_catalyst"):
        output.end_round(RoundRecord(Round(index=0, number=1, label="1/2", is_init=False), event))
    said = "round 1/2 at step 3: kept 'Was the film good or bad?' [dev 0.75]"
    expected = [("llm_catalyst.catalyst.output", "INFO", said)] if is_main else []
    assert _said(caplog) == expected
    assert json.loads((tmp_path / "events.jsonl").read_text())["reason"] == event.reason
