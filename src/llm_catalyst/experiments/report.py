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

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from llm_catalyst.errors import DataError
from llm_catalyst.experiments.results import RunEvents, RunRecord, collect_runs, read_events
from llm_catalyst.experiments.rounds import (
    ROUND_HEADERS,
    ROUNDS_LEGEND,
    RoundOutcome,
    round_outcomes,
    rounds_rows,
)
from llm_catalyst.experiments.stats import DEFAULT_BOOTSTRAP, Bootstrap
from llm_catalyst.experiments.tables import (
    ComparisonTable,
    comparison_table,
    format_duration,
)
from llm_catalyst.records import CandidateRecord, RoundEvent

REPORT_FILE = "report.html"
REPORT_DIR = "report"
_DPI = 100

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 75em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.text { font-family: monospace; white-space: pre-wrap; max-width: 50em; }
tr.chosen { background: #fff3c4; }
section { border-top: 2px solid #888; margin-top: 2em; }
img { max-width: 100%; }
.note { color: #555; font-size: 0.9em; }
"""


@dataclass(frozen=True)
class _RunView:
    """What one section of the page shows; ``record`` is None for an unfinished run."""

    name: str
    path: Path
    record: RunRecord | None
    events: RunEvents
    images: tuple[Path, ...]


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, format="png", dpi=_DPI)
    return path


def _plot_curves(events: RunEvents, best_step: int | None, path: Path) -> Path:
    """Train loss and dev accuracy against steps; restarts dashed, the kept step starred."""
    figure = Figure(figsize=(10, 3.4), layout="constrained")
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    loss_axes.plot([s.step for s in events.train_steps], [s.loss for s in events.train_steps], lw=1)
    loss_axes.set(title="train loss", xlabel="step", ylabel="loss")
    evals = events.dev_evals
    accuracy_axes.plot([e.step for e in evals], [e.accuracy for e in evals], marker=".", lw=1)
    kept = [e for e in evals if e.step == best_step]
    if kept:
        accuracy_axes.scatter(
            [kept[0].step],
            [kept[0].accuracy],
            marker="*",
            s=160,
            c="tab:red",
            zorder=3,
            label="kept (best dev)",
        )
    accuracy_axes.set(title="dev accuracy", xlabel="step", ylabel="accuracy")
    for axes in (loss_axes, accuracy_axes):
        for number, restart in enumerate(events.restarts):
            axes.axvline(
                restart.step,
                color="tab:gray",
                ls="--",
                lw=1,
                label="restart" if number == 0 else None,
            )
    for axes in (loss_axes, accuracy_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if axes.get_legend_handles_labels()[0]:
            axes.legend(loc="best", fontsize="small")
    return _save(figure, path)


def _scored(candidates: Iterable[CandidateRecord]) -> list[CandidateRecord]:
    return [c for c in candidates if c.dev_loss is not None]


def _is_chosen(candidate: CandidateRecord, item: RoundEvent) -> bool:
    """The chosen record may carry its own source, so it is matched by its text."""
    return item.chosen is not None and candidate.text == item.chosen.text


def _chosen_is_proposal(item: RoundEvent) -> bool:
    return any(_is_chosen(c, item) for c in item.proposals)


def _plot_rounds(rounds: Sequence[RoundEvent], path: Path) -> Path:
    """Dev loss of each pool candidate (left of the round) and proposal (right), chosen starred."""
    figure = Figure(figsize=(10, 3.6), layout="constrained")
    axes = figure.subplots()
    offset = 0.15
    for series, shift, marker, label in (
        ("pool", -offset, "o", "pool"),
        ("proposals", offset, "^", "proposals"),
    ):
        xs, ys = [], []
        for item in rounds:
            scored = _scored(getattr(item, series))
            xs += [item.round + shift] * len(scored)
            ys += [c.dev_loss for c in scored]
        axes.scatter(xs, ys, marker=marker, alpha=0.7, label=label)
    chosen = [
        (r.round + (offset if _chosen_is_proposal(r) else -offset), r.chosen.dev_loss)
        for r in rounds
        if r.chosen is not None and r.chosen.dev_loss is not None
    ]
    if chosen:
        axes.scatter(
            *zip(*chosen, strict=True),
            marker="*",
            s=220,
            c="tab:red",
            edgecolors="black",
            zorder=3,
            label="chosen",
        )
    for item in rounds:
        if item.skipped:
            axes.axvline(item.round, color="tab:gray", ls=":", lw=1)
            axes.annotate(
                "skipped",
                (item.round, 0.97),
                xycoords=("data", "axes fraction"),
                ha="center",
                va="top",
                fontsize="small",
                color="tab:gray",
            )
    axes.set_xticks([r.round for r in rounds])
    axes.set_xlim(rounds[0].round - 0.5, rounds[-1].round + 0.5)
    axes.set(title="candidates per round (lower is better)", xlabel="round", ylabel="dev loss")
    axes.legend(loc="best", fontsize="small")
    return _save(figure, path)


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
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<p><img alt="{_e(path.stem)}" src="data:image/png;base64,{data}"></p>'


def _summary_html(record: RunRecord) -> str:
    rows: list[tuple[str, object]] = [
        ("task", record.task),
        ("method", record.method),
        ("arm", record.arm_name),
        ("seed", record.seed),
        ("protocol", record.protocol),
        ("backbone", record.backbone),
        ("test accuracy", record.test.accuracy),
        ("test loss", record.test.loss),
        ("test examples", record.test.n),
        ("dev accuracy (kept prompt)", None if record.dev is None else record.dev.accuracy),
        ("kept step", record.best_step),
        (
            "zero-shot test accuracy",
            None if record.zero_shot_test is None else record.zero_shot_test.accuracy,
        ),
    ]
    clock = record.wall_clock
    if clock is not None:
        phases = (
            ("wall-clock", clock.total_s),
            ("gradient time", clock.gradient_s),
            ("scoring time", clock.scoring_s),
            ("LLM time", clock.llm_s),
        )
        rows += [(label, format_duration(s)) for label, s in phases if s is not None]
    if record.llm is not None:
        rows += [
            ("LLM calls", record.llm.calls),
            (
                "LLM tokens (prompt / completion)",
                f"{record.llm.prompt_tokens} / {record.llm.completion_tokens}",
            ),
            ("LLM cost", record.llm.cost),
            ("skipped rounds", record.llm.skipped_rounds),
        ]
    table = _html_table(("", "value"), rows)
    text = record.projected_text
    projected = (
        ""
        if text is None
        else (
            f'<p>projected text of the kept prompt:</p><table><tr><td class="text">{_e(text)}'
            "</td></tr></table>"
        )
    )
    return table + projected


def _rounds_html(rounds: Sequence[RoundEvent]) -> str:
    parts = []
    for item in rounds:
        status = (
            f"skipped: {item.skip_reason or 'no reason recorded'}"
            if item.skipped
            else f"choice: {item.reason or 'no reason recorded'}"
        )
        parts.append(f"<h4>round {_e(item.round)} (after step {_e(item.step)})</h4>")
        parts.append(f'<p class="note">{_e(status)}</p>')
        candidates = [("pool", c) for c in item.pool] + [("proposal", c) for c in item.proposals]
        if not candidates:
            continue
        parts.append(
            _html_table(
                ("kind", "source", "text", "dev loss", "dev accuracy", "chosen"),
                (
                    (
                        kind,
                        c.source,
                        c.text,
                        c.dev_loss,
                        c.dev_accuracy,
                        "yes" if _is_chosen(c, item) else "",
                    )
                    for kind, c in candidates
                ),
                text_columns=frozenset({2}),
                row_classes=("chosen" if _is_chosen(c, item) else "" for _, c in candidates),
            )
        )
    return "".join(parts)


def _run_html(view: _RunView) -> str:
    record = view.record
    title = (
        f"{record.task} · {record.arm_name} · seed {record.seed}"
        if record is not None
        else f"{view.name} (unfinished)"
    )
    parts = [f"<section><h2>{_e(title)}</h2>", f'<p class="note">{_e(view.path)}</p>']
    if record is not None:
        parts.append(_summary_html(record))
    else:
        parts.append("<p>No results.json yet: the curves show the run so far.</p>")
    parts += [_image(image) for image in view.images]
    if view.events.rounds:
        parts.append("<h3>rounds</h3>" + _rounds_html(view.events.rounds))
    if view.events.restarts:
        parts.append(
            "<h3>restarts</h3>"
            + _html_table(
                ("step", "round", "restart text"),
                ((r.step, r.round, r.text) for r in view.events.restarts),
                text_columns=frozenset({2}),
            )
        )
    parts.append("</section>")
    return "".join(parts)


def _comparison_html(table: ComparisonTable, outcomes: Sequence[RoundOutcome]) -> str:
    if not table.rows:
        return "<h2>comparison</h2><p>No finished runs yet.</p>"
    parts = [
        "<h2>comparison</h2>",
        _html_table(table.headers, table.display_rows()),
        f'<p class="note">{_e(table.legend())}</p>',
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


def _view(name: str, path: Path, record: RunRecord | None, out_dir: Path) -> _RunView:
    events = read_events(path)
    images = [_plot_curves(events, record and record.best_step, out_dir / f"{name}-curves.png")]
    if events.rounds:
        images.append(_plot_rounds(events.rounds, out_dir / f"{name}-rounds.png"))
    return _RunView(name, path, record, events, tuple(images))


def _name(root: Path, run_dir: Path) -> str:
    relative = run_dir.relative_to(root)
    return "__".join(relative.parts) if relative.parts else run_dir.name


def write_report(
    path: Path,
    *,
    out_dir: Path | None = None,
    baseline: str = "plain",
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
) -> Path:
    """Write the plots and ``report.html`` for a run directory or a folder of runs.

    The comparison options are those of ``tables.comparison_table``; a single run directory
    gets no comparison table.
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
        _view(_name(root, run_dir), run_dir, record, out_dir)
        for run_dir, record in sorted(entries, key=lambda entry: str(entry[0]))
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
            body.append(_comparison_html(table, round_outcomes(collection.finished)))
    body += [_run_html(view) for view in views]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>llm-catalyst report: {_e(root.resolve().name)}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )
    report_path = out_dir / REPORT_FILE
    report_path.write_text(page, encoding="utf-8")
    return report_path
