"""The catalyst's recipe, chosen from the ablation by the rule the experiment file states.

Choosing by hand after reading the numbers invites choosing what one hoped for; the rule is
fixed before the ablation runs and applied here. Each variant's score is its mean held-out
accuracy (protocol ``validation``, never the test split) over every (task, seed) pair it
finished. The best variant wins unless one the tie-break prefers is within ``tolerance`` of
it: a difference the few pairs cannot tell from noise should not buy a longer meta-prompt
(``fewer_ingredients``) or a costlier recipe (``listed_first``, the cheapest listed first).
Variants with fewer pairs than the most are left out, as in the sweep.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from llm_catalyst.experiments.experiment import AblationConfig
from llm_catalyst.experiments.results import RunRecord

ABLATION_FILE = "ablation.json"
INGREDIENTS_KEY = "llm.proposer.ingredients"


@dataclass(frozen=True)
class VariantScore:
    arm: str
    ingredients: tuple[str, ...]
    pairs: tuple[tuple[str, int], ...]
    accuracy: float


@dataclass(frozen=True)
class VariantChoice:
    """``chosen`` by the rule; ``best`` the highest mean, which differs when a variant with
    fewer ingredients came within the tolerance of it."""

    chosen: str
    best: str
    tolerance: float
    scores: tuple[VariantScore, ...]
    tie_break: str = "fewer_ingredients"


def choose_variant(runs: Sequence[RunRecord], ablation: AblationConfig) -> VariantChoice | None:
    """The rule applied to the finished validation runs of the ablation's variants; None when
    no variant has a finished run yet."""
    by_arm: dict[str, list[RunRecord]] = defaultdict(list)
    for run in runs:
        if run.protocol == "validation" and run.arm_name in ablation.arms:
            by_arm[run.arm_name].append(run)
    if not by_arm:
        return None
    scores = [
        VariantScore(
            arm,
            tuple(ablation.arms[arm].get(INGREDIENTS_KEY, ())),
            tuple(sorted((r.task, r.seed) for r in by_arm[arm])),
            float(np.mean([r.test.accuracy for r in by_arm[arm]])),
        )
        for arm in ablation.arms
        if arm in by_arm
    ]
    most = max(len(s.pairs) for s in scores)
    complete = [s for s in scores if len(s.pairs) == most]
    best = max(complete, key=lambda s: s.accuracy)
    close = [s for s in complete if s.accuracy >= best.accuracy - ablation.tolerance]
    if ablation.tie_break == "listed_first":
        chosen = close[0]  # scores follow the order of ablation.arms
    else:
        chosen = min(close, key=lambda s: (len(s.ingredients), -s.accuracy))
    return VariantChoice(
        chosen.arm, best.arm, ablation.tolerance, tuple(scores), ablation.tie_break
    )


def write_choice(output: Path, choice: VariantChoice) -> Path:
    path = Path(output) / ABLATION_FILE
    path.write_text(json.dumps(asdict(choice), indent=2) + "\n", encoding="utf-8")
    return path


def choice_markdown(choice: VariantChoice) -> str:
    """One row per variant (mean held-out accuracy over its pairs), then the rule's verdict."""
    lines = [
        "| variant | ingredients | (task, seed) pairs | mean held-out accuracy |",
        "|---|---|---|---|",
    ]
    for score in choice.scores:
        ingredients = ", ".join(score.ingredients) or "(the arm's)"
        lines.append(
            f"| {score.arm} | {ingredients} | {len(score.pairs)} | {100 * score.accuracy:.1f} |"
        )
    verdict = f"chosen: {choice.chosen}"
    if choice.chosen != choice.best:
        verdict += (
            f" ({choice.tie_break.replace('_', ' ')}, within {100 * choice.tolerance:.1f} points "
            f"of the best, {choice.best})"
        )
    return "\n".join([*lines, "", verdict])
