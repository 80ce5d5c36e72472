"""The report's figures: methods compared over seeds, a run's training curves, its rounds, its
start race.

Drawn with matplotlib's object API (no pyplot: no global state, no GUI backend) and with math
text off, so a task or arm name from a config file is drawn as written. No prompt text is drawn:
texts from files or an LLM belong in the page, escaped, where they can be read and copied; a plot
shows where each candidate stands.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from llm_catalyst.experiments.races import entrant_origin
from llm_catalyst.experiments.results import RunEvents
from llm_catalyst.experiments.rounds import restart_kind
from llm_catalyst.experiments.stats import ConfidenceInterval, SeedMean
from llm_catalyst.records import CandidateRecord, OriginRecord, RaceRecord, RoundEvent

_DPI = 100
_RC = {"text.parse_math": False}
# A restart's line and marker are coloured by where it came from; other origins are grey.
_ORIGIN_COLORS = {"llm": "tab:purple", "random tokens": "tab:brown", "projection": "tab:green"}
_KEPT_COLOR = "tab:red"
_DEV_COLOR = "tab:orange"


@dataclass(frozen=True)
class MethodScores(SeedMean):
    """One method's test accuracy on one task per seed, and the interval of their mean."""

    accuracies: tuple[float, ...]
    interval: ConfidenceInterval | None


def _draw(path: Path, size: tuple[float, float], draw: Callable[[Figure], None]) -> Path:
    with rc_context(_RC):
        figure = Figure(figsize=size, layout="constrained")
        draw(figure)
        figure.savefig(path, format="png", dpi=_DPI)
    return path


def _origin_color(record: OriginRecord) -> str:
    return _ORIGIN_COLORS.get(restart_kind(record), "tab:gray")


# -- methods compared ---------------------------------------------------------------------------


# A panel spans at least this many percentage points, so that a difference of one point does
# not fill the height of the plot.
_MIN_SPAN_PP = 10.0


def _at_least(limits: tuple[float, float], span: float) -> tuple[float, float]:
    """``limits`` widened about their centre to ``span``, kept within 0-100%."""
    low, high = limits
    if high - low >= span:
        return low, high
    low = min(max(0.0, (low + high - span) / 2), 100.0 - span)
    return low, low + span


def _method_panel(
    axes: Axes, task: str, scores: Sequence[MethodScores], baseline: str, colors: dict[int, str]
) -> None:
    """Seeds as dots left of each method's tick, the mean and its interval right of it."""
    for x, item in enumerate(scores):
        spread = np.linspace(-0.1, 0.1, len(item.seeds)) if len(item.seeds) > 1 else [0.0]
        for offset, seed, accuracy in zip(spread, item.seeds, item.accuracies, strict=True):
            axes.scatter(
                x - 0.12 + offset, 100 * accuracy, s=30, color=colors[seed], alpha=0.85, zorder=3
            )
        mean = 100 * item.mean
        error = None
        if item.interval is not None:
            error = [[mean - 100 * item.interval.low], [100 * item.interval.high - mean]]
        axes.errorbar(
            x + 0.14, mean, yerr=error, fmt="D", color="black", markersize=5, capsize=4, zorder=3
        )
        if item.method == baseline:
            axes.axhline(mean, color="tab:gray", ls="--", lw=1, zorder=1)
    axes.set_xticks(
        range(len(scores)), [f"{s.method}\n{len(s.seeds)} seed(s)" for s in scores], fontsize=9
    )
    if len(scores) > 4:
        for label in axes.get_xticklabels():
            label.set(rotation=25, ha="right", rotation_mode="anchor")
    axes.set_xlim(-0.6, len(scores) - 0.4)
    axes.set_ylim(_at_least(axes.get_ylim(), _MIN_SPAN_PP))
    axes.set(title=task, ylabel="test accuracy (%)")
    axes.grid(axis="y", alpha=0.3)


def plot_comparison(
    scores: Sequence[MethodScores], baseline: str, level: float, path: Path
) -> Path:
    """One panel per task, methods in ``scores``' order (the table's); seeds share a colour."""
    tasks = list(dict.fromkeys(s.task for s in scores))
    columns = min(len(tasks), 3)
    rows = math.ceil(len(tasks) / columns)
    seeds = sorted({seed for s in scores for seed in s.seeds})
    colors = {seed: f"C{i % 10}" for i, seed in enumerate(seeds)}

    def draw(figure: Figure) -> None:
        grid = figure.subplots(rows, columns, squeeze=False)
        for axes, task in zip(grid.flat, tasks, strict=False):
            _method_panel(axes, task, [s for s in scores if s.task == task], baseline, colors)
        for axes in grid.flat[len(tasks) :]:
            axes.set_visible(False)
        handles = [
            Line2D([], [], marker="o", ls="", color=colors[seed], label=f"seed {seed}")
            for seed in seeds
        ]
        handles.append(
            Line2D([], [], marker="D", ls="", color="black", label=f"mean, {level:.0%} interval")
        )
        if any(s.method == baseline for s in scores):
            handles.append(Line2D([], [], color="tab:gray", ls="--", label=f"mean of {baseline}"))
        figure.legend(handles=handles, loc="outside right upper", fontsize="small")

    return _draw(path, (10, 0.5 + 3.6 * rows), draw)


