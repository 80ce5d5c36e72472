"""Run directories written before the record schema (fixtures/rundir_v1) stay readable."""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import pytest

from llm_catalyst.experiments.report import SOFT_VS_PROJECTED, write_report
from llm_catalyst.experiments.results import collect_runs, read_events
from llm_catalyst.experiments.tables import comparison_table, to_markdown

FIXTURE = Path(__file__).parent / "fixtures" / "rundir_v1"


@pytest.fixture
def old_runs(tmp_path: Path) -> Path:
    copy = tmp_path / "rundir_v1"
    shutil.copytree(FIXTURE, copy)
    return copy


def test_old_grid_cells_and_an_old_tune_run_are_read(old_runs):
    runs = collect_runs(old_runs)
    assert not runs.unfinished
    by_dir = {record.path.relative_to(old_runs).parts[:3]: record for record in runs.finished}
    assert set(by_dir) == {
        ("grid", "sst2", "plain"),
        ("grid", "sst2", "catalyst"),
        ("grid", "sst2", "llm-only"),
        ("tune", "sst2-tiny-causal-lm-plain-s1"),
    }
    catalyst = by_dir["grid", "sst2", "catalyst"]
    assert catalyst.format_version == 1
    assert (catalyst.test.accuracy, catalyst.test.n) == (0.625, 16)
    assert catalyst.llm is not None and (catalyst.llm.calls, catalyst.llm.fresh_calls) == (2, 2)
    assert catalyst.compute is not None and catalyst.compute.gradient_steps == 8
    assert catalyst.backbone == "tiny-causal-lm"
    tune = by_dir["tune", "sst2-tiny-causal-lm-plain-s1"]
    assert tune.method == "plain" and tune.llm is None and tune.compute is None
    assert tune.zero_shot_test is not None and tune.zero_shot_test.n == 16
    assert tune.protocol == "fewshot", "taken from run.json where results.json lacks it"


def test_old_round_events_are_read(old_runs):
    events = read_events(old_runs / "grid" / "sst2" / "catalyst" / "seed1")
    assert [r.round for r in events.rounds] == [1, 2]
    assert all(len(r.proposals) == 2 for r in events.rounds)
    assert all(c.dev_loss is not None for r in events.rounds for c in r.proposals)
    assert [s.step for s in events.train_steps] == list(range(1, 9))


def test_report_and_tables_are_made_from_old_run_directories(old_runs):
    table = to_markdown(comparison_table(collect_runs(old_runs / "grid").finished))
    assert "| sst2 | catalyst | 1 | 62.5" in table
    page = write_report(old_runs).read_text(encoding="utf-8")
    assert "llm-only" in page and "catalyst" in page
    assert (write_report(old_runs / "grid").parent / "comparison.png").is_file()
    # the old catalyst logged S and, in its pool, the same projected text at another loss
    catalyst = page[page.index("<h2>sst2 · catalyst · seed 1</h2>") :]
    catalyst = catalyst[: catalyst.index("</section>")]
    assert catalyst.count(html.escape(SOFT_VS_PROJECTED, quote=True)) == 1
    assert "round 1 (after step 3): kept S" in catalyst
    # what the LLM wrote that was not scored is listed with why
    assert '<tr class="rejected"><td>rejected</td>' in catalyst and "already tried" in catalyst
