"""The selection policy of method.md 2e: which scored candidate, if any, S restarts from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    # Only a type: RunConfig names a Selection, and validating a config loads no torch.
    from llm_catalyst.catalyst.domain import Candidate

Selection = Literal["margin", "best", "first"]


@dataclass(frozen=True)
class Choice:
    """The restart (None: keep S) and why, in words the round's record keeps."""

    candidate: Candidate | None
    reason: str


def choose(
    selection: Selection,
    margin: float,
    current: Candidate,
    pool: Sequence[Candidate],
    proposals: Sequence[Candidate],
) -> Choice:
    """The restart of a round (or None: keep S) and why, all by dev loss."""
    if selection == "first":
        return Choice(proposals[0], "selection 'first' (reference rule): the first proposal")
    if selection == "margin":
        best = min(proposals, key=lambda c: c.loss)
        gain = current.loss - best.loss
        if gain > margin:
            return Choice(
                best,
                f"best proposal: dev loss {best.loss:.4f}, {gain:.4f} below the current "
                f"prompt's {current.loss:.4f} (margin {margin})",
            )
        return Choice(
            None,
            f"keep S: the best proposal's dev loss {best.loss:.4f} is not below the current "
            f"prompt's {current.loss:.4f} by more than the margin {margin}",
        )
    best = min([current, *pool, *proposals], key=lambda c: c.loss)
    if best is current:
        return Choice(None, "keep S: the current prompt has the lowest dev loss of all scored")
    return Choice(
        best,
        f"lowest dev loss of all scored ({best.origin_text}): {best.loss:.4f} against the "
        f"current prompt's {current.loss:.4f}",
    )
