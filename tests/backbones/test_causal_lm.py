"""CausalLMBackbone: scores equal the model's own logits, layout, packing and logit transforms."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    AutoTokenizer,
    CohereConfig,
    CohereForCausalLM,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    PreTrainedModel,
)

from llm_catalyst.backbones import CausalLMBackbone, load_pretrained_causal_lm
from llm_catalyst.data.tasks import Example, Task
from llm_catalyst.errors import BackboneError
from llm_catalyst.weights.presets import PRESETS


def _prompt(backbone, slots: int = 3, seed: int = 0) -> torch.Tensor:
    """Random vocabulary rows plus noise: a realistic soft prompt in the embedding space."""
    generator = torch.Generator().manual_seed(seed)
    table = backbone.embedding_table
    rows = torch.randint(100, table.shape[0], (slots,), generator=generator)
    return table[rows] + 0.5 * table.std() * torch.randn(slots, table.shape[1], generator=generator)


def _reference_logits(backbone, prompt: torch.Tensor, batch) -> torch.Tensor:
    """The model's full vocabulary logits for [prompt] + tokens, computed the ordinary way."""
    ids, mask = batch.inputs["input_ids"], batch.inputs["attention_mask"]
    embeds = backbone.model.get_input_embeddings()(ids)
    prompts = prompt.expand(ids.shape[0], -1, -1) if prompt.dim() == 2 else prompt
    full_mask = torch.cat([torch.ones(ids.shape[0], prompts.shape[1], dtype=mask.dtype), mask], 1)
    out = backbone.model(inputs_embeds=torch.cat([prompts, embeds], 1), attention_mask=full_mask)
    return out.logits


def _label_reference(backbone, prompt, batch) -> torch.Tensor:
    logits = _reference_logits(backbone, prompt, batch)
    last = prompt.shape[-2] + batch.inputs["attention_mask"].sum(1) - 1
    return logits[torch.arange(len(batch)), last][:, backbone.label_token_ids]


def test_label_scores_equal_full_logits_at_last_real_position(
    tiny_causal_backbone, sentiment_examples
):
    batch = tiny_causal_backbone.collate(sentiment_examples)
    assert batch.inputs["attention_mask"].sum(1).unique().numel() > 1, "batch must be padded"
    prompt = _prompt(tiny_causal_backbone)
    with torch.no_grad():
        ours = tiny_causal_backbone.class_scores(prompt, batch)
        expected = _label_reference(tiny_causal_backbone, prompt, batch)
    assert ours.shape == (len(sentiment_examples), 2)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


def test_label_tokens_are_the_first_tokens_of_the_label_words(tiny_causal_backbone):
    tokenizer = tiny_causal_backbone.tokenizer
    expected = [
        tokenizer(" " + w, add_special_tokens=False)["input_ids"][0]
        for w in ("negative", "positive")
    ]
    assert tiny_causal_backbone.label_token_ids == expected


def test_bos_is_kept_and_a_trailing_eos_dropped(sentiment_task, sentiment_examples):
    """With a tokenizer that adds BOS and EOS, a row is BOS + text: the label word follows the
    text directly, and the prompt goes in front of the BOS."""
    model, tokenizer = load_pretrained_causal_lm("tiny-causal-lm")
    tokenizer.add_bos_token = True
    tokenizer.add_eos_token = True
    backbone = CausalLMBackbone(model, tokenizer, sentiment_task)
    batch = backbone.collate(sentiment_examples[:2])
    for row, example in zip(batch.inputs["input_ids"], sentiment_examples[:2], strict=True):
        text_ids = tokenizer(sentiment_task.render(example), add_special_tokens=False)["input_ids"]
        assert row[: len(text_ids) + 1].tolist() == [tokenizer.bos_token_id, *text_ids]
    prompt = _prompt(backbone)
    with torch.no_grad():
        torch.testing.assert_close(
            backbone.class_scores(prompt, batch), _label_reference(backbone, prompt, batch)
        )


