from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llm_catalyst.errors import ConfigError
from llm_catalyst.prompts import (
    FitPolicy,
    RoundTripMismatch,
    Vocabulary,
    embed_text,
    project,
    project_many,
)
from llm_catalyst.prompts import projection as projection_module
from tests.prompts.word_vocab import WORDS, word_id, word_tokenizer


def _geometry_vocab() -> Vocabulary:
    """A 2-d table where the most similar, least similar and nearest tokens all differ.

    For the query (1, 0.1): "good" (10, 0) has the highest cosine, "bad" (-1, 0) the lowest
    (what an ascending sort would pick), and "movie" (0.5, 0.5) is nearest in Euclidean distance.
    """
    table = torch.zeros(len(WORDS), 2)
    table[:] = torch.tensor([0.0, -5.0])  # every other word: far away and dissimilar
    table[word_id("good")] = torch.tensor([10.0, 0.0])
    table[word_id("bad")] = torch.tensor([-1.0, 0.0])
    table[word_id("movie")] = torch.tensor([0.5, 0.5])
    return Vocabulary(word_tokenizer(), table, frozenset({word_id("[PAD]")}))


QUERY = torch.tensor([[1.0, 0.1]])


def test_cosine_takes_the_most_similar_token_not_the_least():
    vocab = _geometry_vocab()
    result = project(QUERY, vocab, metric="cosine")
    assert result.token_ids == (word_id("good"),)
    expected = 1.0 - F.cosine_similarity(QUERY[0], vocab.table[word_id("good")], dim=0).item()
    assert result.distances[0] == pytest.approx(expected, abs=1e-6)


def test_l2_takes_the_nearest_token():
    vocab = _geometry_vocab()
    result = project(QUERY, vocab, metric="l2")
    assert result.token_ids == (word_id("movie"),)
    expected = torch.dist(QUERY[0], vocab.table[word_id("movie")]).item()
    assert result.distances[0] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_matches_brute_force_over_allowed_tokens(word_vocab, metric):
    prompts = torch.randn(3, 5, 8, generator=torch.Generator().manual_seed(1))
    allowed = torch.tensor([w not in ("[PAD]", "[UNK]", "[SEP]") for w in WORDS])
    flat = prompts.reshape(-1, 8)
    if metric == "cosine":
        score = F.cosine_similarity(flat[:, None, :], word_vocab.table[None], dim=-1)
        best, ids = score.masked_fill(~allowed, -2.0).max(dim=1)
        dist = 1.0 - best
    else:
        score = torch.cdist(flat, word_vocab.table)
        dist, ids = score.masked_fill(~allowed, float("inf")).min(dim=1)
    results = project_many(prompts, word_vocab, metric=metric)
    assert [i for r in results for i in r.token_ids] == ids.tolist()
    got = torch.tensor([d for r in results for d in r.distances])
    torch.testing.assert_close(got, dist, atol=1e-5, rtol=1e-5)


def test_special_tokens_are_never_chosen_even_on_their_own_rows(word_vocab):
    special = [word_id(w) for w in ("[PAD]", "[UNK]", "[SEP]")]
    result = project(word_vocab.table[special], word_vocab)
    assert not set(result.token_ids) & set(special)
    assert all(d > 0 for d in result.distances)


def test_rows_past_the_tokenizer_and_zero_rows_are_never_chosen():
    extra = torch.randn(2, 8)
    table = torch.cat([torch.randn(len(WORDS), 8), extra])
    table[word_id("dull")] = 0.0
    vocab = Vocabulary(word_tokenizer(), table)
    for metric in ("cosine", "l2"):
        result = project(torch.cat([extra, torch.full((1, 8), 1e-3)]), vocab, metric=metric)
        assert all(i < len(WORDS) for i in result.token_ids)
        assert word_id("dull") not in result.token_ids


def test_batched_projection_equals_one_by_one_and_chunks_do_not_matter(word_vocab, monkeypatch):
    prompts = torch.randn(4, 6, 8, generator=torch.Generator().manual_seed(2))
    singles = [project(p, word_vocab) for p in prompts]
    monkeypatch.setattr(projection_module, "_BLOCK_ELEMENTS", len(WORDS) * 5)
    assert project_many(list(prompts), word_vocab) == singles
    assert project_many([], word_vocab) == []


