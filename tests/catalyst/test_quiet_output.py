"""A normal run prints our own lines only: no third-party warning, no loading bar."""

from __future__ import annotations

import io
import logging
import warnings

from rich.console import Console
from transformers.utils import logging as transformers_logging

from llm_catalyst.catalyst.config import load_run_config
from llm_catalyst.catalyst.runner import run
from llm_catalyst.weights.presets import load_pretrained_causal_lm
from tests.catalyst.small_runs import ANSWER, run_settings, script

NOISE = ("FutureWarning", "DeprecationWarning", "deprecated", "Loading weights", "it/s]")


def test_a_catalyst_run_from_a_saved_model_prints_no_third_party_noise(
    tmp_path, shared_data_dir, capfd
):
    """The tiny model is saved and loaded back by path, so ``from_pretrained`` runs as it does
    for a real model; the packed scoring path passes the prompt's key/value cache.

    Three channels: the process's stderr, Python warnings, and transformers' logger, whose
    handler holds the stderr of the moment transformers was imported (pytest's, not capfd's).
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
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = run(load_run_config(None, settings))
    finally:
        transformers_logger.removeHandler(handler)
    err = capfd.readouterr().err
    assert logged.getvalue() == ""
    assert result.results.test.n == 16
    assert [str(w.message) for w in caught if issubclass(w.category, Warning)] == []
    assert [word for word in NOISE if word in err] == [], err
    assert "run directory:" in err


def test_a_run_names_a_label_word_scored_by_its_first_token_once(tmp_path, shared_data_dir):
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
    printed = io.StringIO()
    run(load_run_config(None, settings), console=Console(file=printed, soft_wrap=True))
    named = [line for line in printed.getvalue().splitlines() if "abominable" in line]
    assert named == [
        "warning: 'tiny-causal-lm' splits label words of task 'reviews' into several tokens and "
        "only the first is scored: ' abominable' as ' ab'; for whole words, choose label words "
        "of one token each"
    ]
