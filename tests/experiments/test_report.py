from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from llm_catalyst.errors import DataError
from llm_catalyst.experiments.report import write_report
from tests.experiments.synthetic_runs import training_events, write_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSTILE = "<script>alert('x')</script> {braces} {0} $x^2$ & \"quoted\""
CHOSEN = "Rate the <b>mood</b> {label}"


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
            "pool": [candidate(HOSTILE, 0.71, source="trajectory"), candidate("p2", 0.69)],
            "proposals": [candidate(CHOSEN, 0.55), candidate("unscored", None)],
            "chosen": candidate(CHOSEN, 0.55, source="llm"),
            "reason": "best proposal beats the current prompt by 0.14 > margin",
            "skipped": False,
            "skip_reason": None,
        },
        {"event": "restart", "step": 4, "round": 1, "text": CHOSEN},
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
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page


def test_grid_report(grid: Path) -> None:
    report = write_report(grid)

    assert report == grid / "report" / "report.html"
    page = report.read_text(encoding="utf-8")
    assert_self_contained(page)
    assert page.count("<section>") == 4
    assert "<h2>comparison</h2>" in page
    assert "<td>sst2</td><td>catalyst</td><td>1</td><td>70.0</td><td>+20.0</td>" in page
    assert "<tr><td>catalyst</td><td>1</td><td>3.3 min</td><td>25%</td></tr>" in page
    assert "catalyst-s2 (unfinished)" in page
    # what the rounds did: 2 rounds, 1 skipped, a restart from the LLM, no "current" to compare
    rounds_row = "<td>sst2</td><td>catalyst</td><td>2</td><td>1</td><td>0</td><td>1 llm</td>"
    assert f"<tr>{rounds_row}<td>0/1</td><td>—</td></tr>" in page

    # LLM and file texts arrive escaped, braces untouched, nothing executable
    escaped = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; {braces} {0} $x^2$ &amp; &quot;"
    assert page.count(escaped) == 2  # projected text and pool candidate
    assert "&lt;timeout&gt; after 3 retries" in page
    chosen_rows = re.findall(r'<tr class="chosen">(.*?)</tr>', page)
    assert len(chosen_rows) == 1
    assert "Rate the &lt;b&gt;mood&lt;/b&gt; {label}" in chosen_rows[0]
    assert "<b>mood</b>" not in page

    # one curves plot per run plus the rounds plot of the catalyst run, same bytes as the files
    pngs = sorted((grid / "report").glob("*.png"))
    assert [p.name for p in pngs] == [
        "catalyst-s1-curves.png",
        "catalyst-s1-rounds.png",
        "catalyst-s2-curves.png",
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
    assert page.count("<section>") == 1
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
    assert page.count("<section>") == 2


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