def test_exact_rows_project_to_their_words_and_round_trip(word_vocab):
    ids = [word_id(w) for w in ("the", "movie", "great", ".")]
    result = project(word_vocab.table[ids], word_vocab)
    assert result.token_ids == tuple(ids)
    assert result.tokens == ("the", "movie", "great", ".")
    assert result.text == "the movie great ."
    assert result.roundtrip_ok and result.mismatches == ()
    assert max(result.distances) < 1e-5


def test_round_trip_mismatch_is_reported_with_slots_and_ids(word_vocab):
    ids = [word_id("good"), word_id("new york"), word_id("film")]
    result = project(word_vocab.table[ids], word_vocab)
    assert result.text == "good new york film"
    assert not result.roundtrip_ok
    assert result.roundtrip_ids == (
        word_id("good"),
        word_id("new"),
        word_id("york"),
        word_id("film"),
    )
    assert result.mismatches == (
        RoundTripMismatch(1, 2, (word_id("new york"),), (word_id("new"), word_id("york"))),
    )
    assert "slot 1" in result.describe()
    assert result.to_dict()["roundtrip_ok"] is False


def test_unknown_metric_and_bad_shapes_are_refused(word_vocab):
    with pytest.raises(ConfigError, match="metric"):
        project(torch.randn(2, 8), word_vocab, metric="dot")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"\(N, P, 8\)"):
        project_many(torch.randn(2, 3, 5), word_vocab)
    with pytest.raises(ConfigError, match=r"\(P, d\)"):
        project(torch.randn(8), word_vocab)


@pytest.mark.parametrize(
    ("spec", "truncate", "pad"),
    [
        ("exact", False, None),
        ("truncate", True, None),
        ("pad_repeat", False, "repeat"),
        ("truncate + pad_current", True, "current"),
    ],
)
def test_fit_policy_names(spec, truncate, pad):
    policy = FitPolicy.parse(spec)
    assert (policy.truncate, policy.pad) == (truncate, pad)
    assert FitPolicy.parse(policy.name) == policy


@pytest.mark.parametrize("spec", ["", "pad", "exact+truncate", "pad_repeat+pad_filler", "trim"])
def test_invalid_fit_policy_names_are_refused(spec):
    with pytest.raises(ConfigError, match="fit policy"):
        FitPolicy.parse(spec)


def test_filler_must_match_the_policy():
    with pytest.raises(ConfigError, match="needs a filler"):
        FitPolicy.parse("pad_filler")
    with pytest.raises(ConfigError, match="does not pad"):
        FitPolicy.parse("truncate", filler=".")


def _rows(vocab: Vocabulary, words: list[str]) -> torch.Tensor:
    return vocab.table[[word_id(w) for w in words]]


def test_truncate_keeps_the_head_and_reports_the_cut(word_vocab):
    fitted = embed_text("the good movie great plot", word_vocab, 3, FitPolicy.parse("truncate"))
    assert fitted.slot_ids == tuple(word_id(w) for w in ("the", "good", "movie"))
    assert (fitted.n_text_tokens, fitted.truncated, fitted.padded) == (5, 2, 0)
    torch.testing.assert_close(fitted.embeddings, _rows(word_vocab, ["the", "good", "movie"]))
    assert "dropped the last 2" in fitted.describe()


def test_truncate_alone_refuses_a_short_text(word_vocab):
    with pytest.raises(ConfigError, match="does not pad"):
        embed_text("good movie", word_vocab, 4, FitPolicy.parse("truncate"))


def test_exact_refuses_both_directions_and_accepts_a_match(word_vocab):
    exact = FitPolicy.parse("exact")
    with pytest.raises(ConfigError, match="does not truncate"):
        embed_text("good movie .", word_vocab, 2, exact)
    with pytest.raises(ConfigError, match="does not pad"):
        embed_text("good movie .", word_vocab, 4, exact)
    fitted = embed_text("good movie .", word_vocab, 3, exact)
    assert (fitted.truncated, fitted.padded) == (0, 0)


def test_pad_policies_refuse_a_long_text_without_truncate(word_vocab):
    with pytest.raises(ConfigError, match="add 'truncate'"):
        embed_text("good movie .", word_vocab, 2, FitPolicy.parse("pad_repeat"))


