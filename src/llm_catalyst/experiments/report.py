"""Plots and one self-contained HTML page for a run directory or a folder of runs (a grid).

Texts from files or an LLM are escaped and never drawn in plots; docs/design.md, "The HTML
report".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from llm_catalyst.catalyst.methods import METHODS, get_method
from llm_catalyst.errors import DataError
from llm_catalyst.experiments.races import (
    RACE_HEADERS,
    RACE_LEGEND,
    entrant_origin,
    race_rows,
    winner,
)
from llm_catalyst.experiments.report_html import (
    caption,
    chosen_at,
    current_candidate,
    escape,
    html_table,
    image,
    llm_calls,
    percent,
    race_entrants_html,
    rounds_html,
)
from llm_catalyst.experiments.results import RunEvents, RunRecord, collect_runs, read_events
from llm_catalyst.experiments.rounds import (
    ROUND_HEADERS,
    ROUNDS_LEGEND,
    RoundOutcome,
    round_outcomes,
    rounds_rows,
)
from llm_catalyst.experiments.stats import (
    DEFAULT_BOOTSTRAP,
    MIN_INTERVAL_SEEDS,
    ZERO_SHOT,
    Bootstrap,
    bootstrap_ci,
    method_sort_key,
)
from llm_catalyst.experiments.tables import (
    ComparisonTable,
    comparison_table,
    format_duration,
)
from llm_catalyst.records import RaceRecord

if TYPE_CHECKING:
    from llm_catalyst.experiments.plots import MethodScores

# The plots (matplotlib, seconds to import) are imported where they are drawn, so that a report
# of a folder that holds no runs says so at once.

REPORT_FILE = "report.html"
REPORT_DIR = "report"
COMPARISON_PLOT = "comparison.png"

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 75em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.text { font-family: monospace; white-space: pre-wrap; max-width: 50em; }
table.candidates { width: 100%; }
table.candidates td.text { width: 45%; }
table.candidates td:last-child { width: 22%; }
tr.chosen { background: #fff3c4; }
tr.current { background: #e8f0fe; }
tr.rejected { color: #888; }
section { border-top: 2px solid #888; margin-top: 2em; }
img { max-width: 100%; }
.note { color: #555; font-size: 0.9em; max-width: 60em; }
.explain { background: #f6f6f6; border-left: 4px solid #8ab; padding: 0.4em 0.8em; }
.summary { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
details { margin: 0 0 1em; }
summary { cursor: pointer; color: #333; }
"""

SOFT_VS_PROJECTED = (
    "S is the soft prompt the gradient trains: continuous vectors, which no text spells "
    "exactly. Its row shows its projected text (the nearest token to each vector) because S "
    "cannot be written down, but the scores next to it are the soft prompt's own. The pool's "
    "projected texts, and the proposals, are scored as hard prompts (the embeddings of their "
    "tokens), so the text of S can appear in the pool again with another score: the difference "
    "is what projecting S to tokens changes."
)

_COMPARISON_CAPTION = (
    "Test accuracy of every seed (dots; a colour is one seed across methods, the pairs the Δ "
    "column compares) and each method's mean (diamond) with its {level:.0%} percentile bootstrap "
    "interval over seeds ({resamples} resamples; none for one seed). The whisker is the "
    "interval of the method's mean, not of its difference to {baseline}: the table gives that."
)

_CURVES_CAPTION = (
    "Left: the train loss of each batch and the dev loss of S at each evaluation; right: the dev "
    "accuracy of S. Star: the kept prompt (best dev score), the one scored on test."
)

_RESTARTS_CAPTION = (
    " Dashed lines: restarts, labelled R<round> and coloured by origin; a diamond is the "
    "restart's own dev score, so the jump at the line is what the restart changed."
)

_ROUNDS_CAPTION = (
    "Per round, by dev loss: the black bar is S (the soft prompt), circles the pool's projected "
    "texts, triangles the proposals, both scored as hard prompts; the star is the candidate "
    "chosen (with probes, its score after the probe steps); dotted: a skipped round (no proposal "
    "to score)."
)

