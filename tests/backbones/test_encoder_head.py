"""EncoderHeadBackbone: prompt layout, pooling, the head and multiple choice."""

from __future__ import annotations

import pytest
import torch

from llm_catalyst.backbones import BackboneConfig, Batch, EncoderHeadBackbone, build_backbone
from llm_catalyst.errors import BackboneError
from llm_catalyst.weights.presets import load_pretrained_encoder


def _prompt(backbone, slots: int = 3, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    table = backbone.embedding_table
    rows = torch.randint(1000, table.shape[0], (slots,), generator=generator)
    return table[rows] + 0.5 * table.std() * torch.randn(slots, table.shape[1], generator=generator)


def test_empty_prompt_features_equal_the_models_own_mean_pooling(
    tiny_encoder_nli_backbone, nli_examples
):
    """With no prompt, the inputs_embeds route must equal an ordinary call on token ids."""
    backbone = tiny_encoder_nli_backbone
    batch = backbone.collate(nli_examples)
    empty = backbone.embedding_table.new_zeros(0, backbone.embedding_table.shape[1])
    with torch.no_grad():
        ours = backbone.features(empty, batch)
        hidden = backbone.model(**batch.inputs).last_hidden_state
    mask = batch.inputs["attention_mask"].unsqueeze(-1).float()
    torch.testing.assert_close(ours, (hidden * mask).sum(1) / mask.sum(1), rtol=1e-5, atol=1e-6)
    assert batch.inputs["token_type_ids"].any(), "pairs must use both token types"


def test_prompt_goes_before_cls_and_is_not_pooled(tiny_encoder_backbone, sentiment_examples):
    backbone = tiny_encoder_backbone
    batch = backbone.collate(sentiment_examples[:3])
    assert (batch.inputs["input_ids"][:, 0] == backbone.tokenizer.cls_token_id).all()
    prompt = _prompt(backbone)
    ids, mask = batch.inputs["input_ids"], batch.inputs["attention_mask"]
    embeds = torch.cat([prompt.expand(3, -1, -1), backbone.model.get_input_embeddings()(ids)], 1)
    with torch.no_grad():
        hidden = backbone.model(
            inputs_embeds=embeds, attention_mask=torch.cat([torch.ones(3, 3).long(), mask], 1)
        ).last_hidden_state[:, 3:]
        ours = backbone.features(prompt, batch)
        empty = backbone.features(prompt[:0], batch)
    weights = mask.unsqueeze(-1).float()
    torch.testing.assert_close(ours, (hidden * weights).sum(1) / weights.sum(1))
    assert not torch.allclose(ours, empty, atol=1e-4), "the prompt must change the features"


def test_cls_pooling_takes_the_cls_position(sentiment_task, sentiment_examples):
    model, tokenizer = load_pretrained_encoder("tiny-encoder")
    mean = EncoderHeadBackbone(model, tokenizer, sentiment_task)
    cls = EncoderHeadBackbone(model, tokenizer, sentiment_task, pooling="cls")
    batch = cls.collate(sentiment_examples[:2])
    prompt = _prompt(cls)
    with torch.no_grad():
        hidden = torch.stack(
            [cls.features(prompt, cls.collate([ex])) for ex in sentiment_examples[:2]]
        )
        pooled = cls.features(prompt, batch)
    torch.testing.assert_close(pooled, hidden[:, 0], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(pooled, mean.features(prompt, batch).detach())


def test_multiple_choice_scores_each_context_option_pair(tiny_encoder_copa_backbone, copa_examples):
    backbone = tiny_encoder_copa_backbone
    batch = backbone.collate(copa_examples)
    assert batch.inputs["input_ids"].shape[0] == 2 * len(copa_examples)
    prompt = _prompt(backbone)
    with torch.no_grad():
        scores = backbone.class_scores(prompt, batch)
        for i, example in enumerate(copa_examples):
            for option in (0, 1):
                pair = backbone.tokenizer(
                    backbone.task.render(example),
                    example.fields[f"choice{option + 1}"],
                    return_tensors="pt",
                )
                one = backbone.features(prompt, Batch(dict(pair), torch.zeros(1)))
                torch.testing.assert_close(scores[i, option], backbone.head(one)[0, 0])
    assert scores.shape == (len(copa_examples), 2)
    assert [p.shape for p in backbone.head_parameters()] == [(1, 32), (1,)]


def test_head_dropout_only_in_train_mode(sentiment_task, sentiment_examples):
    backbone = build_backbone(
        BackboneConfig(model="tiny-encoder", head_dropout=0.5), sentiment_task
    )
    batch = backbone.collate(sentiment_examples)
    prompt = _prompt(backbone)
    with torch.no_grad():
        first, second = (backbone.class_scores(prompt, batch) for _ in range(2))
        torch.testing.assert_close(first, second)
        backbone.train(True)
        noisy = backbone.class_scores(prompt, batch)
        backbone.train(False)
        again = backbone.class_scores(prompt, batch)
    assert not torch.allclose(noisy, first)
    torch.testing.assert_close(again, first)
    assert not backbone.model.training


def test_too_many_positions_is_a_clear_error(tiny_encoder_backbone, sentiment_examples):
    batch = tiny_encoder_backbone.collate(sentiment_examples[:1])
    limit = tiny_encoder_backbone.model.config.max_position_embeddings
    prompt = torch.zeros(limit, tiny_encoder_backbone.embedding_table.shape[1])
    with pytest.raises(BackboneError, match="lower max_length"):
        tiny_encoder_backbone.class_scores(prompt, batch)
