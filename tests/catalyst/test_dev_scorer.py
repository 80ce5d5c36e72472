"""DevScorer: scores reused within a run, the scoring path per device, and races on dev."""

from __future__ import annotations

import pytest
import torch

from llm_catalyst.catalyst.dev_scorer import DevScorer, stacked_scoring
from llm_catalyst.catalyst.domain import Candidate
from llm_catalyst.catalyst.state import LoopState
from llm_catalyst.training.scoring import evaluate


def _rows(backbone, k: int, seed: int = 7, slots: int = 3) -> list[torch.Tensor]:
    """Vocabulary rows plus noise, different per candidate (so their scores differ)."""
    generator = torch.Generator().manual_seed(seed)
    table = backbone.embedding_table
    ids = torch.randint(100, table.shape[0], (k, slots), generator=generator)
    noise = torch.randn(k, slots, table.shape[1], generator=generator)
    return list(table[ids] + 0.5 * table.std() * noise)


def _candidates(rows: list[torch.Tensor]) -> list[Candidate]:
    return [Candidate(f"text {i}", r, "llm") for i, r in enumerate(rows)]


def _scorer(backbone, examples, path: str = "sequential", batch_size: int = 64) -> DevScorer:
    state = LoopState.fresh("accuracy")
    return DevScorer(backbone, examples, batch_size, state, path=path, seed=1)


def test_a_prompt_scored_again_reuses_its_score(tiny_causal_backbone, sentiment_examples):
    scorer = _scorer(tiny_causal_backbone, sentiment_examples)
    a, b = _rows(tiny_causal_backbone, 2)
    first = scorer.evaluate(a)
    again = scorer.evaluate(a.clone())
    assert again == first == evaluate(tiny_causal_backbone, a, sentiment_examples)
    scored = scorer.score(_candidates([a, b, a]))
    assert [c.result for c in scored] == [first, scorer.evaluate(b), first]
    counters = scorer.state.compute
    assert (counters.dev_prompts_scored, counters.dev_prompts_reused) == (2, 4)
    assert counters.dev_forward_passes == 2 * len(sentiment_examples)


def test_other_rows_or_another_head_are_scored_afresh(tiny_encoder_backbone, sentiment_examples):
    """A backbone with a head trains it along with the prompt: the same rows under another
    head are another score."""
    scorer = _scorer(tiny_encoder_backbone, sentiment_examples)
    (a,) = _rows(tiny_encoder_backbone, 1)
    before = scorer.evaluate(a)
    scorer.evaluate(a + 1e-3)
    head = tiny_encoder_backbone.head_state()
    changed = {name: -value for name, value in head.items()}
    tiny_encoder_backbone.load_head_state(changed)
    try:
        after = scorer.evaluate(a)
    finally:
        tiny_encoder_backbone.load_head_state(head)
    assert (
        scorer.state.compute.dev_prompts_scored == 3
        and scorer.state.compute.dev_prompts_reused == 0
    )
    assert after != before


@pytest.mark.parametrize("batch_size", [64, 3])
def test_sequential_and_stacked_scoring_agree(tiny_causal_backbone, sentiment_examples, batch_size):
    rows = _rows(tiny_causal_backbone, 4)
    sequential = _scorer(tiny_causal_backbone, sentiment_examples, "sequential", batch_size)
    stacked = _scorer(tiny_causal_backbone, sentiment_examples, "stacked", batch_size)
    assert not sequential.stacked and stacked.stacked
    one = [c.result for c in sequential.score(_candidates(rows))]
    many = [c.result for c in stacked.score(_candidates(rows))]
    for a, b in zip(one, many, strict=True):
        assert a is not None and b is not None
        assert a.loss == pytest.approx(b.loss, abs=1e-5) and a.accuracy == b.accuracy
    assert one == [evaluate(tiny_causal_backbone, r, sentiment_examples, batch_size) for r in rows]
    assert len({r.loss for r in one if r is not None}) == 4


def test_auto_scores_sequentially_on_a_cpu_and_stacked_on_a_gpu():
    assert not stacked_scoring("auto", torch.device("cpu"))
    assert stacked_scoring("auto", torch.device("cuda", 0))
    assert stacked_scoring("stacked", torch.device("cpu"))
    assert not stacked_scoring("sequential", torch.device("cuda"))


@pytest.mark.parametrize("path", ["sequential", "stacked"])
def test_a_race_scores_its_finalists_on_the_whole_split(
    tiny_causal_backbone, sentiment_examples, path
):
    """8 dev examples, 6 candidates, 2 finalists, from 2 examples: 6 scored on 2 examples
    (3 kept), 3 on 4 (2 kept), then the 2 finalists on all 8."""
    scorer = _scorer(tiny_causal_backbone, sentiment_examples, path)
    rows = _rows(tiny_causal_backbone, 6, seed=3)
    race = scorer.race(_candidates(rows), finalists=2, start=2)
    assert [(s.examples, s.entrants, s.kept) for s in race.stages] == [(2, 6, 3), (4, 3, 2)]
    fresh = _scorer(tiny_causal_backbone, sentiment_examples, path)
    full = {c.text: c.result for c in fresh.score(_candidates(rows))}
    assert [c.text for c in race.scored] == [f"text {i}" for i in range(6)]
    assert len(race.finalists) == 2
    for finalist in race.finalists:
        assert finalist.result == full[finalist.text], "finalists get the exact whole-split score"
    dropped = [c for c in race.scored if c.text not in {f.text for f in race.finalists}]
    assert sorted(c.result.n for c in dropped) == [2, 2, 2, 4]
    # The finalists are the best of the last stage's entrants on its 4 examples.
    last = [c for c in dropped if c.result.n == 4]
    subset = [sentiment_examples[i] for i in scorer._race_order()[:4]]
    assert sorted(ex.label for ex in subset) == [0, 0, 1, 1], "every class in each subset"
    for loser in last:
        worst_finalist = max(
            evaluate(tiny_causal_backbone, c.rows, subset).loss for c in race.finalists
        )
        assert worst_finalist <= evaluate(tiny_causal_backbone, loser.rows, subset).loss + 1e-6
    counters = scorer.state.compute
    assert counters.dev_prompts_scored == 2 and counters.dev_prompts_raced_out == 4
    assert counters.dev_forward_passes == 6 * 2 + 3 * 2 + 2 * 8


def test_a_field_no_larger_than_the_finalists_is_not_raced(
    tiny_causal_backbone, sentiment_examples
):
    scorer = _scorer(tiny_causal_backbone, sentiment_examples)
    rows = _rows(tiny_causal_backbone, 2)
    race = scorer.race(_candidates(rows), finalists=2, start=2)
    assert race.stages == () and race.finalists == race.scored
    assert [c.result.n for c in race.scored] == [8, 8]
