"""The HTML pieces of the report: escaped cells and tables, embedded images, what each
restart round proposed and chose, and a start race's entrants (texts from files or an LLM are
always escaped)."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from llm_catalyst.experiments.races import Standing, entrant_origin, standings
from llm_catalyst.experiments.rounds import restart_kind
from llm_catalyst.records import (
    CandidateRecord,
    LLMUsage,
    RaceEntrant,
    RaceEntrantsEvent,
    RaceRecord,
    RoundEvent,
)


def chosen_at(item: RoundEvent) -> tuple[str, int] | None:
    """Where the chosen candidate is listed: ("proposals" or "pool", index), or None.

    The chosen record may carry its own origin (a projection restart names the pool text it
    came from), so a candidate with the same text and origin is preferred, then the same text.
    """
    chosen = item.chosen
    if chosen is None:
        return None
    listed = [
        (series, index, candidate)
        for series in ("proposals", "pool")
        for index, candidate in enumerate(getattr(item, series))
        if candidate.text == chosen.text and candidate.origin != "current"
    ]
    exact = [
        entry
        for entry in listed
        if (entry[2].origin, entry[2].detail) == (chosen.origin, chosen.detail)
    ]
    found = (exact or listed or [None])[0]
    return None if found is None else (found[0], found[1])


def current_candidate(item: RoundEvent) -> CandidateRecord | None:
    return next((c for c in item.pool if c.origin == "current"), None)


def escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def html_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    text_columns: frozenset[int] = frozenset(),
    row_classes: Iterable[str] | None = None,
    table_class: str = "",
) -> str:
    rows = list(rows)
    classes = list(row_classes) if row_classes is not None else [""] * len(rows)
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row, css in zip(rows, classes, strict=True):
        cells = "".join(
            f'<td class="text">{escape(cell(v))}</td>'
            if i in text_columns
            else f"<td>{escape(cell(v))}</td>"
            for i, v in enumerate(row)
        )
        body.append(f'<tr class="{escape(css)}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    table = f'<table class="{table_class}">' if table_class else "<table>"
    return f"{table}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<p><img alt="{escape(path.stem)}" src="data:image/png;base64,{data}"></p>'


def llm_calls(usage: LLMUsage) -> str:
    """The answers, fresh and replayed from the response cache apart where the run recorded
    both: a replayed answer costs no LLM time, which would read as a free LLM."""
    if usage.fresh_calls + usage.cache_hits != usage.calls:  # written before the split
        return str(usage.calls)
    return (
        f"{usage.calls}: {usage.fresh_calls} fresh, {usage.cache_hits} replayed from the response "
        "cache"
    )


def percent(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.1f}%"


def caption(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def _detail_list(item: RoundEvent | RaceEntrantsEvent, key: str) -> list[dict[str, Any]]:
    """A list of records from an event's free-form ``details``; anything else reads as none."""
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
    source = restart_kind(item.chosen)
    return f"restart from {source}" if current is not None else f"new best ({source})"


_CANDIDATE_HEADERS = ("origin", "text", "dev loss", "dev accuracy", "Δ loss vs S", "note")
_DELTA_COLUMN = 4


def _candidates_table(
    rows: Sequence[tuple[object, ...]], classes: Sequence[str], has_current: bool
) -> str:
    """Rows under ``_CANDIDATE_HEADERS``; without S (a search) its Δ column is left out."""
    if has_current:
        return html_table(
            _CANDIDATE_HEADERS,
            rows,
            text_columns=frozenset({1}),
            row_classes=classes,
            table_class="candidates",
        )
    keep = [i for i in range(len(_CANDIDATE_HEADERS)) if i != _DELTA_COLUMN]
    return html_table(
        [_CANDIDATE_HEADERS[i] for i in keep],
        [[row[i] for i in keep] for row in rows],
        text_columns=frozenset({1}),
        row_classes=classes,
        table_class="candidates",
    )


def _proposals_table(item: RoundEvent, chosen: tuple[str, int] | None) -> str:
    """S first (the bar to beat), the proposals by dev loss, then what the LLM wrote that was
    not scored, with why."""
    current = current_candidate(item)
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
                percent(current.dev_accuracy),
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
                candidate.origin_text or "—",
                candidate.text,
                candidate.dev_loss,
                percent(candidate.dev_accuracy),
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
    current = current_candidate(item)
    listed = [(i, c) for i, c in enumerate(item.pool) if c.origin != "current"]
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
                c.origin_text or "—",
                c.text,
                c.dev_loss,
                percent(c.dev_accuracy),
                _delta(c, current),
                "chosen" if chosen == ("pool", i) else "",
            )
            for i, c in listed
        ],
        ["chosen" if chosen == ("pool", i) else "" for i, _ in listed],
        current is not None,
    )
    opened = " open" if chosen is not None and chosen[0] == "pool" else ""
    return f"<details{opened}><summary>{escape(summary)}</summary>{table}</details>"