_RACE_CURVES_CAPTION = (
    " The race's steps are not on these curves (they are in the race plot below): the run goes "
    "on from the race winner's state at its own step {step}"
)

_RACE_CAPTION = (
    "Each entrant's dev loss (whole dev split) against its own optimizer steps, numbered as in "
    "the table below; every rung, each surviving entrant takes the same steps from its own "
    "state on the same batches, and the best 1/eta by dev loss go on. A line ends at the rung "
    "its entrant was cut after (cross); the thick red line is the winner (star), whose state "
    "the run went on from. Line style: dotted the random start, dashed the instruction, "
    "dash-dotted random tokens, solid the LLM's texts."
)

_SEARCH_ROUNDS_CAPTION = (
    "Per round, by dev loss: circles the prompts scored before the round (what the LLM saw), "
    "triangles its proposals; the star is a proposal that became the best prompt so far; "
    "dotted: a skipped round."
)


@dataclass(frozen=True)
class _RunView:
    """What one section of the page shows; ``record`` is None for an unfinished run. ``name``
    names its files and its anchor, ``label`` is its folder under the report's root."""

    name: str
    label: str
    path: Path
    record: RunRecord | None
    events: RunEvents
    curves: Path | None
    rounds: Path | None
    race: Path | None


def _trains(method: str) -> bool:
    """Whether the run's prompt is a soft prompt; methods unknown here are taken to train."""
    return method not in METHODS or get_method(method).trains


def _kept_text_html(record: RunRecord, has_rounds: bool) -> str:
    """The kept prompt's text, and whether the scores above are that text's or not."""
    text = record.projected_text
    if text is None:
        return ""
    box = f'<table><tr><td class="text">{escape(text)}</td></tr></table>'
    if not _trains(record.method):
        return f"<p>Text of the kept prompt (a hard prompt: the scores above are its own):</p>{box}"
    roundtrip = (
        "; decoded and tokenised again it gives other tokens"
        if record.projection_roundtrip_ok is False
        else ""
    )
    where = " (compare S with the pool in the rounds below)" if has_rounds else ""
    note = (
        "The dev and test scores above are the soft prompt's. This text, scored as a hard "
        f"prompt, would score differently{where}."
    )
    title = (
        f"Projected text of the kept soft prompt (the nearest token to each of its vectors"
        f"{roundtrip}):"
    )
    return f"<p>{escape(title)}</p>{box}{caption(note)}"


def _summary_html(record: RunRecord, has_rounds: bool) -> str:
    """What ran, how well it scored and what it cost, side by side, then the kept text."""
    run: list[tuple[str, object]] = [
        ("task", record.task),
        ("method", record.method),
        ("arm", record.arm_name),
        ("seed", record.seed),
        ("protocol", record.protocol),
        ("backbone", record.backbone),
        ("kept step", record.best_step),
        ("kept prompt from", record.best_origin),
    ]
    scores: list[tuple[str, object]] = [
        ("test accuracy", percent(record.test.accuracy)),
        ("test loss", record.test.loss),
        ("test examples", record.test.n),
        (
            "dev accuracy (kept prompt)",
            None if record.dev is None else percent(record.dev.accuracy),
        ),
        ("dev examples", None if record.dev is None else record.dev.n),
        (
            "zero-shot test accuracy",
            None if record.zero_shot_test is None else percent(record.zero_shot_test.accuracy),
        ),
    ]
    cost: list[tuple[str, object]] = []
    clock = record.wall_clock
    if clock is not None:
        phases = (
            ("wall-clock", clock.total_s),
            ("gradient time", clock.gradient_s),
            ("scoring time", clock.scoring_s),
            ("LLM time", clock.llm_s),
        )
        cost += [(label, format_duration(s)) for label, s in phases if s is not None]
    if record.llm is not None and (record.llm.calls or record.llm.skipped_rounds):
        cost += [
            ("LLM calls", llm_calls(record.llm)),
            (
                "LLM tokens (prompt / completion)",
                f"{record.llm.prompt_tokens} / {record.llm.completion_tokens}",
            ),
            ("LLM cost", record.llm.cost),
            ("skipped rounds", record.llm.skipped_rounds),
        ]
    tables = [
        html_table((title, ""), rows)
        for title, rows in (("run", run), ("scores", scores), ("cost", cost))
        if rows
    ]
    return f'<div class="summary">{"".join(tables)}</div>' + _kept_text_html(record, has_rounds)


