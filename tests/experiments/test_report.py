from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pytest

from llm_catalyst.errors import DataError
from llm_catalyst.experiments.plots import kept_point
from llm_catalyst.experiments.report import SOFT_VS_PROJECTED, method_scores, write_report
from llm_catalyst.experiments.results import RunEvents, collect_runs
from llm_catalyst.experiments.stats import bootstrap_ci
from llm_catalyst.experiments.tables import comparison_table
from llm_catalyst.records import (
    DevEvalEvent,
    Metrics,
    RestartEvent,
    RunResults,
    TrainStepEvent,
)
from llm_catalyst.rundir import RunDirectory
from tests.experiments.synthetic_runs import training_events, write_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSTILE = "<script>alert('x')</script> {braces} {0} $x^2$ & \"quoted\""
CHOSEN = "Rate the <b>mood</b> {label}"
PROJECTED = "movie great review"
EXPLANATION = html.escape(SOFT_VS_PROJECTED, quote=True)


def catalyst_events() -> list[dict]:
    def candidate(text: str, loss: float | None, **extra: object) -> dict:
        accuracy = None if loss is None else 1 - loss
        return {"text": text, "dev_loss": loss, "dev_accuracy": accuracy, **extra}

    return [
        *training_events(12, eval_every=3),
        {
            "event": "round",
            "round": 1,
            "step": 4,
            # S's projected text is in the pool again, scored as a hard prompt
            "pool": [
                candidate(PROJECTED, 0.6, source="current"),
                candidate(PROJECTED, 0.8, source="step 3, lowest train loss"),
                candidate(HOSTILE, 0.71, source="step 1"),
            ],
            "proposals": [
                candidate("unscored", None, source="llm"),
                candidate(CHOSEN, 0.55, source="llm"),
                candidate("Is it <good>?", 0.65, source="llm"),
                candidate("As good as S", 0.60001, source="llm"),
            ],
            "chosen": candidate(CHOSEN, 0.55, source="llm"),
            "reason": "best proposal beats the current prompt by 0.05 > margin",
            "skipped": False,
            "skip_reason": None,
            "details": {
                "rejected": [{"text": "Say <it> again", "reason": "already tried"}],
                "truncated": [{"text": CHOSEN, "kept": "Rate the", "dropped_tokens": 5}],
            },
        },
        {
            "event": "restart",
            "step": 4,
            "round": 1,
            "text": CHOSEN,
            "source": "llm",
            "dev_loss": 0.55,
            "dev_accuracy": 0.45,
            "improved": True,
        },
        {
            "event": "round",
            "round": 2,
            "step": 8,
            "pool": [candidate("p3", 0.5)],
            "proposals": [],
            "chosen": None,
            "reason": None,
            "skipped": True,
            "skip_reason": "LLM unavailable: <timeout> after 3 retries",
        },
    ]


@pytest.fixture
def grid(tmp_path: Path) -> Path:
    root = tmp_path / "grid"
    for seed, accuracy in ((1, 0.5), (2, 0.6)):
        write_run(root / f"plain-s{seed}", seed=seed, accuracy=accuracy, events=training_events(6))
    write_run(
        root / "catalyst-s1",
        method="catalyst",
        accuracy=0.7,
        events=catalyst_events(),
        projected_text=HOSTILE,
        wall_clock={"total_s": 200.0, "gradient_s": 120.0, "scoring_s": 30.0, "llm_s": 50.0},
        llm={"calls": 2, "prompt_tokens": 800, "completion_tokens": 90, "skipped_rounds": 1},
    )
    write_run(root / "catalyst-s2", method="catalyst", accuracy=None, events=training_events(3))
    return root


def embedded_images(page: str) -> list[bytes]:
    return [
        base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    ]


def assert_self_contained(page: str) -> None:
    """Images embedded, links only within the page, nothing fetched or run."""
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    anchors = set(re.findall(r'<section id="([^"]*)">', page))
    assert all(link[1:] in anchors for link in re.findall(r'href="([^"]*)"', page))
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page


