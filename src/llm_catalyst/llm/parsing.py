"""Turn an LLM's answer into clean, new, bounded prompt texts.

The answer is treated as data only; the order of parsers and the rejection rules:
docs/design.md, "Parsing LLM answers".
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

# Answers beyond this size are cut before parsing: a misbehaving server cannot make parsing slow.
MAX_ANSWER_CHARS = 50_000
# A proposal's characters at most per word it may have: the parser's cap, and a structured
# request's, so a constrained answer is never cut where the parser would accept it.
CHARS_PER_WORD = 12
_MAX_JSON_STARTS = 64
_FENCE = re.compile(r"^\s*```.*$", re.MULTILINE)
_LIST_MARKER = re.compile(r"^\s*(?:\(?\d{1,3}(?:\.\d{1,3})*[.):\]]\s*|[-*•·+]\s+)(.+)$")
_LABEL = re.compile(
    r"^(?:new\s+)?(?:prompt|template|instruction|text)s?\s*\d{0,3}\s*[:=\-–]\s*", re.IGNORECASE
)
_TAGS = re.compile(r"</?INS>", re.IGNORECASE)
# "Loss: 0.52", "accuracy 95.8%", "(loss 0.410)": a score line of the meta-prompt, echoed.
_SCORE = re.compile(
    r"[(\[]?\b(?:dev\s+)?(?:loss|accuracy|acc)\b\s*[:=]?\s*-?\d+(?:\.\d+)?\s*%?[)\]]?",
    re.IGNORECASE,
)
_SEPARATORS = " ,;|-–—"
_QUOTED = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_QUOTES = ('"', "'", "“", "”", "‘", "’", "«", "»")
_WRAPPERS = (*_QUOTES, "`", "*")
_UNPRINTABLE = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})

Method = Literal["json", "json_partial", "lines", "none"]


@dataclass(frozen=True)
class Rejection:
    """A candidate that did not become a proposal: ``text`` as the LLM wrote it (cleaned),
    ``reason`` why not. Kept rather than dropped so that a round that came out short or empty
    can be explained from its record: what the LLM offered and why none of it was used."""

    text: str
    reason: str


@dataclass(frozen=True)
class Cut:
    """A proposal over the caps, cut at a word boundary instead of rejected: ``text`` as the
    LLM wrote it (cleaned), ``kept`` the part that became the proposal."""

    text: str
    kept: str


@dataclass(frozen=True)
class ParseResult:
    accepted: tuple[str, ...]
    rejected: tuple[Rejection, ...]
    method: Method
    cut: tuple[Cut, ...] = ()


def prompt_key(text: str) -> str:
    """Case, spacing and end punctuation do not make a prompt new."""
    return " ".join(text.casefold().split()).strip(" .!?;:,")


def parse_proposals(
    raw: str,
    max_words: int,
    tried: Iterable[str] = (),
    max_chars: int | None = None,
    echo: str = "",
    cut_off: bool = False,
    cut_long: bool = False,
) -> ParseResult:
    """Candidates from ``raw``, cleaned and filtered; ``max_chars`` defaults to
    ``CHARS_PER_WORD`` per word. A candidate over ``max_words`` or ``max_chars`` is rejected,
    or with ``cut_long`` cut at a word boundary to fit them (``max_words: fit``, where the cap
    is what the prompt's slots hold, so the part that fits is what would be used anyway); the
    cut text is then checked as any other."""
    char_limit = max_chars if max_chars is not None else CHARS_PER_WORD * max_words
    method, candidates = _candidates(_FENCE.sub("", raw[:MAX_ANSWER_CHARS]))
    tried_keys = {prompt_key(t) for t in tried}
    echo_keys = {prompt_key(_clean(line)) for line in echo.splitlines()}
    accepted_keys: set[str] = set()
    accepted: list[str] = []
    rejected: list[Rejection] = []
    cuts: list[Cut] = []
    for position, candidate in enumerate(candidates, start=1):
        written = text = _clean(candidate)
        reason = _unusable(text)
        if reason in ("empty", "no words") and _SCORE.search(candidate):
            reason = "nothing but echoed score text"
        if reason is None:
            reason = _too_long(text, max_words, char_limit)
            if reason is not None and cut_long:
                text = _cut(text, max_words, char_limit)
                reason = _unusable(text)
        if reason is None and cut_off and method == "lines" and position == len(candidates):
            reason = "cut off by the token limit"
        key = prompt_key(text)
        if reason is None and key in tried_keys:
            reason = "already tried"
        if reason is None and key in echo_keys:
            reason = "copied from the meta-prompt"
        if reason is None and key in accepted_keys:
            reason = "duplicate"
        if reason is None:
            accepted.append(text)
            accepted_keys.add(key)
            if text != written:
                cuts.append(Cut(written, text))
        else:
            if text != written:
                reason = f"{reason} once cut to {text!r}"
            rejected.append(Rejection(written, reason))
    return ParseResult(tuple(accepted), tuple(rejected), method, tuple(cuts))


def _candidates(text: str) -> tuple[Method, list[str]]:
    from_json = _json_list(text)
    if from_json:
        return "json", from_json
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    items = [m.group(1) for m in map(_LIST_MARKER.match, lines) if m]
    if items:
        return "lines", items
    start = text.find("[")
    if start >= 0:
        # A JSON list cut off by the token limit: its complete quoted strings.
        partial = [_unescape(m) for m in _QUOTED.findall(text[start:])]
        if partial:
            return "json_partial", partial
    # No list: labelled ("Prompt: ...") or fully quoted lines if there are any, else every line
    # that is not a preamble ("Here are three prompts:").
    marked = [line for line in lines if _is_labelled(line) or _is_quoted(line)]
    items = marked or [line for line in lines if not line.endswith(":")]
    return ("lines", items) if items else ("none", [])


def _is_labelled(line: str) -> bool:
    label = _LABEL.match(line)
    return label is not None and bool(line[label.end() :].strip())


def _is_quoted(line: str) -> bool:
    return len(line) >= 2 and line[0] in _WRAPPERS and line[-1] in _WRAPPERS


def _json_list(text: str) -> list[str]:
    decoder = json.JSONDecoder()
    starts = [m.start() for m in re.finditer(r"\[", text)][:_MAX_JSON_STARTS]
    for start in starts:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, list):
            items = [_item_text(v) for v in value]
            strings = [s for s in items if s is not None]
            if strings:
                return strings
    return []


def _item_text(value: object) -> str | None:
    """A list item: a string, or an object holding one under a usual key."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("prompt", "text", "template", "instruction"):
            if isinstance(value.get(key), str):
                return value[key]
    return None


def _unescape(body: str) -> str:
    try:
        return json.loads(f'"{body}"')
    except json.JSONDecodeError:
        return body


def _clean(text: str) -> str:
    text = _TAGS.sub(" ", text).replace("**", "")
    text = " ".join(text.split())
    previous = None
    while previous != text:
        previous = text
        marker = _LIST_MARKER.match(text)  # a numbered item inside a JSON string
        text = marker.group(1) if marker else text
        text = _LABEL.sub("", text).strip()
        text = _SCORE.sub(" ", text)
        text = " ".join(text.split()).strip(_SEPARATORS)
        for mark in _WRAPPERS:
            if len(text) >= 2 and text.startswith(mark) and text.endswith(mark):
                text = text[1:-1].strip()
        # A quote left open (the answer was cut off, or the model forgot to close it).
        if text[:1] in _QUOTES and text.count(text[0]) == 1:
            text = text[1:].strip()
        if text[-1:] in _QUOTES and text.count(text[-1]) == 1:
            text = text[:-1].strip()
    return text


def _unusable(text: str) -> str | None:
    if not text:
        return "empty"
    if not any(c.isalpha() for c in text):
        return "no words"
    if any(unicodedata.category(c) in _UNPRINTABLE for c in text):
        return "non-printable characters"
    return None


def _too_long(text: str, max_words: int, max_chars: int) -> str | None:
    words = len(text.split())
    if words > max_words:
        return f"too long ({words} words > {max_words})"
    if len(text) > max_chars:
        return f"too long ({len(text)} characters > {max_chars})"
    return None


def _cut(text: str, max_words: int, max_chars: int) -> str:
    """The longest run of ``text``'s first words within both caps, without the separators it
    then ends on; a first word longer than ``max_chars`` alone has no boundary to cut at and
    is cut at the cap."""
    kept = " ".join(text.split()[:max_words])
    while len(kept) > max_chars and " " in kept:
        kept = kept.rsplit(" ", 1)[0]
    return kept[:max_chars].rstrip(_SEPARATORS)
