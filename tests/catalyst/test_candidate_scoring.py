"""evaluate_many: K candidate prompts scored in shared forward passes give evaluate's numbers."""

from __future__ import annotations

import pytest
import torch

from llm_catalyst.training.scoring import evaluate, evaluate_many


def _prompts(backbone, k: int, slots: int = 3) -> torch.Tensor:
    """Vocabulary rows plus noise, different per candidate (so their scores differ)."""
    generator = torch.Generator().manual_seed(7)
    table = backbone.embedding_table
    rows = torch.randint(100, table.shape[0], (k, slots), generator=generator)
    noise = torch.randn(k, slots, table.shape[1], generator=generator)
    return table[rows] + 0.5 * table.std() * noise


@pytest.mark.parametrize(
    ("backbone_name", "examples_name"),
    [
        ("tiny_causal_backbone", "sentiment_examples"),
        ("tiny_causal_copa_backbone", "copa_examples"),
        ("tiny_encoder_nli_backbone", "nli_examples"),
        ("tiny_encoder_copa_backbone", "copa_examples"),
    ],
)
@pytest.mark.parametrize("batch_size", [64, 5, 2])
def test_batched_scores_equal_one_by_one(request, backbone_name, examples_name, batch_size):
    """Whole split in one pass (64), examples split across passes (5: two examples x two
    candidates per pass), and candidates split too (2 rows: one example, two candidates)."""
    backbone = request.getfixturevalue(backbone_name)
    examples = request.getfixturevalue(examples_name)
    prompts = _prompts(backbone, k=4)
    batched = evaluate_many(backbone, prompts, examples, batch_size=batch_size)
    one_by_one = [evaluate(backbone, p, examples) for p in prompts]
    assert [r.n for r in batched] == [len(examples)] * 4
    for ours, reference in zip(batched, one_by_one, strict=True):
        assert ours.loss == pytest.approx(reference.loss, abs=1e-5)
        assert ours.accuracy == reference.accuracy
    assert len({r.loss for r in batched}) == 4, "candidates must get their own scores"


def test_a_list_of_prompts_is_accepted(tiny_causal_backbone, sentiment_examples):
    prompts = _prompts(tiny_causal_backbone, k=2)
    as_list = evaluate_many(tiny_causal_backbone, list(prompts), sentiment_examples)
    as_stack = evaluate_many(tiny_causal_backbone, prompts, sentiment_examples)
    assert as_list == as_stack


def test_bad_inputs_are_refused(tiny_causal_backbone, sentiment_examples):
    prompt = _prompts(tiny_causal_backbone, k=1)[0]
    with pytest.raises(ValueError, match=r"\(K, P, d\)"):
        evaluate_many(tiny_causal_backbone, prompt, sentiment_examples)
    with pytest.raises(ValueError, match="empty split"):
        evaluate_many(tiny_causal_backbone, prompt.unsqueeze(0), [])
    no_candidates = prompt.unsqueeze(0)[:0]
    assert evaluate_many(tiny_causal_backbone, no_candidates, sentiment_examples) == []