# -- one run's training curves ------------------------------------------------------------------


def kept_point(
    events: RunEvents, best_step: int | None, best_origin: str | None
) -> tuple[int, float] | None:
    """Where the kept prompt sits on the dev-accuracy curve, or None where it is not there.

    A restart is scored at the step of the round whose evaluation of S it follows, so a best step
    with both is the restart's when ``best_origin`` says so (or, for runs written before
    ``best_origin`` existed, when the restart improved the best). The kept prompt of a search
    without gradients is a proposal, off the curve ("round N: ...").
    """
    if best_step is None or (best_origin or "").startswith("round "):
        return None
    restart = next((r for r in events.restarts if r.step == best_step), None)
    if restart is not None and restart.dev_accuracy is not None:
        from_restart = (
            best_origin.startswith("restart") if best_origin is not None else restart.improved
        )
        if from_restart:
            return best_step, restart.dev_accuracy
    evaluation = next((e for e in events.dev_evals if e.step == best_step), None)
    return None if evaluation is None else (best_step, evaluation.accuracy)


def _dev_path(events: RunEvents, *, loss: bool) -> tuple[list[int], list[float]]:
    """S's dev loss (or accuracy) along the run: at a restart's step the evaluation of the S it
    replaced comes first and the restart's own score second, so the line jumps there."""
    points = [(e.step, 0, e.loss if loss else e.accuracy) for e in events.dev_evals]
    for r in events.restarts:
        value = r.dev_loss if loss else r.dev_accuracy
        if value is not None:
            points.append((r.step, 1, value))
    points.sort(key=lambda point: point[:2])
    return [p[0] for p in points], [p[2] for p in points]


def plot_curves(
    events: RunEvents, best_step: int | None, best_origin: str | None, path: Path
) -> Path:
    """Losses and dev accuracy against steps; restarts as lines labelled by round and origin."""

    def draw(figure: Figure) -> None:
        loss_axes, accuracy_axes = figure.subplots(1, 2)
        steps = events.train_steps
        loss_axes.plot(
            [s.step for s in steps], [s.loss for s in steps], lw=1, alpha=0.6, label="train (batch)"
        )
        loss_axes.plot(
            *_dev_path(events, loss=True), marker=".", lw=1.5, color=_DEV_COLOR, label="dev, S"
        )
        steps_at, accuracies = _dev_path(events, loss=False)
        accuracy_axes.plot(
            steps_at,
            [100 * a for a in accuracies],
            marker=".",
            lw=1.5,
            color=_DEV_COLOR,
            label="dev, S",
        )
        kept = kept_point(events, best_step, best_origin)
        if kept is not None:
            accuracy_axes.scatter(
                kept[0],
                100 * kept[1],
                marker="*",
                s=180,
                c=_KEPT_COLOR,
                zorder=4,
                label="kept (best dev)",
            )
        labelled: set[str] = set()
        for restart in events.restarts:
            # Runs written before restarts recorded their origin say only "restart".
            kind = f"restart: {restart_kind(restart)}" if restart.origin else "restart"
            color = _origin_color(restart)
            for axes in (loss_axes, accuracy_axes):
                label = kind if axes is loss_axes and kind not in labelled else None
                axes.axvline(restart.step, color=color, ls="--", lw=1, label=label)
                if restart.round is not None:
                    axes.annotate(
                        f"R{restart.round}",
                        (restart.step, 1.0),
                        xycoords=("data", "axes fraction"),
                        xytext=(2, -2),
                        textcoords="offset points",
                        va="top",
                        fontsize="small",
                        color=color,
                    )
            labelled.add(kind)
            if restart.dev_accuracy is not None:
                accuracy_axes.scatter(
                    restart.step,
                    100 * restart.dev_accuracy,
                    marker="D",
                    s=30,
                    color=color,
                    zorder=3,
                )
        loss_axes.set(title="loss: train batches, and S on dev", xlabel="step", ylabel="loss")
        accuracy_axes.set(
            title="dev accuracy of the soft prompt S", xlabel="step", ylabel="accuracy (%)"
        )
        for axes in (loss_axes, accuracy_axes):
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
            axes.legend(loc="best", fontsize="small")

    return _draw(path, (10, 3.4), draw)


# -- one run's rounds ---------------------------------------------------------------------------


def _scored(candidates: Sequence[CandidateRecord]) -> list[CandidateRecord]:
    return [c for c in candidates if c.dev_loss is not None and c.origin != "current"]