def test_multiple_choice_scores_are_option_log_likelihoods(copa_task, copa_examples):
    model, tokenizer = load_pretrained_causal_lm("tiny-causal-lm")
    prompt = None
    for reduction in ("mean", "sum"):
        backbone = CausalLMBackbone(model, tokenizer, copa_task, mc_reduction=reduction)
        prompt = _prompt(backbone) if prompt is None else prompt
        batch = backbone.collate(copa_examples)
        with torch.no_grad():
            scores = backbone.class_scores(prompt, batch)
            log_probs = torch.log_softmax(_reference_logits(backbone, prompt, batch), -1)
        ids, targets = batch.inputs["input_ids"], batch.inputs["target_mask"]
        expected = torch.zeros(ids.shape[0])
        for row in range(ids.shape[0]):
            positions = targets[row].nonzero().flatten().tolist()
            option_text = copa_examples[row // 2].fields[f"choice{row % 2 + 1}"]
            assert tokenizer.decode(ids[row, positions]).strip() == option_text
            terms = [log_probs[row, prompt.shape[0] + t - 1, ids[row, t]] for t in positions]
            expected[row] = sum(terms) / (len(terms) if reduction == "mean" else 1)
        assert scores.shape == (len(copa_examples), 2)
        torch.testing.assert_close(scores, expected.view(-1, 2), rtol=1e-5, atol=1e-5)


def _tiny_gemma3(tokenizer) -> PreTrainedModel:
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        final_logit_softcapping=0.5,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(config).eval()
    with torch.no_grad():  # large output rows so that the soft cap really bites
        model.get_output_embeddings().weight.mul_(200.0)
    return model


def test_gemma_scaled_embeddings_and_soft_capped_logits(sentiment_task, sentiment_examples):
    tokenizer = AutoTokenizer.from_pretrained(PRESETS["smollm2-135m-instruct"].local())
    backbone = CausalLMBackbone(_tiny_gemma3(tokenizer), tokenizer, sentiment_task)
    ids = torch.tensor([[5, 300, 4000]])
    embedded = backbone.model.get_input_embeddings()(ids)[0]
    torch.testing.assert_close(backbone.embedding_table[ids[0]], embedded)
    assert not torch.allclose(
        backbone.embedding_table, backbone.model.get_input_embeddings().weight
    )
    batch = backbone.collate(sentiment_examples)
    prompt = _prompt(backbone)
    with torch.no_grad():
        ours = backbone.class_scores(prompt, batch)
        expected = _label_reference(backbone, prompt, batch)
    assert ours.abs().max() > 0.4, "the soft cap (0.5) must be active in this test"
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


def test_unsupported_logit_transform_is_detected(sentiment_task):
    tokenizer = AutoTokenizer.from_pretrained(PRESETS["smollm2-135m-instruct"].local())
    config = CohereConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        logit_scale=5.0,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = CohereForCausalLM(config)
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(50.0)
    with pytest.raises(BackboneError, match="differ from the model's own logits"):
        CausalLMBackbone(model, tokenizer, sentiment_task)


def test_label_words_sharing_a_first_token_are_rejected(sentiment_task):
    model, tokenizer = load_pretrained_causal_lm("tiny-causal-lm")
    task = Task(**{**sentiment_task.__dict__, "label_words": ("not good", "not bad")})
    with pytest.raises(BackboneError, match="both start with token") as err:
        CausalLMBackbone(model, tokenizer, task)
    assert "fix:" in str(err.value)


def test_a_label_word_of_several_tokens_is_named_with_the_token_scored(sentiment_task):
    model, tokenizer = load_pretrained_causal_lm("tiny-causal-lm")
    task = Task(**{**sentiment_task.__dict__, "label_words": (" abominable", " good")})
    backbone = CausalLMBackbone(model, tokenizer, task, name="tiny")
    assert backbone.cut_label_words == ((" abominable", " ab"),)
    assert backbone.label_token_ids[0] == tokenizer(" ab", add_special_tokens=False)["input_ids"][0]
    warning = backbone.label_word_warning()
    assert warning is not None and "\n" not in warning
    assert "' abominable' as ' ab'" in warning and "' good'" not in warning


def test_label_words_of_one_token_give_no_warning(tiny_causal_backbone):
    assert tiny_causal_backbone.cut_label_words == ()
    assert tiny_causal_backbone.label_word_warning() is None


def test_excluded_ids_cover_special_added_and_unused_rows(sentiment_task):
    model, tokenizer = load_pretrained_causal_lm("tiny-causal-lm")
    model.resize_token_embeddings(len(tokenizer) + 8)
    backbone = CausalLMBackbone(model, tokenizer, sentiment_task)
    excluded = backbone.excluded_token_ids
    assert set(tokenizer.all_special_ids) <= excluded
    assert set(tokenizer.get_added_vocab().values()) <= excluded
    assert set(range(len(tokenizer), len(tokenizer) + 8)) <= excluded
    assert tokenizer(" movie", add_special_tokens=False)["input_ids"][0] not in excluded
    assert len(excluded) == len(tokenizer.get_added_vocab()) + 8


def test_vocab_fingerprint_is_stable_and_tokenizer_specific(
    tiny_causal_backbone, tiny_encoder_backbone, sentiment_task
):
    _, tokenizer = load_pretrained_causal_lm("tiny-causal-lm")
    model, _ = load_pretrained_causal_lm("tiny-causal-lm")
    again = CausalLMBackbone(model, tokenizer, sentiment_task)
    assert again.vocab_fingerprint == tiny_causal_backbone.vocab_fingerprint
    assert len(again.vocab_fingerprint) == 64
    assert tiny_encoder_backbone.vocab_fingerprint != tiny_causal_backbone.vocab_fingerprint
    tokenizer.add_tokens(["<new-token>"])
    assert CausalLMBackbone(model, tokenizer, sentiment_task).vocab_fingerprint != (
        tiny_causal_backbone.vocab_fingerprint
    )


def test_long_texts_keep_their_end(sentiment_task):
    model, tokenizer = load_pretrained_causal_lm("tiny-causal-lm")
    backbone = CausalLMBackbone(model, tokenizer, sentiment_task, max_length=12)
    example = Example({"sentence": "word " * 50}, 0)
    ids = backbone.collate([example]).inputs["input_ids"][0]
    assert ids.shape[0] == 12
    assert tokenizer.decode(ids).endswith("\nSentiment:")


@pytest.mark.parametrize("task_name", ["sentiment", "copa"])
def test_packed_layout_equals_padded_layout_in_scores_and_gradients(request, task_name):
    """Packing (shared prompt cache, no padding) is an optimisation: it must change nothing."""
    task = request.getfixturevalue(f"{task_name}_task")
    examples = request.getfixturevalue(f"{task_name}_examples")
    model, tokenizer = load_pretrained_causal_lm("tiny-causal-lm")
    packed = CausalLMBackbone(model, tokenizer, task)
    padded = CausalLMBackbone(model, tokenizer, task, packing=False)
    assert packed.packing and not padded.packing
    batch = packed.collate(examples)
    results = []
    for backbone in (packed, padded):
        prompt = _prompt(backbone).requires_grad_(True)
        scores = backbone.class_scores(prompt, batch)
        torch.nn.functional.cross_entropy(scores, batch.labels).backward()
        results.append((scores.detach(), prompt.grad))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-4, atol=1e-6)


def test_a_short_sliding_window_falls_back_to_the_models_own_mask(
    sentiment_task, sentiment_examples
):
    tokenizer = AutoTokenizer.from_pretrained(PRESETS["smollm2-135m-instruct"].local())
    model = _tiny_gemma3(tokenizer)
    model.config.sliding_window = 10
    backbone = CausalLMBackbone(model, tokenizer, sentiment_task)
    assert backbone.packing, "short batches still pack; only longer ones must fall back"
    batch = backbone.collate(sentiment_examples)
    prompt = _prompt(backbone)
    with torch.no_grad():
        ours = backbone.class_scores(prompt, batch)
        expected = _label_reference(backbone, prompt, batch)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
