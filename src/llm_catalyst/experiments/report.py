"""Plots and one self-contained HTML page for a run directory or a folder of runs (a grid).

Texts from files or an LLM are escaped and never drawn in plots; docs/design.md, "The HTML
report".
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llm_catalyst.catalyst.methods import METHODS, get_method
from llm_catalyst.errors import DataError
from llm_catalyst.experiments.plots import (
    MethodScores,
    plot_comparison,
    plot_curves,
    plot_rounds,
)
from llm_catalyst.experiments.results import RunEvents, RunRecord, collect_runs, read_events
from llm_catalyst.experiments.rounds import (
    CURRENT_SOURCE,
    ROUND_HEADERS,
    ROUNDS_LEGEND,
    RoundOutcome,
    restart_kind,
    round_outcomes,
    rounds_rows,
)
from llm_catalyst.experiments.stats import (
    DEFAULT_BOOTSTRAP,
    Bootstrap,
    bootstrap_ci,
    method_sort_key,
)
from llm_catalyst.experiments.tables import (
    ComparisonTable,
    comparison_table,
    format_duration,
)
from llm_catalyst.records import CandidateRecord, RoundEvent

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


def _chosen_at(item: RoundEvent) -> tuple[str, int] | None:
    """Where the chosen candidate is listed: ("proposals" or "pool", index), or None.

    The chosen record may carry its own source (a projection restart names the pool text it
    came from), so a candidate with the same text and source is preferred, then the same text.
    """
    chosen = item.chosen
    if chosen is None:
        return None
    listed = [
        (series, index, candidate)
        for series in ("proposals", "pool")
        for index, candidate in enumerate(getattr(item, series))
        if candidate.text == chosen.text and candidate.source != CURRENT_SOURCE
    ]
    exact = [entry for entry in listed if entry[2].source == chosen.source]
    found = (exact or listed or [None])[0]
    return None if found is None else (found[0], found[1])


def _current(item: RoundEvent) -> CandidateRecord | None:
    return next((c for c in item.pool if c.source == CURRENT_SOURCE), None)


def _trains(method: str) -> bool:
    """Whether the run's prompt is a soft prompt; methods unknown here are taken to train."""
    return method not in METHODS or get_method(method).trains


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _html_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    text_columns: frozenset[int] = frozenset(),
    row_classes: Iterable[str] | None = None,
    table_class: str = "",
) -> str:
    rows = list(rows)
    classes = list(row_classes) if row_classes is not None else [""] * len(rows)
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row, css in zip(rows, classes, strict=True):
        cells = "".join(
            f'<td class="text">{_e(_cell(v))}</td>'
            if i in text_columns
            else f"<td>{_e(_cell(v))}</td>"
            for i, v in enumerate(row)
        )
        body.append(f'<tr class="{_e(css)}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    table = f'<table class="{table_class}">' if table_class else "<table>"
    return f"{table}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<p><img alt="{_e(path.stem)}" src="data:image/png;base64,{data}"></p>'


def _percent(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.1f}%"


def _caption(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _kept_text_html(record: RunRecord, has_rounds: bool) -> str:
    """The kept prompt's text, and whether the scores above are that text's or not."""
    text = record.projected_text
    if text is None:
        return ""
    box = f'<table><tr><td class="text">{_e(text)}</td></tr></table>'
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
    return f"<p>{_e(title)}</p>{box}{_caption(note)}"


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
        ("test accuracy", _percent(record.test.accuracy)),
        ("test loss", record.test.loss),
        ("test examples", record.test.n),
        (
            "dev accuracy (kept prompt)",
            None if record.dev is None else _percent(record.dev.accuracy),
        ),
        (
            "zero-shot test accuracy",
            None if record.zero_shot_test is None else _percent(record.zero_shot_test.accuracy),
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
            ("LLM calls", record.llm.calls),
            (
                "LLM tokens (prompt / completion)",
                f"{record.llm.prompt_tokens} / {record.llm.completion_tokens}",
            ),
            ("LLM cost", record.llm.cost),
            ("skipped rounds", record.llm.skipped_rounds),
        ]
    tables = [
        _html_table((title, ""), rows)
        for title, rows in (("run", run), ("scores", scores), ("cost", cost))
        if rows
    ]
    return f'<div class="summary">{"".join(tables)}</div>' + _kept_text_html(record, has_rounds)


def _detail_list(item: RoundEvent, key: str) -> list[dict[str, Any]]:
    """A list of records from the round's free-form ``details``; anything else reads as none."""
    value = item.details.get(key)
    return [entry for entry in value if isinstance(entry, dict)] if isinstance(value, list) else []


def _delta(candidate: CandidateRecord, current: CandidateRecord | None) -> str | None:
    if current is None or current.dev_loss is None or candidate.dev_loss is None:
        return None
    text = f"{candidate.dev_loss - current.dev_loss:+.4f}"
    return "0.0000" if float(text) == 0 else text  # neither "+0.0000" nor "-0.0000"


def _outcome(item: RoundEvent, current: CandidateRecord | None) -> str:
    if item.skipped:
        return "skipped"
    if item.chosen is None:
        return "kept S" if current is not None else "no new best"
    source = restart_kind(item.chosen.source)
    return f"restart from {source}" if current is not None else f"new best ({source})"


_CANDIDATE_HEADERS = ("source", "text", "dev loss", "dev accuracy", "Δ loss vs S", "note")
_DELTA_COLUMN = 4


def _candidates_table(
    rows: Sequence[tuple[object, ...]], classes: Sequence[str], has_current: bool
) -> str:
    """Rows under ``_CANDIDATE_HEADERS``; without S (a search) its Δ column is left out."""
    if has_current:
        return _html_table(
            _CANDIDATE_HEADERS,
            rows,
            text_columns=frozenset({1}),
            row_classes=classes,
            table_class="candidates",
        )
    keep = [i for i in range(len(_CANDIDATE_HEADERS)) if i != _DELTA_COLUMN]
    return _html_table(
        [_CANDIDATE_HEADERS[i] for i in keep],
        [[row[i] for i in keep] for row in rows],
        text_columns=frozenset({1}),
        row_classes=classes,
        table_class="candidates",
    )


def _proposals_table(item: RoundEvent, chosen: tuple[str, int] | None) -> str:
    """S first (the bar to beat), the proposals by dev loss, then what the LLM wrote that was
    not scored, with why."""
    current = _current(item)
    cut = {
        str(t.get("text")): f"cut to fit the prompt's slots, scored as {t.get('kept')!r}"
        for t in _detail_list(item, "truncated")
    }
    rows: list[tuple[object, ...]] = []
    classes: list[str] = []
    if current is not None:
        rows.append(
            (
                "S (current soft prompt)",
                current.text,
                current.dev_loss,
                _percent(current.dev_accuracy),
                None,
                "scores: the soft prompt's; text: its nearest tokens",
            )
        )
        classes.append("current")
    order = sorted(
        range(len(item.proposals)),
        key=lambda i: (item.proposals[i].dev_loss is None, item.proposals[i].dev_loss or 0.0),
    )
    for index in order:
        candidate = item.proposals[index]
        is_chosen = chosen == ("proposals", index)
        note = "chosen" if is_chosen else ""
        if candidate.text in cut:
            note = f"{note}; {cut[candidate.text]}" if note else cut[candidate.text]
        if candidate.dev_loss is None and not note:
            note = "not scored"
        rows.append(
            (
                candidate.source or "—",
                candidate.text,
                candidate.dev_loss,
                _percent(candidate.dev_accuracy),
                _delta(candidate, current),
                note,
            )
        )
        classes.append("chosen" if is_chosen else "")
    for rejected in _detail_list(item, "rejected"):
        rows.append(("rejected", rejected.get("text"), None, None, None, rejected.get("reason")))
        classes.append("rejected")
    if not rows:
        return ""
    return _candidates_table(rows, classes, current is not None)


def _pool_html(item: RoundEvent, chosen: tuple[str, int] | None) -> str:
    """The pool, folded away unless the choice came from it: the proposals are what is read."""
    current = _current(item)
    listed = [(i, c) for i, c in enumerate(item.pool) if c.source != CURRENT_SOURCE]
    if not listed:
        return ""
    summary = (
        f"pool: {len(listed)} projected text(s) of the stage's trajectory, scored as hard prompts"
        if current is not None
        else f"prompts scored before this round ({len(listed)}), shown to the LLM"
    )
    table = _candidates_table(
        [
            (
                c.source or "—",
                c.text,
                c.dev_loss,
                _percent(c.dev_accuracy),
                _delta(c, current),
                "chosen" if chosen == ("pool", i) else "",
            )
            for i, c in listed
        ],
        ["chosen" if chosen == ("pool", i) else "" for i, _ in listed],
        current is not None,
    )
    opened = " open" if chosen is not None and chosen[0] == "pool" else ""
    return f"<details{opened}><summary>{_e(summary)}</summary>{table}</details>"


def _probes_html(item: RoundEvent) -> str:
    if not item.probes:
        return ""
    return f"<p>probes: each entrant took {_e(item.probe_steps)} step(s) from fresh moments</p>" + (
        _html_table(
            (
                "entrant",
                "text",
                "dev loss before",
                "dev loss after",
                "dev accuracy after",
                "continued",
            ),
            (
                (
                    p.source or "—",
                    p.text,
                    p.dev_loss_before,
                    p.dev_loss,
                    _percent(p.dev_accuracy),
                    "yes" if p.continued else "",
                )
                for p in item.probes
            ),
            text_columns=frozenset({1}),
            row_classes=("chosen" if p.continued else "" for p in item.probes),
        )
    )


def _rounds_html(rounds: Sequence[RoundEvent]) -> str:
    parts = []
    for item in rounds:
        current, chosen = _current(item), _chosen_at(item)
        status = (
            f"skipped: {item.skip_reason or 'no reason recorded'}"
            if item.skipped
            else f"choice: {item.reason or 'no reason recorded'}"
        )
        parts.append(
            f"<h4>round {_e(item.round)} (after step {_e(item.step)}): "
            f"{_e(_outcome(item, current))}</h4>"
        )
        parts.append(f'<p class="note">{_e(status)}</p>')
        parts.append(_proposals_table(item, chosen))
        parts.append(_probes_html(item))
        parts.append(_pool_html(item, chosen))
    return "".join(parts)


def _restarts_html(view: _RunView) -> str:
    if not view.events.restarts:
        return ""
    return "<h3>restarts</h3>" + _html_table(
        ("step", "round", "origin", "restart text", "dev loss", "dev accuracy"),
        (
            (r.step, r.round, r.source, r.text, r.dev_loss, _percent(r.dev_accuracy))
            for r in view.events.restarts
        ),
        text_columns=frozenset({3}),
    )


def _run_html(view: _RunView) -> str:
    record, rounds = view.record, view.events.rounds
    title = (
        f"{record.task} · {record.arm_name} · seed {record.seed}"
        if record is not None
        else f"{view.label} (unfinished)"
    )
    parts = [
        f'<section id="{_e(_anchor(view))}"><h2>{_e(title)}</h2>',
        f'<p class="note">{_e(view.path)}</p>',
    ]
    if record is not None:
        parts.append(_summary_html(record, bool(rounds)))
    else:
        parts.append("<p>No results.json yet: the curves show the run so far.</p>")
    if view.curves is not None:
        restarts = _RESTARTS_CAPTION if view.events.restarts else ""
        parts += [_image(view.curves), _caption(_CURVES_CAPTION + restarts)]
    parts.append(_restarts_html(view))
    if view.rounds is not None:
        parts.append("<h3>rounds: what each round proposed and chose</h3>")
        soft = any(_current(item) is not None for item in rounds)
        if soft:
            parts.append(f'<p class="explain">{_e(SOFT_VS_PROJECTED)}</p>')
        caption = _ROUNDS_CAPTION if soft else _SEARCH_ROUNDS_CAPTION
        parts += [_image(view.rounds), _caption(caption), _rounds_html(rounds)]
    parts.append("</section>")
    return "".join(parts)


def method_scores(table: ComparisonTable, runs: Sequence[RunRecord]) -> list[MethodScores]:
    """The per-seed accuracies behind each table row, with the bootstrap interval of their mean
    (the table's bootstrap settings)."""
    accuracy = {(r.task, r.arm_name, r.seed): r.test.accuracy for r in runs}
    scores = []
    for row in table.rows:
        summary = row.summary
        values = tuple(accuracy[(summary.task, summary.method, s)] for s in summary.seeds)
        interval = bootstrap_ci(values, table.bootstrap) if len(values) > 1 else None
        scores.append(MethodScores(summary.task, summary.method, summary.seeds, values, interval))
    return scores


def _comparison_html(
    table: ComparisonTable, outcomes: Sequence[RoundOutcome], plot: Path | None
) -> str:
    if not table.rows:
        return "<h2>comparison</h2><p>No finished runs yet.</p>"
    parts = [
        "<h2>comparison</h2>",
        _html_table(table.headers, table.display_rows()),
        f'<p class="note">{_e(table.legend())}</p>',
    ]
    if plot is not None:
        caption = _COMPARISON_CAPTION.format(
            level=table.bootstrap.level,
            resamples=table.bootstrap.resamples,
            baseline=table.baseline,
        )
        parts += [_image(plot), _caption(caption)]
    parts += [
        "<h3>wall-clock per method (all tasks)</h3>",
        _html_table(table.wall_clock_headers, table.wall_clock_rows()),
    ]
    if outcomes:
        parts += [
            "<h3>what the rounds did</h3>",
            _html_table(ROUND_HEADERS, rounds_rows(outcomes)),
            f'<p class="note">{_e(ROUNDS_LEGEND)}</p>',
        ]
    return "".join(parts)


def _view(root: Path, path: Path, record: RunRecord | None, out_dir: Path) -> _RunView:
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
        sides = [(_chosen_at(item) or ("",))[0] == "proposals" for item in events.rounds]
        rounds = plot_rounds(events.rounds, sides, out_dir / f"{name}-rounds.png")
    return _RunView(name, "/".join(relative) or path.name, path, record, events, curves, rounds)


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
        link = f'<a href="#{_e(_anchor(view))}">{{}}</a>'
        record = view.record
        if record is None:
            unfinished.append(link.format(_e(view.label)))
            continue
        text = f"seed {record.seed} ({_percent(record.test.accuracy)})"
        cells.setdefault((record.task, record.arm_name), []).append(link.format(_e(text)))
    rows = "".join(
        f"<tr><td>{_e(task)}</td><td>{_e(arm)}</td><td>{' · '.join(links)}</td></tr>"
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
        f"<h1>llm-catalyst report: {_e(root.resolve().name)}</h1>",
        f'<p class="note">{_e(root.resolve())} · written '
        f"{_e(datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC'))} · "
        f"{len(collection.finished)} finished, {len(collection.unfinished)} unfinished</p>",
    ]
    if not single:
        try:
            table = comparison_table(collection.finished, baseline=baseline, bootstrap=bootstrap)
        except DataError as error:  # e.g. two runs of one cell and seed: the runs still show
            body.append(f"<h2>comparison</h2><p>No comparison table: {_e(error)}</p>")
        else:
            plot = None
            if table.rows:
                scores = method_scores(table, collection.finished)
                plot = plot_comparison(scores, baseline, bootstrap.level, out_dir / COMPARISON_PLOT)
            body.append(_comparison_html(table, round_outcomes(collection.finished), plot))
        body.append(_index_html(views))
    body += [_run_html(view) for view in views]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>llm-catalyst report: {_e(root.resolve().name)}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )
    report_path = out_dir / REPORT_FILE
    report_path.write_text(page, encoding="utf-8")
    return report_path
