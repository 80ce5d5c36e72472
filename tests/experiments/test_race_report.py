"""The start race in a grid's tables and report: the summary per arm, the entrants of each run
ranked as the race ranked them, and the race plot."""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llm_catalyst.commands import app
from llm_catalyst.experiments.races import entrant_origin
from llm_catalyst.experiments.report import write_report
from llm_catalyst.experiments.results import collect_runs
from llm_catalyst.experiments.tables import comparison_table, to_markdown
from llm_catalyst.records import RaceEntrant
from tests.catalyst.small_runs import PROMPTS, run_settings, script
from tests.experiments.synthetic_runs import training_events, write_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _section(page: str, title: str) -> str:
    start = page.index(f"<h2>{title}</h2>")
    end = page.find("<section ", start)
    return page[start : end if end != -1 else len(page)]


def _race_table(fragment: str) -> list[list[str]]:
    """The cells of the entrants' table (the one after the race's plot), row by row."""
    start = fragment.index("<th>#</th>")
    body = fragment[fragment.index("<tbody>", start) : fragment.index("</tbody>", start)]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr.*?</tr>", body)]


@pytest.fixture(scope="module")
def race_grid(tmp_path_factory: pytest.TempPathFactory, shared_data_dir: Path) -> Path:
    """``compare`` of plain and race on SST-2, seed 1, with the tiny model: 20 steps, rungs of
    1 step, 3 LLM texts (5 entrants with the random start and the instruction)."""
    folder = tmp_path_factory.mktemp("race-grid")
    settings = run_settings(
        folder,
        shared_data_dir,
        script(folder, [json.dumps(PROMPTS[:3])]),
        **{"train.steps": 20, "race.rung_steps": 1, "llm.proposer.num_proposals": 3},
    )
    for key in ("data.task", "output_dir"):
        settings.pop(key)
    grid = folder / "grid"
    args = ["compare", "--tasks", "sst2", "--methods", "plain,race", "--seeds", "1"]
    args += ["--output", str(grid)]
    args += [arg for k, v in settings.items() for arg in ("--set", f"{k}={json.dumps(v)}")]
    outcome = CliRunner().invoke(app, args)
    assert outcome.exit_code == 0, outcome.output
    (grid / "compare-output.txt").write_text(outcome.output, encoding="utf-8")
    return grid


def _race(grid: Path) -> dict[str, Any]:
    results = json.loads((grid / "sst2/race/seed1/results.json").read_text(encoding="utf-8"))
    return results["race"]


def test_the_grid_s_markdown_summarises_the_race_per_arm(race_grid: Path) -> None:
    race = _race(race_grid)
    origin = entrant_origin(RaceEntrant.model_validate(race["entrants"][race["winner"]]))
    first_cut = min(race["cuts"], key=lambda cut: cut["rung"])
    led = int(first_cut["ranking"][0] == race["winner"])
    row = (
        f"| sst2 | race | 1 | 1 {origin} | {led}/1 | 5.0 | {race['steps']:.1f} | "
        f"{race['discarded_steps']:.1f} ({race['discarded_steps'] / 20:.0%}) |"
    )
    for markdown in (
        (race_grid / "comparison.md").read_text(encoding="utf-8"),
        (race_grid / "compare-output.txt").read_text(encoding="utf-8"),
    ):
        assert "Start race per arm:" in markdown
        assert row in markdown
        assert "| sst2 | plain |" not in markdown.split("Start race per arm:")[1]


