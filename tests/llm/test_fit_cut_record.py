"""``llm.proposer.max_words: fit`` in a run: a proposal longer than the prompt's slots hold is cut
to the fitted word cap and scored, and the round's record keeps the LLM's text beside the cut."""

from __future__ import annotations

import json
from pathlib import Path

from llm_catalyst.catalyst.config import load_run_config
from llm_catalyst.catalyst.runner import run
from tests.catalyst.small_runs import run_settings, script

LONG = "Read this movie review with great care and then say whether the critic liked the film"


def test_a_long_answer_under_fit_is_cut_scored_and_recorded_with_both_texts(
    tmp_path: Path, shared_data_dir: Path
) -> None:
    answer = json.dumps([LONG, "Judge it."])
    settings = run_settings(
        tmp_path,
        shared_data_dir,
        script(tmp_path, [answer] * 2),
        **{"llm.proposer.max_words": "fit"},
    )
    result = run(load_run_config(None, settings))
    events = (result.run_dir / "events.jsonl").read_text().splitlines()
    first = next(e for e in map(json.loads, events) if e["event"] == "round")
    (cut,) = first["details"]["cut"]
    kept = cut["kept"]
    assert cut["text"] == LONG
    assert LONG.startswith(kept) and 0 < len(kept.split()) < len(LONG.split())
    assert [p["text"] for p in first["proposals"]] == [kept, "Judge it."]
    assert all(p["dev_loss"] is not None for p in first["proposals"])
    assert not any("too long" in r["reason"] for r in first["details"]["rejected"])
    calls = (result.run_dir / "llm_calls.jsonl").read_text().splitlines()
    assert json.loads(calls[0])["texts"] == [answer]  # the call log holds the whole answer