def test_grid_report(grid: Path) -> None:
    report = write_report(grid)

    assert report == grid / "report" / "report.html"
    page = report.read_text(encoding="utf-8")
    assert_self_contained(page)
    assert page.count("<section ") == 4
    assert "<h2>comparison</h2>" in page
    assert "<td>sst2</td><td>catalyst</td><td>1</td><td>70.0</td><td>+20.0</td>" in page
    assert "<tr><td>catalyst</td><td>1</td><td>3.3 min</td><td>25%</td></tr>" in page
    assert "catalyst-s2 (unfinished)" in page
    # every run is linked from one index, by task and arm
    index = page[page.index("<h2>runs</h2>") : page.index("<section ")]
    assert table_cells(index) == [
        [
            "sst2",
            "plain",
            '<a href="#run-plain-s1">seed 1 (50.0%)</a> · '
            '<a href="#run-plain-s2">seed 2 (60.0%)</a>',
        ],
        ["sst2", "catalyst", '<a href="#run-catalyst-s1">seed 1 (70.0%)</a>'],
    ]
    assert '<p>unfinished: <a href="#run-catalyst-s2">catalyst-s2</a></p>' in index
    # the sections follow the table: task, arm, seed; unfinished runs last
    titles = re.findall(r'<section id="[^"]*"><h2>(.*?)</h2>', page)
    assert titles == [
        "sst2 · plain · seed 1",
        "sst2 · plain · seed 2",
        "sst2 · catalyst · seed 1",
        "catalyst-s2 (unfinished)",
    ]
    # what the rounds did: 2 rounds, 1 skipped, a restart from the LLM 0.05 below S
    rounds_row = "<td>sst2</td><td>catalyst</td><td>2</td><td>1</td><td>0</td><td>1 llm</td>"
    by_round = "<td>r1: 1, r2: 0</td>"
    assert f"<tr>{rounds_row}{by_round}<td>1/3</td><td>-0.050</td></tr>" in page

    # LLM and file texts arrive escaped, braces untouched, nothing executable
    escaped = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; {braces} {0} $x^2$ &amp; &quot;"
    assert page.count(escaped) == 2  # projected text and pool candidate
    assert "&lt;timeout&gt; after 3 retries" in page
    chosen_rows = re.findall(r'<tr class="chosen">(.*?)</tr>', page)
    assert len(chosen_rows) == 1
    assert "Rate the &lt;b&gt;mood&lt;/b&gt; {label}" in chosen_rows[0]
    assert "<b>mood</b>" not in page

    # the methods compared, one curves plot per run plus the rounds plot of the catalyst run,
    # same bytes as the files
    pngs = sorted((grid / "report").glob("*.png"))
    assert [p.name for p in pngs] == [
        "catalyst-s1-curves.png",
        "catalyst-s1-rounds.png",
        "catalyst-s2-curves.png",
        "comparison.png",
        "plain-s1-curves.png",
        "plain-s2-curves.png",
    ]
    for png in pngs:
        data = png.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000
    assert sorted(embedded_images(page)) == sorted(p.read_bytes() for p in pngs)


def test_single_run_report(grid: Path, tmp_path: Path) -> None:
    run_dir = grid / "catalyst-s1"
    report = write_report(run_dir, out_dir=tmp_path / "out")

    page = report.read_text(encoding="utf-8")
    assert_self_contained(page)
    assert "comparison" not in page
    assert page.count("<section ") == 1
    assert len(embedded_images(page)) == 2
    assert "<td>wall-clock</td><td>3.3 min</td>" in page
    assert "<td>LLM tokens (prompt / completion)</td><td>800 / 90</td>" in page
    assert "round 2 (after step 8)" in page
    assert "<td>LLM time</td><td>50.0 s</td>" in page


def test_duplicate_runs_replace_the_table_by_the_reason(tmp_path: Path) -> None:
    write_run(tmp_path / "first", seed=1)
    write_run(tmp_path / "again", seed=1)
    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert "No comparison table:" in page and "seed 1" in page
    assert page.count("<section ") == 2


def test_restarts_change_the_curves_plot(tmp_path: Path) -> None:
    events = training_events(6)
    write_run(tmp_path / "a", events=events)
    write_run(
        tmp_path / "b", seed=2, events=[*events, {"event": "restart", "step": 3, "text": "t"}]
    )
    write_report(tmp_path)
    first, second = (tmp_path / "report" / f"{n}-curves.png" for n in "ab")
    assert first.read_bytes() != second.read_bytes()


def test_no_runs_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no run directories"):
        write_report(tmp_path)


