"""Training through CausalLMBackbone matches PEFT prompt tuning step for step.

Both start from the same prompt, see the same batches and use AdamW with the same settings. PEFT
is used the way its users do: full logits from ``peft_model(input_ids, attention_mask)``, then
cross-entropy at the last real position over the label-word ids.
"""

from __future__ import annotations

import pytest
import torch
from peft import PromptTuningConfig, TaskType, get_peft_model

from llm_catalyst.backbones import CausalLMBackbone, load_pretrained_causal_lm

STEPS = 5
ADAMW = {"lr": 0.3, "betas": (0.9, 0.99), "eps": 1e-8, "weight_decay": 0.01}


def _train_both(task, examples, *, add_bos: bool) -> tuple[list[float], list[float], float, float]:
    model, tokenizer = load_pretrained_causal_lm("tiny-causal-lm")
    peft_base, _ = load_pretrained_causal_lm("tiny-causal-lm")
    tokenizer.add_bos_token = add_bos
    backbone = CausalLMBackbone(model, tokenizer, task)
    generator = torch.Generator().manual_seed(0)
    rows = torch.randint(100, len(tokenizer), (4,), generator=generator)
    initial = backbone.embedding_table[rows].clone()

    prompt = initial.clone().requires_grad_(True)
    ours_opt = torch.optim.AdamW([prompt], **ADAMW)

    config = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=4)
    peft_model = get_peft_model(peft_base, config)
    embedding = peft_model.prompt_encoder["default"].embedding
    with torch.no_grad():
        embedding.weight.copy_(initial)
    peft_opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], **ADAMW)
    label_ids = torch.tensor(backbone.label_token_ids)

    ours_losses, peft_losses = [], []
    for step in range(STEPS):
        picked = [examples[(step * 3 + k) % len(examples)] for k in range(4)]
        batch = backbone.collate(picked)
        loss = torch.nn.functional.cross_entropy(backbone.class_scores(prompt, batch), batch.labels)
        ours_opt.zero_grad()
        loss.backward()
        ours_opt.step()
        ours_losses.append(loss.item())

        mask = batch.inputs["attention_mask"]
        logits = peft_model(input_ids=batch.inputs["input_ids"], attention_mask=mask).logits
        last = config.num_virtual_tokens + mask.sum(1) - 1
        scores = logits[torch.arange(len(batch)), last][:, label_ids]
        peft_loss = torch.nn.functional.cross_entropy(scores, batch.labels)
        peft_opt.zero_grad()
        peft_loss.backward()
        peft_opt.step()
        peft_losses.append(peft_loss.item())
    drift = (prompt.detach() - embedding.weight.detach()).abs().max().item()
    moved = (prompt.detach() - initial).abs().max().item()
    return ours_losses, peft_losses, drift, moved


@pytest.mark.parametrize("add_bos", [False, True], ids=["no-bos", "bos"])
def test_per_step_losses_match_peft_prompt_tuning(sentiment_task, sentiment_examples, add_bos):
    ours, theirs, drift, moved = _train_both(sentiment_task, sentiment_examples, add_bos=add_bos)
    assert max(abs(a - b) for a, b in zip(ours, theirs, strict=True)) < 1e-4
    assert moved > 0.5, "the prompts must travel far for the comparison to mean anything"
    assert drift < 1e-4