def _restarts_html(view: _RunView) -> str:
    if not view.events.restarts:
        return ""
    return "<h3>restarts</h3>" + html_table(
        ("step", "round", "origin", "restart text", "dev loss", "dev accuracy"),
        (
            (r.step, r.round, r.origin_text, r.text, r.dev_loss, percent(r.dev_accuracy))
            for r in view.events.restarts
        ),
        text_columns=frozenset({3}),
    )


def _winner_steps(race: RaceRecord) -> int:
    """The winner's own steps when the race ended: the step the run went on from."""
    return max((leg.steps for leg in race.legs if leg.entrant == race.winner), default=0)


def _race_summary_html(race: RaceRecord, record: RunRecord) -> str:
    """What the race was and cost, beside the table of its entrants."""
    won = winner(race)
    rungs = sorted({leg.rung for leg in race.legs})
    total = None if record.compute is None else record.compute.gradient_steps
    rows: list[tuple[str, object]] = [
        ("entrants", len(race.entrants)),
        ("rungs", ", ".join(map(str, rungs)) or "none: a field of one"),
        (
            "race steps, every entrant's",
            race.steps if total is None else f"{race.steps} of the run's {total}",
        ),
        ("discarded steps (entrants cut)", race.discarded_steps),
        ("winner", f"#{won.index} ({entrant_origin(won)})"),
        ("winner's own steps", _winner_steps(race)),
    ]
    return html_table(("race", ""), rows)


def _race_html(view: _RunView) -> str:
    """A run's start race (methods race, random-race, llm-init): what it cost, its plot, and
    every entrant's text with how far it got, read from results.json and the race_entrants
    event; nothing for a run without one."""
    record = view.record
    if record is None or record.race is None:
        return ""
    parts = [
        "<h3>start race: the entrants and how far each got</h3>",
        _race_summary_html(record.race, record),
    ]
    if view.race is not None:
        parts += [image(view.race), caption(_RACE_CAPTION)]
    parts.append(race_entrants_html(record.race, view.events.race_entrants))
    return "".join(parts)


def _run_html(view: _RunView) -> str:
    record, rounds = view.record, view.events.rounds
    title = (
        f"{record.task} · {record.arm_name} · seed {record.seed}"
        if record is not None
        else f"{view.label} (unfinished)"
    )
    parts = [
        f'<section id="{escape(_anchor(view))}"><h2>{escape(title)}</h2>',
        f'<p class="note">{escape(view.path)}</p>',
    ]
    if record is not None:
        parts.append(_summary_html(record, bool(rounds)))
    else:
        parts.append("<p>No results.json yet: the curves show the run so far.</p>")
    if view.curves is not None:
        restarts = _RESTARTS_CAPTION if view.events.restarts else ""
        race = ""
        if record is not None and record.race is not None and record.race.legs:
            step = _winner_steps(record.race)
            race = _RACE_CURVES_CAPTION.format(step=step)
            race += ", and the dev score at step 0 is the random start's." if step else "."
        parts += [image(view.curves), caption(_CURVES_CAPTION + restarts + race)]
    parts.append(_race_html(view))
    parts.append(_restarts_html(view))
    if view.rounds is not None:
        parts.append("<h3>rounds: what each round proposed and chose</h3>")
        soft = any(current_candidate(item) is not None for item in rounds)
        if soft:
            parts.append(f'<p class="explain">{escape(SOFT_VS_PROJECTED)}</p>')
        legend = _ROUNDS_CAPTION if soft else _SEARCH_ROUNDS_CAPTION
        parts += [image(view.rounds), caption(legend), rounds_html(rounds)]
    parts.append("</section>")
    return "".join(parts)


