"""An in-process transformers model as the LLM (SmolLM2-135M-Instruct offline, or any hub model).

A model without a chat template gets the message contents as plain text to continue. Sampling is
seeded inside a forked RNG, so a call is reproducible and the training run's RNG is untouched;
generation never changes the weights, so the same model object can be the frozen backbone too.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from llm_catalyst.llm.client import Completion, InProcessClient, LLMRequest, Usage
from llm_catalyst.weights.presets import load_pretrained_causal_lm

_log = logging.getLogger(__name__)


class LocalHFClient(InProcessClient):
    backend = "local_hf"

    def __init__(self, model: Any, tokenizer: Any, *, name: str):
        self.model = model
        self.tokenizer = tokenizer
        self._name = name
        self._chat = bool(getattr(tokenizer, "chat_template", None))

    @classmethod
    def from_pretrained(cls, name_or_path: str) -> LocalHFClient:
        # Seconds to minutes, silent otherwise; the command line shows INFO lines.
        _log.info("loading LLM %s (transformers)…", name_or_path)
        model, tokenizer = load_pretrained_causal_lm(name_or_path)
        return cls(model, tokenizer, name=name_or_path)

    def complete(self, request: LLMRequest) -> Completion:
        p = request.params
        messages = [dict(m) for m in request.messages]
        if self.has_chat_template:
            prompt = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
            encoded = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        else:
            prompt = self.plain_prompt(request.messages)
            encoded = self.tokenizer(prompt, return_tensors="pt")
        device = next(self.model.parameters()).device
        encoded = {k: v.to(device) for k, v in encoded.items()}
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": p.temperature, "top_p": p.top_p}
            if p.temperature > 0
            else {"do_sample": False}
        )
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.tokenizer.eos_token_id
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                if p.seed is not None:
                    torch.manual_seed(p.seed)
                output = self.model.generate(
                    **encoded,
                    max_new_tokens=p.max_tokens,
                    num_return_sequences=p.n,
                    pad_token_id=pad_id,
                    stop_strings=list(p.stop) or None,
                    tokenizer=self.tokenizer if p.stop else None,
                    **sampling,
                )
        except (RuntimeError, ValueError) as exc:
            raise self.failure(exc) from None
        prompt_len = encoded["input_ids"].shape[1]
        texts, finishes, generated = [], [], 0
        stop_ids = {pad_id, self.tokenizer.eos_token_id}
        for row in output[:, prompt_len:].tolist():
            length = next((i for i, t in enumerate(row) if t in stop_ids), len(row))
            generated += length
            text = self.tokenizer.decode(row[:length], skip_special_tokens=True)
            texts.append(_cut_at_stop(text, p.stop))
            finishes.append("length" if length == p.max_tokens else "stop")
        return Completion(
            texts=tuple(texts),
            usage=Usage(prompt_tokens=prompt_len, completion_tokens=generated),
            model=self._name,
            finish_reasons=tuple(finishes),
        )


def _cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """Generation stops after the token that completes a stop string; drop the string itself."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]