def section(page: str, title: str) -> str:
    """The part of the page about one run, from its heading to the next section."""
    start = page.index(f"<h2>{title}</h2>")
    end = page.find("<section ", start)
    return page[start : end if end != -1 else len(page)]


def table_cells(fragment: str) -> list[list[str]]:
    """The body cells of the first table in ``fragment``, row by row, as written (escaped)."""
    body = fragment[fragment.index("<tbody>") : fragment.index("</tbody>")]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr.*?</tr>", body)]


def test_proposals_are_read_against_s_with_their_dev_scores(grid: Path) -> None:
    page = write_report(grid).read_text(encoding="utf-8")
    run = section(page, "sst2 · catalyst · seed 1")
    start = run.index("round 1 (after step 4): restart from llm</h4>")
    round_1 = run[start : run.index("<h4>round 2")]

    # S first (the bar to beat), then the proposals by dev loss, then what was not scored
    assert table_cells(round_1) == [
        [
            "S (current soft prompt)",
            PROJECTED,
            "0.6000",
            "40.0%",
            "—",
            "scores: the soft prompt&#x27;s; text: its nearest tokens",
        ],
        [
            "llm",
            "Rate the &lt;b&gt;mood&lt;/b&gt; {label}",
            "0.5500",
            "45.0%",
            "-0.0500",
            "chosen; cut to fit the prompt&#x27;s slots, scored as &#x27;Rate the&#x27;",
        ],
        ["llm", "As good as S", "0.6000", "40.0%", "0.0000", ""],
        ["llm", "Is it &lt;good&gt;?", "0.6500", "35.0%", "+0.0500", ""],
        ["llm", "unscored", "—", "—", "—", "not scored"],
        ["rejected", "Say &lt;it&gt; again", "—", "—", "—", "already tried"],
    ]
    # the pool, folded away, with S's projected text again at its hard-prompt score
    pool = round_1[round_1.index("<details>") :]
    assert "pool: 2 projected text(s) of the stage&#x27;s trajectory" in pool
    assert table_cells(pool)[0] == [
        "step 3, lowest train loss",
        PROJECTED,
        "0.8000",
        "20.0%",
        "+0.2000",
        "",
    ]
    assert "<h4>round 2 (after step 8): skipped</h4>" in run


def test_restarts_are_listed_with_their_origin_and_score(grid: Path) -> None:
    page = write_report(grid).read_text(encoding="utf-8")
    run = section(page, "sst2 · catalyst · seed 1")
    restarts = run[run.index("<h3>restarts</h3>") :]
    assert table_cells(restarts) == [
        ["4", "1", "llm", "Rate the &lt;b&gt;mood&lt;/b&gt; {label}", "0.5500", "45.0%"]
    ]


def test_soft_and_projected_scores_are_explained_where_both_appear(grid: Path) -> None:
    page = write_report(grid).read_text(encoding="utf-8")
    catalyst = section(page, "sst2 · catalyst · seed 1")
    # the rounds list S (soft) and the pool (the same text, hard): the explanation comes first
    assert catalyst.count(EXPLANATION) == 1
    assert catalyst.index(EXPLANATION) < catalyst.index("S (current soft prompt)")
    assert page.count(EXPLANATION) == 1, "runs without rounds have no S row to explain"
    # every finished run shows its kept prompt's projected text next to the soft prompt's scores
    kept_note = "The dev and test scores above are the soft prompt&#x27;s."
    for title in ("sst2 · catalyst · seed 1", "sst2 · plain · seed 1", "sst2 · plain · seed 2"):
        assert kept_note in section(page, title)
    assert "compare S with the pool in the rounds below" in catalyst