def _probes_html(item: RoundEvent) -> str:
    if not item.probes:
        return ""
    return (
        f"<p>probes: each entrant took {escape(item.probe_steps)} step(s), S with its own "
        "moments, the proposals from fresh ones</p>"
        + (
            html_table(
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
                        p.origin_text or "—",
                        p.text,
                        p.dev_loss_before,
                        p.dev_loss,
                        percent(p.dev_accuracy),
                        "yes" if p.continued else "",
                    )
                    for p in item.probes
                ),
                text_columns=frozenset({1}),
                row_classes=("chosen" if p.continued else "" for p in item.probes),
            )
        )
    )


def rounds_html(rounds: Sequence[RoundEvent]) -> str:
    parts = []
    for item in rounds:
        current, chosen = current_candidate(item), chosen_at(item)
        status = (
            f"skipped: {item.skip_reason or 'no reason recorded'}"
            if item.skipped
            else f"choice: {item.reason or 'no reason recorded'}"
        )
        parts.append(
            f"<h4>round {escape(item.round)} (after step {escape(item.step)}): "
            f"{escape(_outcome(item, current))}</h4>"
        )
        parts.append(f'<p class="note">{escape(status)}</p>')
        parts.append(_proposals_table(item, chosen))
        parts.append(_probes_html(item))
        parts.append(_pool_html(item, chosen))
    return "".join(parts)


_RACE_HEADERS = (
    "#",
    "origin",
    "text (fitted to the slots)",
    "as written, where cut",
    "last rung",
    "own steps",
    "dev loss",
    "dev accuracy",
    "outcome",
)


def _as_written(entrant: RaceEntrant, word_cap_cuts: dict[str, str]) -> str | None:
    """The text before any cut, where one was made: the proposer's cut to the word cap
    (``max_words: fit``) comes before the fit to the slots (``written``)."""
    before_fit = entrant.written or entrant.text
    return word_cap_cuts.get(before_fit, entrant.written)


def _race_outcome(standing: Standing) -> str:
    if standing.won:
        return "winner"
    if standing.cut is None:
        return "—"
    return f"cut after rung {standing.cut.rung} ({standing.place} of {len(standing.cut.ranking)})"


def race_entrants_html(race: RaceRecord, field: RaceEntrantsEvent | None) -> str:
    """Every entrant in the order the race ranked them, the winner first, with how far it got;
    then what the source wrote that did not enter (``field``: the race_entrants event, None
    where events.jsonl lacks it), and why."""
    word_cap_cuts = (
        {}
        if field is None
        else {str(c.get("kept")): str(c.get("text")) for c in _detail_list(field, "cut")}
    )
    by_index = {e.index: e for e in race.entrants}
    rows: list[tuple[object, ...]] = []
    classes: list[str] = []
    for standing in standings(race):
        entrant, last = by_index[standing.index], standing.last
        rows.append(
            (
                f"#{entrant.index}",
                entrant_origin(entrant),
                entrant.text,
                _as_written(entrant, word_cap_cuts),
                None if last is None else last.rung,
                None if last is None else last.steps,
                None if last is None else last.dev_loss,
                None if last is None else percent(last.dev_accuracy),
                _race_outcome(standing),
            )
        )
        classes.append("chosen" if standing.won else "")
    if field is not None:
        numbers = {e.text: f"#{e.index}" for e in race.entrants}
        left_out = [
            (m.get("text"), f"merged into {numbers.get(str(m.get('into')), '—')}: the same slots")
            for m in _detail_list(field, "merged")
        ]
        left_out += [
            (r.get("text"), f"rejected: {r.get('reason')}") for r in _detail_list(field, "rejected")
        ]
        for text, why in left_out:
            rows.append(("—", "—", text, None, None, None, None, None, why))
            classes.append("rejected")
    table = html_table(
        _RACE_HEADERS,
        rows,
        text_columns=frozenset({2, 3}),
        row_classes=classes,
    )
    reason = None if field is None else field.details.get("skip_reason")
    note = f'<p class="note">the source gave no entrant: {escape(reason)}</p>' if reason else ""
    return table + note
