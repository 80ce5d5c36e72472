"""The start races of a grid (methods race, random-race, llm-init), read from results.json.

The question a race answers is where a good start comes from: the LLM's texts, the task's
instruction or the random start. So a grid's summary counts the winners by origin and says what
the race cost (its steps, and those spent on entrants it cut); a run's page lists every entrant
by how far it got. The Markdown table, the report's table and its plot share these.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from llm_catalyst.experiments.results import RunRecord
from llm_catalyst.experiments.stats import method_sort_key
from llm_catalyst.records import OriginRecord, RaceCut, RaceEntrant, RaceLeg, RaceRecord

# How the race's tables name an entrant's origin where the origin's own name would not say it:
# "initial" is the seed's random start, "random" random-race's random-token texts.
_ORIGIN_NAMES = {"initial": "random start", "random": "random tokens"}


def entrant_origin(entrant: OriginRecord) -> str:
    """Where an entrant came from, as the tables and the plot's legend name it."""
    origin = entrant.origin or "unknown"
    return _ORIGIN_NAMES.get(origin, origin)


@dataclass(frozen=True)
class Standing:
    """How far one entrant got: its last leg (None where it ran none: a field of one) and the
    cut that dropped it (None for the winner)."""

    index: int
    last: RaceLeg | None
    cut: RaceCut | None
    won: bool

    @property
    def place(self) -> int | None:
        """Its place in the ranking of the rung it was cut after (1 is that rung's best)."""
        return None if self.cut is None else self.cut.ranking.index(self.index) + 1


def standings(race: RaceRecord) -> list[Standing]:
    """Every entrant, the winner first, then the later an entrant was cut the higher, and within
    one cut by its place: the order in which the race ranked them."""
    result = []
    for entrant in race.entrants:
        index = entrant.index
        legs = sorted((leg for leg in race.legs if leg.entrant == index), key=lambda g: g.rung)
        cut = next((c for c in race.cuts if index in c.ranking and index not in c.survivors), None)
        result.append(Standing(index, legs[-1] if legs else None, cut, index == race.winner))

    def order(standing: Standing) -> tuple[int, ...]:
        if standing.won:
            return (0,)
        if standing.cut is None:
            return (2, standing.index)
        return (1, -standing.cut.rung, standing.place or 0)

    return sorted(result, key=order)


def winner(race: RaceRecord) -> RaceEntrant:
    """The entrant the run went on from."""
    return next(e for e in race.entrants if e.index == race.winner)


def first_leader(race: RaceRecord) -> int | None:
    """The entrant ranked best by the race's first cut, or None where no cut was made."""
    cuts = sorted(race.cuts, key=lambda c: c.rung)
    return cuts[0].ranking[0] if cuts and cuts[0].ranking else None


@dataclass(frozen=True)
class RaceSummary:
    """The start races of one task and arm over its seeds.

    ``alone`` counts the fields of one (no race: the start trained alone). ``winners`` counts
    the winners of the contested races by origin; ``leader_won`` those whose winner led the
    first rung: when it is every race, the rungs after the first changed nothing and cost
    steps. ``discarded_share`` is the cut entrants' steps over all the optimizer steps of the
    runs that recorded them (None for none).
    """

    task: str
    method: str
    races: int
    alone: int
    winners: Counter[str]
    leader_won: int
    entrants: tuple[int, ...]
    steps: tuple[int, ...]
    discarded: tuple[int, ...]
    discarded_share: float | None

    @property
    def contested(self) -> int:
        return self.races - self.alone


def _summary(task: str, method: str, runs: Sequence[RunRecord]) -> RaceSummary:
    races = [run.race for run in runs if run.race is not None]
    contested = [r for r in races if len(r.entrants) > 1]
    winners: Counter[str] = Counter(entrant_origin(winner(r)) for r in contested)
    spent = [run.compute for run in runs if run.race is not None and run.compute is not None]
    total = sum(c.gradient_steps for c in spent)
    return RaceSummary(
        task=task,
        method=method,
        races=len(races),
        alone=len(races) - len(contested),
        winners=winners,
        leader_won=sum(first_leader(r) == r.winner for r in contested),
        entrants=tuple(len(r.entrants) for r in races),
        steps=tuple(r.steps for r in races),
        discarded=tuple(r.discarded_steps for r in races),
        discarded_share=sum(c.discarded_race_steps for c in spent) / total if total else None,
    )


def race_summaries(runs: Iterable[RunRecord]) -> tuple[RaceSummary, ...]:
    """One summary per (task, arm) with at least one race, in the comparison table's order."""
    groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for run in runs:
        if run.race is not None:
            groups[(run.task, run.arm_name)].append(run)
    return tuple(
        _summary(task, method, group)
        for (task, method), group in sorted(
            groups.items(), key=lambda item: (item[0][0], method_sort_key(item[0][1]))
        )
    )


RACE_HEADERS = (
    "task",
    "method",
    "races",
    "winner's origin",
    "first-rung leader won",
    "entrants / race",
    "race steps / run",
    "discarded steps / run",
)

RACE_LEGEND = (
    "Start races over all seeds (methods race, random-race, llm-init); a field of one (no "
    "usable text, no instruction: the random start trains alone) is counted apart. Winner's "
    "origin, over the contested races: where the start the run went on from came from (random "
    "start: the seed's random prompt; instruction: the task's hand-written one; llm: a text "
    "the LLM wrote before any step; random tokens: random-race's control). First-rung leader "
    "won: contested races whose winner had the lowest dev loss at the first cut (llm-init "
    "cuts once, at rung 0, so always). Race steps: every entrant's optimizer steps, the "
    "winner's included, all counted against train.steps; discarded: those of the entrants "
    "the race cut, and their share of all the runs' optimizer steps."
)


def _mean(values: Sequence[int]) -> str:
    return f"{statistics.fmean(values):.1f}" if values else "—"


def race_rows(summaries: Sequence[RaceSummary]) -> list[tuple[str, ...]]:
    """Display cells under ``RACE_HEADERS``, shared by the Markdown table and the report."""
    return [
        (
            s.task,
            s.method,
            f"{s.races} ({s.alone} field of one)" if s.alone else str(s.races),
            ", ".join(f"{n} {origin}" for origin, n in s.winners.most_common()),
            f"{s.leader_won}/{s.contested}" if s.contested else "—",
            _mean(s.entrants),
            _mean(s.steps),
            _mean(s.discarded)
            + ("" if s.discarded_share is None else f" ({s.discarded_share:.0%})"),
        )
        for s in summaries
    ]
