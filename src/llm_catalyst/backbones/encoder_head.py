"""A frozen encoder (BERT, MiniLM, MPNet, RoBERTa, ...) with a soft prompt and a linear head.

Layout, pooling and the head: docs/design.md, "The encoder with a linear head".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from llm_catalyst.backbones.base import Batch
from llm_catalyst.backbones.options import Pooling
from llm_catalyst.backbones.transformer import FrozenTransformer, TransformerOptions
from llm_catalyst.data.tasks import Example, Task
from llm_catalyst.errors import BackboneError


class EncoderHeadBackbone(FrozenTransformer):
    """The Backbone protocol for encoders with a trainable linear head."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        task: Task,
        *,
        pooling: Pooling = "mean",
        dropout: float = 0.1,
        head_seed: int = 0,
        **common: Unpack[TransformerOptions],
    ) -> None:
        super().__init__(model, tokenizer, task, **common)
        self.pooling = pooling
        outputs = 1 if task.kind == "multiple_choice" else task.num_classes
        generator = torch.Generator().manual_seed(head_seed)
        linear = torch.nn.Linear(model.config.hidden_size, outputs)
        bound = 1.0 / model.config.hidden_size**0.5
        with torch.no_grad():
            linear.weight.uniform_(-bound, bound, generator=generator)
            linear.bias.uniform_(-bound, bound, generator=generator)
        self.head = torch.nn.Sequential(torch.nn.Dropout(dropout), linear)
        self.head.to(device=self.device, dtype=self._embed.weight.dtype).eval()
        self._max_positions: int | None = getattr(model.config, "max_position_embeddings", None)

    # -- tokenisation -------------------------------------------------------------------------

    def collate(self, examples: Sequence[Example]) -> Batch:
        """Tokenise (text_a, text_b) pairs with dynamic padding; options flattened for MC."""
        labels = torch.tensor([ex.label for ex in examples], dtype=torch.long)
        meta: dict[str, object] = {}
        if self.task.kind == "classification":
            columns = [[ex.fields[f] for ex in examples] for f in self.task.text_fields]
        else:
            options = self.task.option_fields
            columns = [
                [self.task.render(ex) for ex in examples for _ in options],
                [ex.fields[f] for ex in examples for f in options],
            ]
            meta["num_options"] = len(options)
        encoded = self._tokenizer(
            *columns,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return Batch(dict(encoded), labels, meta)

    # -- scoring ------------------------------------------------------------------------------

    def features(self, prompt: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Pooled encoder features (N, d) of ``[prompt] + tokens`` (N = B * options for MC)."""
        inputs = batch.inputs
        mask = inputs["attention_mask"]
        n = mask.shape[0]
        if prompt.dim() == 3 and "num_options" in batch.meta:
            prompt = prompt.repeat_interleave(int(batch.meta["num_options"]), dim=0)  # type: ignore[call-overload]
        tokens = self._embed(inputs["input_ids"])
        prompt = prompt.to(tokens.dtype)
        if prompt.dim() == 2:
            prompt = prompt.unsqueeze(0).expand(n, -1, -1)
        elif prompt.dim() != 3 or prompt.shape[0] != n:
            raise BackboneError(
                f"prompt of shape {tuple(prompt.shape)} does not fit a batch of {n} sequences\n"
                "  fix: pass one prompt (P, d) or one per example (B, P, d)"
            )
        slots = prompt.shape[1]
        total = slots + mask.shape[1]
        if self._max_positions is not None and total > self._max_positions:
            raise BackboneError(
                f"{slots} prompt slots + {mask.shape[1]} tokens exceed the {self._max_positions} "
                f"positions of {self.name!r}\n  fix: lower max_length (now {self.max_length}) or "
                "the prompt length"
            )
        kwargs: dict[str, torch.Tensor] = {
            "inputs_embeds": torch.cat([prompt, tokens], dim=1),
            "attention_mask": torch.cat([mask.new_ones(n, slots), mask], dim=1),
        }
        if "token_type_ids" in inputs:
            types = inputs["token_type_ids"]
            kwargs["token_type_ids"] = torch.cat([types.new_zeros(n, slots), types], dim=1)
        hidden = self.model(**kwargs).last_hidden_state[:, slots:]
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)

    def class_scores(self, prompt: torch.Tensor, batch: Batch) -> torch.Tensor:
        """(B, num_classes) head outputs; for multiple choice, one score per option."""
        scores = self.head(self.features(prompt, batch))
        if self.task.kind == "multiple_choice":
            return scores.view(len(batch), -1)
        return scores

    # -- the trainable head -------------------------------------------------------------------

    def head_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.head.parameters())

    def head_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.head.state_dict().items()}

    def load_head_state(self, state: dict[str, torch.Tensor]) -> None:
        try:
            self.head.load_state_dict(state)
        except RuntimeError as err:
            raise BackboneError(
                f"the saved head does not fit this backbone ({self.name!r}, task "
                f"{self.task.name!r}): {err}\n  fix: load it with the backbone and task it was "
                "trained with"
            ) from err

    def train(self, mode: bool = True) -> None:
        """Dropout of the head on (training) or off, beside the checkpointed layers."""
        self.head.train(mode)
        super().train(mode)
