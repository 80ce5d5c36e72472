"""What the restart rounds of a grid did, per task and method: the evidence behind a comparison.

A table of accuracies says whether a method helped; this says why or why not.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from llm_catalyst.experiments.results import RunRecord, read_events
from llm_catalyst.experiments.stats import method_sort_key
from llm_catalyst.experiments.tables import markdown_table
from llm_catalyst.records import OriginRecord, RoundEvent

# How tables name a restart's origin where the origin's own name would read ambiguously.
_KIND_NAMES = {"random": "random tokens"}


@dataclass(frozen=True)
class RoundOutcome:
    """Counts over every round of every seed of one task and method.

    ``loss_gaps`` holds, per round with both, the best proposal's dev loss minus the current
    prompt's (negative: a proposal was better). ``proposals_better`` counts proposals whose dev
    loss was below the current prompt's, out of ``proposals_scored``; both count the proposals
    scored on the whole dev split (a race's dropped proposals were not). ``restarts_by_round``
    pairs each round number seen with its restarts: whether restarts come from round 0 (an LLM
    initialisation) or from later rounds (the trajectory at work) is the method's question.
    """

    task: str
    method: str
    runs: int
    rounds: int
    skipped: int
    kept: int
    restarts: Counter[str]
    proposals_scored: int
    proposals_better: int
    loss_gaps: tuple[float, ...]
    restarts_by_round: tuple[tuple[int, int], ...] = ()

    @property
    def median_gap(self) -> float | None:
        return statistics.median(self.loss_gaps) if self.loss_gaps else None


def restart_kind(record: OriginRecord) -> str:
    """What kind of prompt a restart came from, as tables and plots name it."""
    origin = record.origin or "unknown"
    return _KIND_NAMES.get(origin, origin)


def _current_loss(item: RoundEvent) -> float | None:
    current = next((c for c in item.pool if c.origin == "current"), None)
    return None if current is None else current.dev_loss


def _whole_split_losses(item: RoundEvent) -> list[float]:
    """The proposals' dev losses over the whole dev split: a proposal a race dropped
    (``loop.racing``) was scored on fewer examples than the round's others and is left out."""
    sizes = [c.dev_n for c in [*item.pool, *item.proposals] if c.dev_n is not None]
    whole = max(sizes, default=None)
    return [
        c.dev_loss
        for c in item.proposals
        if c.dev_loss is not None and (c.dev_n is None or c.dev_n == whole)
    ]


def _outcome(task: str, method: str, runs: Sequence[RunRecord]) -> RoundOutcome:
    rounds = [item for run in runs for item in read_events(run.path).rounds]
    taken = [
        (item.round, item.chosen) for item in rounds if not item.skipped and item.chosen is not None
    ]
    restarts: Counter[str] = Counter(restart_kind(chosen) for _, chosen in taken)
    per_round = Counter(number for number, _ in taken)
    gaps: list[float] = []
    better = scored = 0
    for item in rounds:
        current = _current_loss(item)
        losses = _whole_split_losses(item)
        scored += len(losses)
        if current is None or not losses:
            continue
        better += sum(loss < current for loss in losses)
        gaps.append(min(losses) - current)
    skipped = sum(item.skipped for item in rounds)
    return RoundOutcome(
        task=task,
        method=method,
        runs=len(runs),
        rounds=len(rounds),
        skipped=skipped,
        kept=len(rounds) - skipped - sum(restarts.values()),
        restarts=restarts,
        proposals_scored=scored,
        proposals_better=better,
        loss_gaps=tuple(gaps),
        restarts_by_round=tuple(
            (number, per_round[number]) for number in sorted({item.round for item in rounds})
        ),
    )


def round_outcomes(runs: Iterable[RunRecord]) -> list[RoundOutcome]:
    """One outcome per (task, method) whose runs logged at least one round, in table order."""
    groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for run in runs:
        groups[(run.task, run.arm_name)].append(run)
    outcomes = [_outcome(task, method, group) for (task, method), group in groups.items()]
    return sorted(
        (o for o in outcomes if o.rounds),
        key=lambda o: (o.task, method_sort_key(o.method)),
    )


ROUND_HEADERS = (
    "task",
    "method",
    "rounds",
    "skipped",
    "kept S",
    "restarts (source)",
    "restarts by round",
    "proposals better than S",
    "median dev-loss gap",
)


def _restarts(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {source}" for source, n in counts.most_common()) or "0"


def _by_round(pairs: Sequence[tuple[int, int]]) -> str:
    return ", ".join(f"r{number}: {n}" for number, n in pairs) or "—"


ROUNDS_LEGEND = (
    "Rounds over all seeds, round 0 (loop.init_round: proposals before any gradient step, "
    "compared with the initial prompt) included. "
    "Skipped: no usable proposal (LLM failure or nothing parsable). "
    "Kept S: the selection policy kept the current prompt. Restarts by round: over all seeds, "
    "the restarts of round r0, r1, ... (r0 asks before any gradient step, with no trajectory "
    "to show). Proposals better than S: dev loss "
    "below the current prompt's in the same round (S scored as the soft prompt it is, each "
    "proposal as the hard prompt its text fits to). Median dev-loss gap: the best proposal's "
    "dev loss minus the current prompt's (negative: a proposal was better)."
)


def rounds_rows(outcomes: Sequence[RoundOutcome]) -> list[tuple[str, ...]]:
    """Display cells under ``ROUND_HEADERS``, shared by the Markdown table and the report."""
    return [
        (
            o.task,
            o.method,
            str(o.rounds),
            str(o.skipped),
            str(o.kept),
            _restarts(o.restarts),
            _by_round(o.restarts_by_round),
            f"{o.proposals_better}/{o.proposals_scored}",
            "—" if o.median_gap is None else f"{o.median_gap:+.3f}",
        )
        for o in outcomes
    ]


def rounds_markdown(outcomes: Sequence[RoundOutcome]) -> str:
    """A Markdown table with its legend; empty text when no run had rounds."""
    if not outcomes:
        return ""
    return f"{markdown_table(ROUND_HEADERS, rounds_rows(outcomes))}\n\n{ROUNDS_LEGEND}\n"