def plot_rounds(
    rounds: Sequence[RoundEvent], chosen_in_proposals: Sequence[bool], path: Path
) -> Path:
    """Per round: S's dev loss as a bar, the pool left of the round and the proposals right of
    it, the chosen one starred (on the side it was chosen from)."""
    offset = 0.15

    def draw(figure: Figure) -> None:
        axes = figure.subplots()
        current = [
            (item.round, c.dev_loss)
            for item in rounds
            for c in item.pool
            if c.origin == "current" and c.dev_loss is not None
        ]
        # Without S (a search without gradients) the pool is every prompt scored so far.
        pool_label = "pool: projected texts" if current else "prompts scored before"
        if current:
            xs, ys = zip(*current, strict=True)
            axes.hlines(
                ys,
                [x - 0.35 for x in xs],
                [x + 0.35 for x in xs],
                colors="black",
                lw=2,
                zorder=2,
                label="S (current soft prompt)",
            )
        for series, shift, marker, label in (
            ("pool", -offset, "o", pool_label),
            ("proposals", offset, "^", "proposals"),
        ):
            xs, ys = [], []
            for item in rounds:
                scored = _scored(getattr(item, series))
                xs += [item.round + shift] * len(scored)
                ys += [c.dev_loss for c in scored]
            if xs:
                axes.scatter(xs, ys, marker=marker, alpha=0.7, label=label, zorder=3)
        chosen = [
            (item.round + (offset if proposal else -offset), item.chosen.dev_loss)
            for item, proposal in zip(rounds, chosen_in_proposals, strict=True)
            if item.chosen is not None and item.chosen.dev_loss is not None
        ]
        if chosen:
            axes.scatter(
                *zip(*chosen, strict=True),
                marker="*",
                s=220,
                c=_KEPT_COLOR,
                edgecolors="black",
                zorder=4,
                label="chosen",
            )
        # A skipped round is said under its tick, where no candidate or S can hide the word.
        for item in rounds:
            if item.skipped:
                axes.axvline(item.round, color="tab:gray", ls=":", lw=1)
        ticks = [
            (r.round, f"{r.round}\nstep {r.step}" + ("\nskipped" if r.skipped else ""))
            for r in rounds
        ]
        title = "dev loss of the candidates per round (lower is better)"
        _dev_loss_axes(figure, axes, ticks, title, "round (after step)")

    return _draw(path, (10, 3.6), draw)


# -- one run's start race -----------------------------------------------------------------------

# An entrant's line style says its origin; the winner's colour is the kept prompt's.
_RACE_STYLES = {"random start": ":", "instruction": "--", "random tokens": "-."}


def plot_race(race: RaceRecord, path: Path) -> Path:
    """Each entrant's dev loss against its own steps, one line per entrant (numbered as in the
    page's table, styled by origin) that ends at the rung it was cut after (a cross); the
    winner's is thick and ends in a star. The zero-step rung, where there is one, is step 0;
    each rung's end is a tick and a dotted line. A race without legs (a field of one) has no
    plot."""
    others = [f"C{i}" for i in range(10) if i != 3]  # C3 is the winner's red

    def draw(figure: Figure) -> None:
        axes = figure.subplots()
        rung_ends = sorted({(leg.steps, leg.rung) for leg in race.legs})
        for at, _ in rung_ends:
            axes.axvline(at, color="tab:gray", ls=":", lw=1, zorder=1)
        for number, entrant in enumerate(race.entrants):
            legs = sorted(
                (g for g in race.legs if g.entrant == entrant.index), key=lambda g: g.rung
            )
            if not legs:
                continue
            origin = entrant_origin(entrant)
            won = entrant.index == race.winner
            color = _KEPT_COLOR if won else others[number % len(others)]
            steps, losses = [g.steps for g in legs], [g.dev_loss for g in legs]
            axes.plot(
                steps,
                losses,
                ls=_RACE_STYLES.get(origin, "-"),
                marker=".",
                lw=2.5 if won else 1.2,
                color=color,
                zorder=3 if won else 2,
                label=f"#{entrant.index} {origin}" + (" (winner)" if won else ""),
            )
            axes.scatter(
                steps[-1],
                losses[-1],
                marker="*" if won else "x",
                s=180 if won else 40,
                c=color,
                edgecolors="black" if won else None,
                zorder=4,
            )
        ticks = [(at, f"{at}\nrung {r}") for at, r in rung_ends]
        title = "start race: dev loss of each entrant (lower is better)"
        _dev_loss_axes(
            figure, axes, ticks, title, "the entrant's own steps, at the end of each rung"
        )

    return _draw(path, (10, 3.6), draw)


def _dev_loss_axes(
    figure: Figure, axes: Axes, ticks: Sequence[tuple[float, str]], title: str, xlabel: str
) -> None:
    """The rounds' and the race's plots alike: a tick (position, label) per round or rung, the
    dev loss up, a grid and the legend outside the axes."""
    axes.set_xticks([at for at, _ in ticks], [label for _, label in ticks])
    axes.set_xlim(ticks[0][0] - 0.5, ticks[-1][0] + 0.5)
    axes.set(title=title, xlabel=xlabel, ylabel="dev loss")
    axes.grid(axis="y", alpha=0.3)
    figure.legend(loc="outside right upper", fontsize="small")
