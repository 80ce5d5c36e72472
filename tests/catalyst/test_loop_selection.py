"""The pieces of the loop that decide: the candidate pool of a stage and the selection policies."""

from __future__ import annotations

import pytest
import torch

from llm_catalyst.catalyst.domain import Candidate, TrajectoryPoint, candidate_pool
from llm_catalyst.catalyst.selection import choose
from llm_catalyst.prompts.projection import Vocabulary, project_many
from llm_catalyst.records import Metrics, Origin


def _scored(text: str, loss: float, origin: Origin = "llm", detail: str = "") -> Candidate:
    result = Metrics(loss=loss, accuracy=0.5, n=8)
    return Candidate(text, torch.zeros(2, 4), origin, detail, result)


CURRENT = _scored("current", 0.60, "current")
POOL = [_scored("pool a", 0.70, "pool", "step 0"), _scored("pool b", 0.40, "pool", "step 2")]


def test_margin_takes_the_best_proposal_when_it_beats_s_by_the_margin():
    proposals = [_scored("p1", 0.58), _scored("p2", 0.50), _scored("p3", 0.55)]
    choice = choose("margin", 0.05, CURRENT, POOL, proposals)
    assert choice.candidate is proposals[1]
    assert "0.5000" in choice.reason and "0.6000" in choice.reason


def test_margin_keeps_s_when_the_gain_is_within_the_margin():
    proposals = [_scored("p1", 0.58), _scored("p2", 0.56)]
    choice = choose("margin", 0.05, CURRENT, POOL, proposals)
    assert choice.candidate is None
    assert choice.reason.startswith("keep S")


def test_margin_ignores_the_pool_even_when_a_pool_text_is_better():
    choice = choose("margin", 0.0, CURRENT, POOL, [_scored("p1", 0.65)])
    assert choice.candidate is None


def test_best_of_everything_can_restart_from_a_pool_text():
    choice = choose("best", 0.0, CURRENT, POOL, [_scored("p1", 0.45)])
    assert choice.candidate is POOL[1]


def test_best_of_everything_keeps_s_when_s_is_best():
    choice = choose("best", 0.0, _scored("current", 0.1, "current"), POOL, [_scored("p1", 0.45)])
    assert choice.candidate is None


def test_first_takes_the_first_proposal_even_when_it_is_worse():
    proposals = [_scored("worse", 0.9), _scored("better", 0.1)]
    choice = choose("first", 0.0, CURRENT, POOL, proposals)
    assert choice.candidate is proposals[0]


@pytest.fixture(scope="module")
def vocab(tiny_causal_backbone) -> Vocabulary:
    return Vocabulary.of(tiny_causal_backbone)


def _trajectory(vocab: Vocabulary, token_rows: list[list[int]], losses: list[float]):
    """Prompts that are exact vocabulary rows, so each projects to known tokens."""
    points = [
        TrajectoryPoint(step, loss, vocab.table[ids].clone())
        for step, (ids, loss) in enumerate(zip(token_rows, losses, strict=True))
    ]
    return points, project_many([p.prompt for p in points], vocab)


def test_pool_keeps_distinct_texts_with_their_lowest_loss(vocab):
    rows = [[1000, 1001], [1000, 1001], [2000, 2001], [1000, 1001]]
    points, projections = _trajectory(vocab, rows, [0.9, 0.5, 0.7, 0.8])
    pool = candidate_pool(points, projections, vocab, size=8)
    assert len(pool) == 2
    assert [c.detail for c in pool] == ["step 1, lowest train loss", "step 2"]
    torch.testing.assert_close(pool[0].rows, vocab.table[[1000, 1001]].float())
    assert pool[0].text == vocab.tokenizer.decode([1000, 1001])
    assert all(c.result is None for c in pool)


def test_pool_of_size_k_holds_the_lowest_loss_and_a_spread(vocab):
    rows = [[3000 + i, 4000 + i] for i in range(10)]
    losses = [1.0 - 0.01 * i for i in range(10)]
    losses[4] = 0.1
    points, projections = _trajectory(vocab, rows, losses)
    pool = candidate_pool(points, projections, vocab, size=4)
    steps = [int(c.detail.split(",")[0].removeprefix("step ")) for c in pool]
    assert len(pool) == 4 and steps == sorted(steps)
    assert 4 in steps and pool[steps.index(4)].detail.endswith("lowest train loss")
    assert steps[0] == 0 and steps[-1] == 9, "the rest spreads from the start to the end"


def test_pool_of_size_one_is_the_lowest_loss(vocab):
    rows = [[3000 + i, 4000 + i] for i in range(5)]
    points, projections = _trajectory(vocab, rows, [0.5, 0.4, 0.3, 0.6, 0.7])
    (only,) = candidate_pool(points, projections, vocab, size=1)
    assert only.detail == "step 2, lowest train loss"