def test_a_search_without_gradients_shows_its_text_as_a_hard_prompt(tmp_path: Path) -> None:
    proposal = {"text": "Is it good?", "source": "llm", "dev_loss": 0.5, "dev_accuracy": 0.7}
    events = [
        {"event": "dev_eval", "step": 0, "loss": 0.7, "accuracy": 0.5, "n": 8},
        {
            "event": "round",
            "round": 1,
            "step": 0,
            "pool": [{"text": "Review:", "source": "initial prompt", "dev_loss": 0.7}],
            "proposals": [proposal],
            "chosen": proposal,
            "reason": "the best prompt so far by dev score",
        },
    ]
    run_dir = write_run(
        tmp_path / "llm-only",
        method="llm-only",
        events=events,
        projected_text="Is it good?",
        best_step=0,
        best_origin="round 1: Is it good?",
    )
    report = write_report(run_dir)

    page = report.read_text(encoding="utf-8")
    assert "Text of the kept prompt (a hard prompt: the scores above are its own)" in page
    assert "soft prompt" not in page and EXPLANATION not in page
    assert "round 1 (after step 0): new best (llm)" in page
    assert "prompts scored before this round (1), shown to the LLM" in page
    assert "Δ loss vs S" not in page
    # no gradient step, no training curve: only the rounds are drawn
    assert [p.name for p in report.parent.glob("*.png")] == ["llm-only-rounds.png"]


def finished_run(
    root: Path, task: str, method: str, seed: int, accuracy: float, arm: str | None = None
) -> Path:
    """A run directory as a run writes it: RunDirectory, logged events, results.json."""
    run = RunDirectory.create(
        root,
        f"{task}-{method}-s{seed}",
        {"backbone": {"model": "tiny-causal-lm"}},
        seed=seed,
        protocol="fewshot",
        timestamp=False,
    )
    for step in (1, 2):
        run.log(TrainStepEvent(step=step, loss=1.0 / step))
    run.log(DevEvalEvent(step=2, loss=0.5, accuracy=0.7, n=8, improved=True))
    run.write_results(
        RunResults(
            method=method,
            arm=arm,
            task=task,
            seed=seed,
            test=Metrics(loss=0.5, accuracy=accuracy, n=100),
            best_step=2,
        )
    )
    return run.path


def test_the_methods_are_compared_per_seed_with_intervals(tmp_path: Path) -> None:
    named = "catalyst $\\nosuch$"  # drawn as written: as math text it would not render at all
    cells = {
        ("sst2", "catalyst", named): (0.6, 0.8, 0.7),
        ("sst2", "plain", None): (0.5, 0.6, 0.7),
        ("rte", "plain", None): (0.45,),
    }
    for (task, method, arm), accuracies in cells.items():
        for seed, accuracy in enumerate(accuracies, start=1):
            finished_run(tmp_path, task, method, seed, accuracy, arm)

    page = write_report(tmp_path).read_text(encoding="utf-8")
    plot = tmp_path / "report" / "comparison.png"
    assert plot.read_bytes().startswith(PNG_SIGNATURE)
    assert plot.read_bytes() in embedded_images(page)
    assert "95% percentile bootstrap interval over seeds (10000 resamples" in page
    assert page.index('alt="comparison"') < page.index("<section "), "the plot tops the page"

    # what the plot draws: each arm's seeds, in table order, and the interval of their mean
    runs = collect_runs(tmp_path).finished
    scores = method_scores(comparison_table(runs), runs)
    assert [(s.task, s.method, s.seeds) for s in scores] == [
        ("rte", "plain", (1,)),
        ("sst2", "plain", (1, 2, 3)),
        ("sst2", named, (1, 2, 3)),
    ]
    assert scores[2].accuracies == (0.6, 0.8, 0.7)
    assert scores[2].interval == bootstrap_ci([0.6, 0.8, 0.7])
    assert scores[0].interval is None, "no interval from one seed"

    # one seed's result moves a dot: the plot is drawn from the runs, not a fixed picture
    before = plot.read_bytes()
    finished_run(tmp_path / "more", "sst2", "catalyst", 4, 0.2, named)
    write_report(tmp_path)
    assert plot.read_bytes() != before


def test_the_kept_point_is_the_restart_when_the_restart_was_kept() -> None:
    events = RunEvents(
        dev_evals=(DevEvalEvent(step=4, loss=0.6, accuracy=0.5),),
        restarts=(
            RestartEvent(step=4, round=1, text="Is it good?", dev_accuracy=0.75, improved=True),
        ),
    )
    assert kept_point(events, 4, "restart of round 1") == (4, 0.75)
    assert kept_point(events, 4, "step 4") == (4, 0.5)
    assert kept_point(events, 4, None) == (4, 0.75), "old runs: the restart that improved"
    assert kept_point(events, 4, "round 1: a proposal") is None, "a search's kept proposal"
    assert kept_point(events, None, None) is None