def method_scores(table: ComparisonTable, runs: Sequence[RunRecord]) -> list[MethodScores]:
    """The per-seed accuracies behind each table row, with the bootstrap interval of their mean
    (the table's bootstrap settings)."""
    from llm_catalyst.experiments.plots import MethodScores

    accuracy = {(r.task, r.arm_name, r.seed): r.test.accuracy for r in runs}
    accuracy |= {
        (r.task, ZERO_SHOT, r.seed): r.zero_shot_test.accuracy
        for r in runs
        if r.zero_shot_test is not None
    }
    scores = []
    for row in table.rows:
        summary = row.summary
        values = tuple(accuracy[(summary.task, summary.method, s)] for s in summary.seeds)
        interval = bootstrap_ci(values, table.bootstrap) if len(values) > 1 else None
        scores.append(
            MethodScores(
                summary.task, summary.method, summary.seeds, summary.mean, values, interval
            )
        )
    return scores


def _comparison_html(
    table: ComparisonTable,
    outcomes: Sequence[RoundOutcome],
    plot: Path | None,
    scores: Sequence[MethodScores] = (),
) -> str:
    if not table.rows:
        return "<h2>comparison</h2><p>No finished runs yet.</p>"
    parts = [
        "<h2>comparison</h2>",
        html_table(table.headers, table.display_rows()),
        f'<p class="note">{escape(table.legend())}</p>',
        *(f'<p class="note">{escape(note)}</p>' for note in table.notes()),
    ]
    if plot is not None:
        legend = _COMPARISON_CAPTION.format(
            level=table.bootstrap.level,
            resamples=table.bootstrap.resamples,
            baseline=table.baseline,
        )
        few = [
            f"{s.task} {s.method}"
            for s in scores
            if s.interval is not None and s.n < MIN_INTERVAL_SEEDS
        ]
        if few:
            legend += (
                f" Warning: the whiskers of fewer than {MIN_INTERVAL_SEEDS} seeds "
                f"({'; '.join(few)}) are no confidence interval: resampling so few values "
                "gives a handful of possible means."
            )
        parts += [image(plot), caption(legend)]
    parts += [
        "<h3>wall-clock per method (all tasks)</h3>",
        html_table(table.wall_clock_headers, table.wall_clock_rows()),
    ]
    if outcomes:
        parts += [
            "<h3>what the rounds did</h3>",
            html_table(ROUND_HEADERS, rounds_rows(outcomes)),
            f'<p class="note">{escape(ROUNDS_LEGEND)}</p>',
        ]
    if table.races:
        parts += [
            "<h3>the start races</h3>",
            html_table(RACE_HEADERS, race_rows(table.races)),
            f'<p class="note">{escape(RACE_LEGEND)}</p>',
        ]
    return "".join(parts)


def _view(root: Path, path: Path, record: RunRecord | None, out_dir: Path) -> _RunView:
    from llm_catalyst.experiments.plots import plot_curves, plot_race, plot_rounds

    relative = path.relative_to(root).parts
    name = "__".join(relative) if relative else path.name
    events = read_events(path)
    best_step = None if record is None else record.best_step
    best_origin = None if record is None else record.best_origin
    curves = None
    if events.train_steps:  # a search without gradients has no curve, only its rounds
        curves = plot_curves(events, best_step, best_origin, out_dir / f"{name}-curves.png")
    rounds = None
    if events.rounds:
        sides = [(chosen_at(item) or ("",))[0] == "proposals" for item in events.rounds]
        rounds = plot_rounds(events.rounds, sides, out_dir / f"{name}-rounds.png")
    race = None
    if record is not None and record.race is not None and record.race.legs:
        race = plot_race(record.race, out_dir / f"{name}-race.png")
    label = "/".join(relative) or path.name
    return _RunView(name, label, path, record, events, curves, rounds, race)