def test_the_report_shows_each_race_with_its_plot_and_entrants(race_grid: Path) -> None:
    race = _race(race_grid)
    won = race["entrants"][race["winner"]]
    page = write_report(race_grid).read_text(encoding="utf-8")

    assert "<h3>the start races</h3>" in page
    assert "start race" not in _section(page, "sst2 · plain · seed 1")
    run = _section(page, "sst2 · race · seed 1")
    assert "<h3>start race: the entrants and how far each got</h3>" in run
    # the race's plot is embedded, the same bytes as its file
    plot = (race_grid / "report" / "sst2__race__seed1-race.png").read_bytes()
    assert plot.startswith(PNG_SIGNATURE)
    (embedded,) = re.findall(
        r'<img alt="sst2__race__seed1-race" src="data:image/png;base64,([^"]+)"', run
    )
    assert base64.b64decode(embedded) == plot
    # the winner's text heads the entrants' table, highlighted; every entrant is listed
    rows = _race_table(run)
    assert len(rows) == len(race["entrants"]) == 5
    assert rows[0][0] == f"#{won['index']}" and rows[0][-1] == "winner"
    assert rows[0][2] == html.escape(won["text"], quote=True)
    assert f'<tr class="chosen"><td>#{won["index"]}</td>' in run
    # SST-2's instruction is cut to the tiny model's 10 slots: what it was is beside it
    (instruction,) = [r for r in rows if r[1] == "instruction"]
    assert instruction[3] == "Decide whether this movie review is positive or negative."
    assert {r[1] for r in rows} == {"random start", "instruction", "llm"}


def _golden_race() -> dict[str, Any]:
    """The race of tests/catalyst's golden run: entrant 1 wins; 3 is cut after rung 2, 2 and 0
    after rung 1 (third and fourth)."""
    path = Path(__file__).parents[1] / "catalyst" / "fixtures" / "golden" / "race.json"
    return json.loads(path.read_text(encoding="utf-8"))["results"]["race"]


def test_entrants_are_listed_as_the_race_ranked_them_with_what_did_not_enter(
    tmp_path: Path,
) -> None:
    race = _golden_race()
    cut_text = race["entrants"][3]["text"]
    field = {
        "event": "race_entrants",
        "entrants": race["entrants"],
        "details": {
            "merged": [
                {"text": "Decide: <positive> or negative?", "into": race["entrants"][1]["text"]}
            ],
            "rejected": [{"text": "Say it again", "reason": "already tried"}],
            "cut": [{"text": f"{cut_text} Answer in one word, please.", "kept": cut_text}],
        },
    }
    write_run(tmp_path / "race-s1", method="race", race=race, events=[field])
    page = write_report(tmp_path / "race-s1").read_text(encoding="utf-8")
    rows = _race_table(page)
    assert [(r[0], r[4], r[8]) for r in rows] == [
        ("#1", "2", "winner"),
        ("#3", "2", "cut after rung 2 (2 of 2)"),
        ("#2", "1", "cut after rung 1 (3 of 4)"),
        ("#0", "1", "cut after rung 1 (4 of 4)"),
        ("—", "—", "merged into #1: the same slots"),
        ("—", "—", "rejected: already tried"),
    ]
    # the LLM's text before the word cap cut it; the merged text escaped
    assert rows[1][3] == f"{cut_text} Answer in one word, please."
    assert rows[4][2] == "Decide: &lt;positive&gt; or negative?"
    # no train steps, so no curves: only the race's plot
    assert page.count("<img ") == 1


def test_a_field_of_one_is_counted_apart_from_the_races(tmp_path: Path) -> None:
    race = _golden_race()
    alone = {
        "entrants": race["entrants"][:1],
        "winner": 0,
        "steps": 0,
        "discarded_steps": 0,
    }
    spent = {"gradient_steps": 20, "race_steps": 12, "discarded_race_steps": 8}
    write_run(tmp_path / "s1", method="race", race=race, compute=spent, events=training_events(4))
    write_run(tmp_path / "s2", method="race", seed=2, race=alone, compute={"gradient_steps": 20})
    markdown = to_markdown(comparison_table(collect_runs(tmp_path).finished))
    # one contested race won by the instruction, its leader after rung 1; 8 of 40 steps cut
    assert "| sst2 | race | 2 (1 field of one) | 1 instruction | 1/1 | 2.5 | 6.0 | 4.0 (20%) |" in (
        markdown
    )