def test_pad_repeat_cycles_the_text_and_says_so(word_vocab):
    fitted = embed_text("good movie", word_vocab, 5, FitPolicy.parse("pad_repeat"))
    words = ["good", "movie", "good", "movie", "good"]
    assert fitted.slot_ids == tuple(word_id(w) for w in words)
    assert (fitted.n_text_tokens, fitted.padded, fitted.policy) == (2, 3, "pad_repeat")
    torch.testing.assert_close(fitted.embeddings, _rows(word_vocab, words))


def test_pad_filler_uses_the_filler_tokens(word_vocab):
    policy = FitPolicy.parse("truncate+pad_filler", filler=".")
    fitted = embed_text("good movie", word_vocab, 4, policy)
    assert fitted.slot_ids == tuple(word_id(w) for w in ["good", "movie", ".", "."])
    assert fitted.padded == 2


def test_pad_current_takes_the_tail_of_the_current_prompt(word_vocab):
    current = torch.randn(4, 8)
    fitted = embed_text("good", word_vocab, 4, FitPolicy.parse("pad_current"), current=current)
    assert fitted.slot_ids == (word_id("good"), None, None, None)
    torch.testing.assert_close(fitted.embeddings[1:], current[1:])
    torch.testing.assert_close(fitted.embeddings[0], word_vocab.table[word_id("good")])


def test_pad_current_needs_a_current_prompt_of_the_right_shape(word_vocab):
    policy = FitPolicy.parse("pad_current")
    with pytest.raises(ConfigError, match="no current prompt"):
        embed_text("good", word_vocab, 3, policy)
    with pytest.raises(ConfigError, match=r"got \(2, 8\)"):
        embed_text("good", word_vocab, 3, policy, current=torch.randn(2, 8))


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_text_is_refused(word_vocab, text):
    with pytest.raises(ConfigError, match="no tokens"):
        embed_text(text, word_vocab, 3, FitPolicy.parse("truncate+pad_repeat"))


def test_unknown_words_are_kept_and_reported(word_vocab):
    fitted = embed_text("good zebra", word_vocab, 2, FitPolicy.parse("exact"))
    assert fitted.slot_ids == (word_id("good"), word_id("[UNK]"))
    assert fitted.unprojectable_ids == (word_id("[UNK]"),)
    assert "unprojectable" in fitted.describe()


def test_embedded_text_projects_back_to_the_same_words(word_vocab):
    fitted = embed_text("the plot dull .", word_vocab, 4, FitPolicy.parse("exact"))
    assert project(fitted.embeddings, word_vocab).text == "the plot dull ."


def test_a_tokenizer_that_does_not_fit_the_table_is_refused():
    vocab = Vocabulary(word_tokenizer(), torch.randn(5, 8))
    with pytest.raises(ConfigError, match="does not belong"):
        embed_text("plot", vocab, 1, FitPolicy.parse("exact"))


@pytest.mark.parametrize(
    ("fixture", "pieces", "merged"),
    [
        ("tiny_causal_backbone", ["Ġhe", "llo"], "Ġhello"),  # SmolLM2 byte-level BPE
        ("tiny_encoder_backbone", ["play", "##ing"], "playing"),  # MiniLM WordPiece
    ],
)
def test_real_tokenizers_report_tokens_that_merge(request, fixture, pieces, merged):
    backbone = request.getfixturevalue(fixture)
    vocab = Vocabulary.of(backbone)
    tokenizer = backbone.tokenizer
    ids = tokenizer.convert_tokens_to_ids(["good", *pieces])
    result = project(vocab.table[ids], vocab)
    assert result.token_ids == tuple(ids)
    assert not result.roundtrip_ok
    merged_id = tokenizer.convert_tokens_to_ids(merged)
    assert result.mismatches == (RoundTripMismatch(1, 3, tuple(ids[1:]), (merged_id,)),)
    assert "slots 1-2" in result.describe()


@pytest.mark.slow
def test_real_smollm2_text_survives_embed_and_project(smollm2_backbone):
    vocab = Vocabulary.of(smollm2_backbone)
    text = "Decide whether this movie review is positive or negative."
    fitted = embed_text(text, vocab, 16, FitPolicy.parse("truncate+pad_filler", filler=" ."))
    result = project(fitted.embeddings, vocab)
    assert result.token_ids == fitted.slot_ids
    assert result.text.startswith(text)
    assert max(result.distances) < 1e-4
    assert result.roundtrip_ok, result.describe()