def _section_order(entry: tuple[Path, RunRecord | None]) -> tuple[object, ...]:
    """Finished runs in table order (task, arm, seed), then the unfinished by folder."""
    path, record = entry
    if record is None:
        return (1, str(path))
    return (0, record.task, method_sort_key(record.arm_name), record.seed, str(path))


def _anchor(view: _RunView) -> str:
    return f"run-{view.name}"


def _index_html(views: Sequence[_RunView]) -> str:
    """Links to every run's section, finished ones by task and arm: a grid's page is long."""
    cells: dict[tuple[str, str], list[str]] = {}
    unfinished = []
    for view in views:
        link = f'<a href="#{escape(_anchor(view))}">{{}}</a>'
        record = view.record
        if record is None:
            unfinished.append(link.format(escape(view.label)))
            continue
        text = f"seed {record.seed} ({percent(record.test.accuracy)})"
        cells.setdefault((record.task, record.arm_name), []).append(link.format(escape(text)))
    rows = "".join(
        f"<tr><td>{escape(task)}</td><td>{escape(arm)}</td><td>{' · '.join(links)}</td></tr>"
        for (task, arm), links in sorted(
            cells.items(), key=lambda item: (item[0][0], method_sort_key(item[0][1]))
        )
    )
    parts = ["<h2>runs</h2>"]
    if rows:
        parts.append(
            "<table><thead><tr><th>task</th><th>arm</th><th>runs (test accuracy)</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>"
        )
    if unfinished:
        parts.append(f"<p>unfinished: {' · '.join(unfinished)}</p>")
    return "".join(parts)


def write_report(
    path: Path,
    *,
    out_dir: Path | None = None,
    baseline: str = "plain",
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
) -> Path:
    """Write the plots and ``report.html`` for a run directory or a folder of runs.

    The comparison options are those of ``tables.comparison_table``; a single run directory
    gets no comparison table or plot.
    """
    root = Path(path)
    collection = collect_runs(root)
    if not collection.finished and not collection.unfinished:
        raise DataError(
            "no run directories here (folders with run.json or results.json)",
            path=root,
            fix="pass a run directory or the output folder of `llm-catalyst compare`",
        )
    out_dir = Path(out_dir) if out_dir is not None else root / REPORT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    entries: list[tuple[Path, RunRecord | None]] = [(r.path, r) for r in collection.finished]
    entries += [(u.path, None) for u in collection.unfinished]
    views = [
        _view(root, run_dir, record, out_dir)
        for run_dir, record in sorted(entries, key=_section_order)
    ]
    single = len(views) == 1 and views[0].path == root
    body = [
        f"<h1>llm-catalyst report: {escape(root.resolve().name)}</h1>",
        f'<p class="note">{escape(root.resolve())} · written '
        f"{escape(datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC'))} · "
        f"{len(collection.finished)} finished, {len(collection.unfinished)} unfinished</p>",
    ]
    if not single:
        try:
            table = comparison_table(collection.finished, baseline=baseline, bootstrap=bootstrap)
        except DataError as error:  # e.g. two runs of one cell and seed: the runs still show
            body.append(f"<h2>comparison</h2><p>No comparison table: {escape(error)}</p>")
        else:
            from llm_catalyst.experiments.plots import plot_comparison

            plot, scores = None, []
            if table.rows:
                scores = method_scores(table, collection.finished)
                plot = plot_comparison(scores, baseline, bootstrap.level, out_dir / COMPARISON_PLOT)
            outcomes = round_outcomes(collection.finished)
            body.append(_comparison_html(table, outcomes, plot, scores))
        body.append(_index_html(views))
    body += [_run_html(view) for view in views]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>llm-catalyst report: {escape(root.resolve().name)}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )
    report_path = out_dir / REPORT_FILE
    report_path.write_text(page, encoding="utf-8")
    return report_path
