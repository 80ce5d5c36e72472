"""A frozen decoder-only LM scored through label words, with a soft prompt at the very front.

Scores are those of the model's own logits, computed without building anything vocabulary-sized;
the layout, packing and checks: docs/design.md, "Exact and fast scoring in the causal LM".
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Unpack

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from llm_catalyst.backbones.base import Batch, NoHeadMixin
from llm_catalyst.backbones.options import McReduction
from llm_catalyst.backbones.transformer import FrozenTransformer, TransformerOptions
from llm_catalyst.data.tasks import Example, Task
from llm_catalyst.errors import BackboneError


class CausalLMBackbone(FrozenTransformer, NoHeadMixin):
    """The Backbone protocol for causal LMs (Llama, SmolLM2, Gemma 3, ...)."""

    _head_refusal = (
        "cannot load into a causal-LM backbone, which has no head\n  fix: load the artifact "
        "with the encoder backbone it was trained with"
    )

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        task: Task,
        *,
        mc_reduction: McReduction = "mean",
        packing: bool = True,
        **common: Unpack[TransformerOptions],
    ) -> None:
        super().__init__(model, tokenizer, task, **common)
        self.mc_reduction = mc_reduction
        self._decoder = model.get_decoder()
        self._cache_argument = _cache_argument(self._decoder)
        self._unembed = model.get_output_embeddings()
        if self._unembed is None:
            raise BackboneError(
                f"{self.name!r} has no output embedding (LM head): it cannot score label words\n"
                "  fix: load it with AutoModelForCausalLM, or use kind: encoder"
            )
        text_config = model.config.get_text_config()
        self._softcap: float | None = getattr(text_config, "final_logit_softcapping", None)
        self._pad_id = _pad_id(tokenizer)
        self._space = "" if task.template[-1:].isspace() else " "
        self._table: torch.Tensor | None = None
        self._label_ids = torch.tensor([], dtype=torch.long)
        self.cut_label_words: tuple[tuple[str, str], ...] = ()
        if task.kind == "classification":
            self._label_ids = torch.tensor(self._label_first_tokens(), dtype=torch.long)
        self.packing = False
        self._check_head_matches_model()
        self.packing = packing and self._packing_matches_padded()

    # -- protocol properties ------------------------------------------------------------------

    @property
    def embedding_table(self) -> torch.Tensor:
        """What the input-embedding module outputs per token id (Gemma's sqrt(d) scale included)."""
        weight = self._embed.weight
        scale = getattr(self._embed, "embed_scale", None)
        if scale is None:
            return weight.detach()
        if self._table is None or self._table.device != weight.device:
            self._table = (weight * scale.to(weight.dtype)).detach()
        return self._table

    @property
    def label_token_ids(self) -> list[int]:
        """The vocabulary id scored for each class (the label word's first token)."""
        return self._label_ids.tolist()

    # -- tokenisation -------------------------------------------------------------------------

    def _label_first_tokens(self) -> list[int]:
        """The first token of each label word; words of several tokens go to ``cut_label_words``
        as (word, the text of the token scored for it)."""
        first: list[int] = []
        cut: list[tuple[str, str]] = []
        for word in self.task.label_words:
            ids = self._continuation_ids(word)
            if not ids:
                raise BackboneError(
                    f"task {self.task.name!r}: label word {word!r} is empty after tokenisation\n"
                    "  fix: give every label a non-empty label word"
                )
            first.append(ids[0])
            if len(ids) > 1:
                cut.append((word, self._tokenizer.decode(ids[:1])))
        self.cut_label_words = tuple(cut)
        for i, a in enumerate(first):
            for j in range(i):
                if first[j] == a:
                    token = self._tokenizer.convert_ids_to_tokens(a)
                    raise BackboneError(
                        f"task {self.task.name!r}: label words {self.task.label_words[j]!r} and "
                        f"{self.task.label_words[i]!r} both start with token {token!r} (id {a}) "
                        f"in the tokenizer of {self.name!r}, so the classes cannot be told apart\n"
                        "  fix: choose label words whose first tokens differ"
                    )
        return first

    def label_word_warning(self) -> str | None:
        """One line for the user when some label words are scored by their first token alone.

        Such a class is scored by a prefix that other words share (" ab" for " abominable"),
        which the user did not choose; the run goes on, but should say so.
        """
        if not self.cut_label_words:
            return None
        scored = "; ".join(f"{word!r} as {token!r}" for word, token in self.cut_label_words)
        return (
            f"warning: {self.name!r} splits label words of task {self.task.name!r} into several "
            f"tokens and only the first is scored: {scored}; for whole words, choose label "
            "words of one token each"
        )

    def _continuation_ids(self, text: str) -> list[int]:
        prefix = "" if text[:1].isspace() else self._space
        return self._tokenizer(prefix + text, add_special_tokens=False)["input_ids"]

    def _context_ids(self, text: str, room: int) -> list[int]:
        """Token ids of ``text`` with the tokenizer's prefix specials (BOS), no trailing EOS.

        Over ``room`` tokens, the start of the text is dropped and the special prefix kept.
        """
        plain = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        full = self._tokenizer(text, add_special_tokens=True)["input_ids"]
        prefix = next(
            (k for k in range(len(full) - len(plain) + 1) if full[k : k + len(plain)] == plain),
            0,
        )
        prefix_ids = full[:prefix]
        keep = max(room - len(prefix_ids), 1)
        return prefix_ids + plain[-keep:]

    def collate(self, examples: Sequence[Example]) -> Batch:
        """Right-pad to the batch's longest sequence (options flattened for multiple choice)."""
        labels = torch.tensor([ex.label for ex in examples], dtype=torch.long)
        if self.task.kind == "classification":
            rows = [self._context_ids(self.task.render(ex), self.max_length) for ex in examples]
            input_ids, mask = _pad(rows, self._pad_id)
            return Batch({"input_ids": input_ids, "attention_mask": mask}, labels)
        rows, targets = [], []
        for ex in examples:
            for option_field in self.task.option_fields:
                option = self._continuation_ids(ex.fields[option_field])
                context = self._context_ids(self.task.render(ex), self.max_length - len(option))
                rows.append(context + option)
                targets.append([0] * len(context) + [1] * len(option))
        input_ids, mask = _pad(rows, self._pad_id)
        target_mask, _ = _pad(targets, 0)
        inputs = {"input_ids": input_ids, "attention_mask": mask, "target_mask": target_mask}
        return Batch(inputs, labels, {"num_options": len(self.task.option_fields)})

    # -- scoring ------------------------------------------------------------------------------

    def class_scores(self, prompt: torch.Tensor, batch: Batch) -> torch.Tensor:
        """(B, num_classes) label-word logits, or option scores for multiple choice."""
        if self.task.kind == "classification":
            return self._label_scores(prompt, batch)
        return self._option_scores(prompt, batch)

    def _encode(
        self, prompt: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> _Encoded:
        """Final (normalised) hidden states of ``[prompt] + tokens`` for every sequence."""
        n = input_ids.shape[0]
        if not (prompt.dim() == 2 or (prompt.dim() == 3 and prompt.shape[0] == n)):
            raise BackboneError(
                f"prompt of shape {tuple(prompt.shape)} does not fit a batch of {n} sequences\n"
                "  fix: pass one prompt (P, d) or one per example (B, P, d)"
            )
        prompt = prompt.to(self._embed.weight.dtype)
        recomputing = self._training and bool(self._checkpointed)
        if (
            prompt.dim() == 2
            and self.packing
            and not recomputing
            and self._fits_window(prompt, input_ids)
        ):
            return self._encode_packed(prompt, input_ids, attention_mask)
        return self._encode_padded(prompt, input_ids, attention_mask)

    def _encode_padded(
        self, prompt: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> _Encoded:
        """One row per sequence: ``[prompt] [tokens] [padding]`` (PEFT's layout, run as is)."""
        n, slots = input_ids.shape[0], prompt.shape[-2]
        if prompt.dim() == 2:
            prompt = prompt.unsqueeze(0).expand(n, -1, -1)
        embeds = torch.cat([prompt, self._embed(input_ids)], dim=1)
        mask = torch.cat([attention_mask.new_ones(n, slots), attention_mask], dim=1)
        hidden = self._decoder(
            inputs_embeds=embeds, attention_mask=mask, use_cache=False
        ).last_hidden_state
        rows = torch.arange(n, device=hidden.device)
        return _Encoded(hidden, rows, torch.full_like(rows, slots))

    def _encode_packed(
        self, prompt: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> _Encoded:
        """The same hidden states, computed without repeating the prompt or padding.

        With one prompt for the whole batch, the prompt's keys and values are the same in every
        sequence (it comes first and attends only to itself): they are computed once and shared
        as a cache. The sequences' real tokens are packed into as few rows as fit the longest
        one; a mask keeps every sequence blind to the others and position ids restart for each.
        """
        slots, device = prompt.shape[0], input_ids.device
        lengths = attention_mask.sum(dim=1).tolist()
        rows = _first_fit(lengths, capacity=input_ids.shape[1])
        width = max(sum(lengths[i] for i in members) for members in rows)
        row_of = torch.empty(len(lengths), dtype=torch.long)
        start_of = torch.empty(len(lengths), dtype=torch.long)
        for r, members in enumerate(rows):
            offset = 0
            for i in members:
                row_of[i], start_of[i] = r, offset
                offset += lengths[i]
        row_of, start_of = row_of.to(device), start_of.to(device)
        seq_idx, pos = attention_mask.nonzero(as_tuple=True)
        dest = row_of[seq_idx] * width + start_of[seq_idx] + pos
        shape = (len(rows), width)
        ids = (
            input_ids.new_full(shape, self._pad_id)
            .view(-1)
            .index_put((dest,), input_ids[seq_idx, pos])
        )
        positions = input_ids.new_full(shape, slots).view(-1).index_put((dest,), slots + pos)
        owner = input_ids.new_full(shape, -1).view(-1).index_put((dest,), seq_idx)
        ids, positions, owner = ids.view(shape), positions.view(shape), owner.view(shape)

        real = owner >= 0
        visible = (owner[:, :, None] == owner[:, None, :]) & (
            positions[:, None, :] <= positions[:, :, None]
        )
        # A padding slot sees only itself, so no attention row is empty (an empty row gives NaN).
        diagonal = torch.eye(width, dtype=torch.bool, device=device)
        visible = (visible & real[:, :, None]) | (diagonal & ~real[:, :, None])
        cache = None
        if slots:
            visible = torch.cat([real[:, :, None].expand(-1, -1, slots), visible], dim=2)
            prefix = self._decoder(inputs_embeds=prompt.unsqueeze(0), use_cache=True)
            cache = getattr(prefix, self._cache_argument)
            cache.batch_repeat_interleave(len(rows))
        hidden = self._decoder(
            inputs_embeds=self._embed(ids),
            attention_mask=visible.unsqueeze(1),
            position_ids=positions,
            use_cache=False,
            **{self._cache_argument: cache},
        ).last_hidden_state
        return _Encoded(hidden, row_of, start_of)

    def _fits_window(self, prompt: torch.Tensor, input_ids: torch.Tensor) -> bool:
        """Packing replaces the model's own mask, so it must not cut a sliding window short."""
        window = getattr(self.model.config.get_text_config(), "sliding_window", None)
        return window is None or prompt.shape[0] + input_ids.shape[1] <= window

    def _logits(self, hidden: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        """The model's output logits for the given vocabulary rows (all rows when None)."""
        weight = self._unembed.weight
        bias = self._unembed.bias
        if rows is not None:
            weight = weight.index_select(0, rows)
            bias = None if bias is None else bias.index_select(0, rows)
        logits = torch.nn.functional.linear(hidden, weight, bias)
        if self._softcap is not None:
            logits = torch.tanh(logits / self._softcap) * self._softcap
        return logits

    def _label_scores(self, prompt: torch.Tensor, batch: Batch) -> torch.Tensor:
        input_ids, mask = batch.inputs["input_ids"], batch.inputs["attention_mask"]
        encoded = self._encode(prompt, input_ids, mask)
        final = encoded.at(torch.arange(input_ids.shape[0], device=mask.device), mask.sum(1) - 1)
        return self._logits(final, self._label_ids.to(final.device))

    def _option_scores(self, prompt: torch.Tensor, batch: Batch) -> torch.Tensor:
        input_ids, mask = batch.inputs["input_ids"], batch.inputs["attention_mask"]
        target_mask = batch.inputs["target_mask"].bool()
        num_options = int(batch.meta["num_options"])  # type: ignore[call-overload]
        if prompt.dim() == 3:
            prompt = prompt.repeat_interleave(num_options, dim=0)
        encoded = self._encode(prompt, input_ids, mask)
        row, col = target_mask.nonzero(as_tuple=True)
        # The token at text position t is predicted by the hidden state one position earlier.
        predictors = encoded.at(row, col - 1)
        log_probs = torch.log_softmax(self._logits(predictors, None).float(), dim=-1)
        token_scores = log_probs.gather(1, input_ids[row, col].unsqueeze(1)).squeeze(1)
        totals = token_scores.new_zeros(input_ids.shape[0]).index_add(0, row, token_scores)
        if self.mc_reduction == "mean":
            totals = totals / target_mask.sum(dim=1).clamp(min=1)
        return totals.view(-1, num_options).to(predictors.dtype)

    def _probe(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A short right-padded batch of ordinary tokens for the construction-time checks."""
        ids = self._tokenizer("The film was long, but good.", add_special_tokens=False)["input_ids"]
        ids = (ids * 8)[:8]  # however coarse the tokenizer, eight ids
        ids = torch.tensor([ids[:6], ids[:3] + [self._pad_id] * 3, ids[2:8]], device=self.device)
        mask = torch.ones_like(ids)
        mask[1, 3:] = 0
        return ids, mask

    def _check_head_matches_model(self) -> None:
        """Compare this class's logits with the model's own full logits once, on a short input.

        Architectures may transform logits in ways this class does not know about (a scale, a
        cap); a mismatch here means scores would silently differ from the model's own.
        """
        ids, mask = self._probe()
        ids, mask = ids[:1], mask[:1]
        empty = self._embed.weight.new_zeros(0, self._embed.weight.shape[1])
        with torch.no_grad():
            full = self.model(input_ids=ids, attention_mask=mask).logits[0, -1]
            index = torch.tensor([0], device=self.device)
            final = self._encode(empty, ids, mask).at(index, index + 5)
            ours = self._logits(final, None)[0]
        if not torch.allclose(full.float(), ours.float(), rtol=1e-3, atol=1e-3):
            raise BackboneError(
                f"{self.name!r} ({type(self.model).__name__}): label-word scores differ from the "
                f"model's own logits (max diff {(full - ours).abs().max().item():.3g}); this "
                "architecture transforms its logits in a way CausalLMBackbone does not support\n"
                "  fix: use a supported architecture (Llama, Mistral, Qwen, Gemma, ...)"
            )

    def _packing_matches_padded(self) -> bool:
        """Whether this architecture honours the packed layout (custom mask, position ids, cache).

        Checked once on a probe batch; architectures or attention kernels that ignore a custom
        mask fall back to the padded layout instead of giving wrong scores.
        """
        if self.model.config._attn_implementation not in ("sdpa", "eager"):
            return False
        ids, mask = self._probe()
        generator = torch.Generator().manual_seed(0)
        rows = torch.randint(0, len(self._tokenizer), (2,), generator=generator)
        prompt = self.embedding_table[rows.to(self.device)]
        last = mask.sum(1) - 1
        sequences = torch.arange(ids.shape[0], device=self.device)
        with torch.no_grad():
            packed = self._encode_packed(prompt, ids, mask).at(sequences, last)
            padded = self._encode_padded(prompt, ids, mask).at(sequences, last)
        return bool(torch.allclose(packed.float(), padded.float(), rtol=1e-3, atol=1e-3))


@dataclass(frozen=True)
class _Encoded:
    """Hidden states (rows, width, d) and where each sequence's text starts in them."""

    hidden: torch.Tensor
    row: torch.Tensor
    start: torch.Tensor

    def at(self, sequence: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """Hidden states of text positions ``position`` of sequences ``sequence``."""
        return self.hidden[self.row[sequence], self.start[sequence] + position]


def _first_fit(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Bin-pack sequence indices into rows of ``capacity`` tokens, longest first."""
    rows: list[list[int]] = []
    free: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for r, space in enumerate(free):
            if lengths[i] <= space:
                rows[r].append(i)
                free[r] -= lengths[i]
                break
        else:
            rows.append([i])
            free.append(capacity - lengths[i])
    return rows


def _cache_argument(decoder: torch.nn.Module) -> str:
    """The name under which this transformers version passes and returns a key/value cache.

    transformers 5 renamed ``past_key_values`` to ``cache`` (the old name still works there but
    warns on every run); 4.x knows only the old one. The output field carries the same name.
    """
    parameters = inspect.signature(decoder.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def _pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """Any valid id works for padding: padded positions are masked out and never scored."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def _pad(rows: Sequence[Sequence[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad rows to the longest; returns (ids, mask)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), value, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask
