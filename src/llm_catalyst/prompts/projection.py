"""The one place that turns soft prompts into words and words into soft prompts.

Nothing is hidden: each slot's distance and a decode -> encode round trip are reported, and a
text is fitted to P slots only as an explicit policy says; docs/design.md, "Projection and the
round trip".
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch

from llm_catalyst.errors import ConfigError
from llm_catalyst.prompts.fit import METRICS, FitPolicy, Metric

# Upper bound on the (rows, V) similarity block held at once: 16M floats = 64 MB.
_BLOCK_ELEMENTS = 1 << 24


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """The tokenizer and frozen embedding table that projection and text init work against.

    ``table`` is (V, d) in the space soft prompts live in. Rows past the tokenizer's length (padded
    vocabularies) and all-zero rows are excluded on top of ``excluded_ids``: neither can be a word.
    ``context`` maps a text to the part of it that is embedded as prompt slots (None: all of it);
    a backbone offers one as its ``context_text`` method.
    """

    tokenizer: Any
    table: torch.Tensor
    excluded_ids: frozenset[int] = frozenset()
    context: Callable[[str], str] | None = None

    def __post_init__(self) -> None:
        if self.table.ndim != 2:
            raise ConfigError(f"embedding table must be 2-D (V, d), got {tuple(self.table.shape)}")

    @classmethod
    def of(cls, backbone: Any) -> Vocabulary:
        """The vocabulary of a backbone (anything with the Backbone protocol's three properties)."""
        return cls(
            tokenizer=backbone.tokenizer,
            table=backbone.embedding_table.detach(),
            excluded_ids=frozenset(backbone.excluded_token_ids),
            context=getattr(backbone, "context_text", None),
        )

    @property
    def dim(self) -> int:
        return int(self.table.shape[1])

    @cached_property
    def row_norms(self) -> torch.Tensor:
        """L2 norm of every row, float32 (V,); computed once per vocabulary."""
        with torch.no_grad():
            return self.table.detach().float().norm(dim=1)

    @cached_property
    def allowed(self) -> torch.Tensor:
        """Boolean mask (V,) of the ids a projection or random init may pick."""
        size = self.table.shape[0]
        mask = torch.zeros(size, dtype=torch.bool, device=self.table.device)
        mask[: min(size, len(self.tokenizer))] = True
        excluded = [i for i in self.excluded_ids if 0 <= i < size]
        if excluded:
            mask[torch.tensor(excluded, device=mask.device)] = False
        mask &= self.row_norms > 0
        if not bool(mask.any()):
            raise ConfigError("every token of the vocabulary is excluded: nothing to project onto")
        return mask

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens; special-token strings stay plain text."""
        ids = self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)
        ids = list(ids["input_ids"])
        if ids and max(ids) >= self.table.shape[0]:
            raise ConfigError(
                f"the tokenizer gives id {max(ids)} but the embedding table has only "
                f"{self.table.shape[0]} rows: the tokenizer does not belong to this table"
            )
        return ids


@dataclass(frozen=True)
class RoundTripMismatch:
    """Slots ``start:end`` projected to ``projected_ids`` but re-encode as ``roundtrip_ids``."""

    start: int
    end: int
    projected_ids: tuple[int, ...]
    roundtrip_ids: tuple[int, ...]

    def describe(self) -> str:
        if self.end == self.start:
            where = f"after slot {self.start - 1}"
        elif self.end - self.start == 1:
            where = f"slot {self.start}"
        else:
            where = f"slots {self.start}-{self.end - 1}"
        return f"{where}: ids {list(self.projected_ids)} re-encode as {list(self.roundtrip_ids)}"


@dataclass(frozen=True)
class Projection:
    """One soft prompt read as text, with how far each slot is from its token.

    ``distances`` are ``1 - cosine`` for the cosine metric and Euclidean distances for ``l2``.
    ``roundtrip_ids`` are the ids the decoded ``text`` gives when tokenised again; when they
    differ from ``token_ids`` the text does not stand for the same prompt and ``mismatches``
    says where.
    """

    token_ids: tuple[int, ...]
    tokens: tuple[str, ...]
    text: str
    distances: tuple[float, ...]
    roundtrip_ids: tuple[int, ...]
    metric: Metric

    @property
    def roundtrip_ok(self) -> bool:
        return self.token_ids == self.roundtrip_ids

    @property
    def mismatches(self) -> tuple[RoundTripMismatch, ...]:
        matcher = difflib.SequenceMatcher(a=self.token_ids, b=self.roundtrip_ids, autojunk=False)
        return tuple(
            RoundTripMismatch(i1, i2, self.token_ids[i1:i2], self.roundtrip_ids[j1:j2])
            for op, i1, i2, j1, j2 in matcher.get_opcodes()
            if op != "equal"
        )

    def describe(self) -> str:
        """One line for logs: the text, mean distance and the round-trip verdict."""
        mean = sum(self.distances) / len(self.distances)
        verdict = (
            "round trip ok"
            if self.roundtrip_ok
            else "round trip differs: " + "; ".join(m.describe() for m in self.mismatches)
        )
        return f"{self.text!r} (mean {self.metric} distance {mean:.4f}; {verdict})"

    def to_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "token_ids": list(self.token_ids),
            "tokens": list(self.tokens),
            "metric": self.metric,
            "distances": list(self.distances),
            "roundtrip_ids": list(self.roundtrip_ids),
            "roundtrip_ok": self.roundtrip_ok,
            "mismatches": [m.describe() for m in self.mismatches],
        }


def _word_end_marker(tokenizer: Any) -> str | None:
    """The suffix a BPE model appends to a word's last token (CLIP: ``</w>``), if it has one."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return getattr(getattr(backend, "model", None), "end_of_word_suffix", None) or None


def _readable(texts: list[str], marker: str | None) -> list[str]:
    """Decoded texts with word-end markers read as the spaces they stand for."""
    if marker is None:
        return texts
    return [re.sub(r" {2,}", " ", text.replace(marker, " ")).strip() for text in texts]


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ConfigError(f"unknown projection metric {metric!r}; use one of {list(METRICS)}")


def _nearest(
    rows: torch.Tensor, vocab: Vocabulary, metric: Metric
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest allowed token id and its distance for every row of ``rows`` (R, d).

    Works in row blocks so that only a (block, V) similarity matrix exists at any time.
    """
    table = vocab.table.detach().float()
    norms = vocab.row_norms.clamp_min(1e-12)
    blocked = ~vocab.allowed
    block = max(1, _BLOCK_ELEMENTS // table.shape[0])
    ids, dists = [], []
    # The ranking only needs per-token terms; each row's own norm is applied to the winner alone.
    for chunk in rows.detach().to(table.device, torch.float32).split(block):
        scores = chunk @ table.T
        own = chunk.pow(2).sum(dim=1)
        if metric == "cosine":
            best, idx = scores.div_(norms).masked_fill_(blocked, float("-inf")).max(dim=1)
            dist = (1.0 - best / own.sqrt().clamp_min(1e-12)).clamp_min(0.0)
        else:
            scores = scores.mul_(-2.0).add_(norms.pow(2))
            best, idx = scores.masked_fill_(blocked, float("inf")).min(dim=1)
            dist = (best + own).clamp_min(0.0).sqrt()
        ids.append(idx)
        dists.append(dist)
    return torch.cat(ids).cpu(), torch.cat(dists).cpu()


def _stack(prompts: torch.Tensor | Sequence[torch.Tensor], dim: int) -> torch.Tensor:
    stacked = prompts if isinstance(prompts, torch.Tensor) else torch.stack(list(prompts))
    if stacked.ndim != 3 or stacked.shape[-1] != dim:
        raise ConfigError(
            f"prompts to project must be (N, P, {dim}) or a list of (P, {dim}) tensors, "
            f"got shape {tuple(stacked.shape)}"
        )
    return stacked


def project_many(
    prompts: torch.Tensor | Sequence[torch.Tensor], vocab: Vocabulary, metric: Metric = "cosine"
) -> list[Projection]:
    """Project a stack (N, P, d) or a list of (P, d) prompts, e.g. a whole trajectory.

    All slots of all prompts go through one chunked matmul against the table; decoding and the
    round-trip tokenisation are batched tokenizer calls.
    """
    _check_metric(metric)
    if not isinstance(prompts, torch.Tensor) and len(prompts) == 0:
        return []
    stacked = _stack(prompts, vocab.dim)
    n, length, _ = stacked.shape
    with torch.no_grad():
        ids, dists = _nearest(stacked.reshape(n * length, -1), vocab, metric)
    id_rows = ids.view(n, length).tolist()
    dist_rows = dists.view(n, length).tolist()
    texts = _readable(vocab.tokenizer.batch_decode(id_rows), _word_end_marker(vocab.tokenizer))
    encoded = vocab.tokenizer(texts, add_special_tokens=False, split_special_tokens=True)
    return [
        Projection(
            token_ids=tuple(row),
            tokens=tuple(vocab.tokenizer.convert_ids_to_tokens(row)),
            text=text,
            distances=tuple(dist),
            roundtrip_ids=tuple(rt),
            metric=metric,
        )
        for row, dist, text, rt in zip(id_rows, dist_rows, texts, encoded["input_ids"], strict=True)
    ]


def project(prompt: torch.Tensor, vocab: Vocabulary, metric: Metric = "cosine") -> Projection:
    """Project one (P, d) prompt to text."""
    if prompt.ndim != 2:
        raise ConfigError(f"a prompt must be (P, d), got shape {tuple(prompt.shape)}")
    return project_many(prompt.unsqueeze(0), vocab, metric)[0]


@dataclass(frozen=True)
class FittedText:
    """A text turned into P prompt rows, and what the fit policy did to get there.

    ``slot_ids[i]`` is the vocabulary id in slot i, or None where the row was taken from the
    current prompt. ``unprojectable_ids`` lists text ids a projection could never produce
    (e.g. an unknown-token id): they are kept, and reported here.
    """

    embeddings: torch.Tensor
    slot_ids: tuple[int | None, ...]
    n_text_tokens: int
    truncated: int
    padded: int
    policy: str
    unprojectable_ids: tuple[int, ...] = ()

    def describe(self) -> str:
        parts = [f"{self.n_text_tokens} text tokens -> {len(self.slot_ids)} slots"]
        if self.truncated:
            parts.append(f"dropped the last {self.truncated} tokens")
        if self.padded:
            parts.append(f"padded {self.padded} slots")
        if self.unprojectable_ids:
            parts.append(f"kept unprojectable ids {list(self.unprojectable_ids)}")
        return f"{', '.join(parts)} (fit policy {self.policy})"

    def to_dict(self) -> dict[str, object]:
        return {
            "slot_ids": list(self.slot_ids),
            "n_text_tokens": self.n_text_tokens,
            "truncated": self.truncated,
            "padded": self.padded,
            "policy": self.policy,
            "unprojectable_ids": list(self.unprojectable_ids),
        }


def embed_text(
    text: str,
    vocab: Vocabulary,
    length: int,
    policy: FitPolicy,
    current: torch.Tensor | None = None,
) -> FittedText:
    """Embed ``text`` as ``length`` prompt rows under ``policy``; errors say how to fix a misfit.

    ``current`` (P, d) is the prompt being replaced; it is needed only by ``pad_current``.
    The vocabulary's ``context`` function, if any, first picks the words that become slots.
    """
    if length < 1:
        raise ConfigError(f"prompt length must be at least 1, got {length}")
    if vocab.context is not None:
        text = vocab.context(text)
    ids = vocab.encode(text)
    if not ids:
        raise ConfigError(
            f"text {text!r} has no tokens: give a non-empty text to embed as a prompt"
        )
    n = len(ids)
    truncated = 0
    if n > length:
        if not policy.truncate:
            raise ConfigError(
                f"text {text[:60]!r} has {n} tokens but the prompt has {length} slots and fit "
                f"policy {policy.name!r} does not truncate: shorten the text, raise the prompt "
                "length, or add 'truncate' to the fit policy"
            )
        truncated = n - length
        ids = ids[:length]
    missing = length - len(ids)
    pad_ids, tail = _padding(text, n, length, missing, ids, vocab, policy, current)
    word_ids = ids + [i for i in pad_ids if i is not None]
    table = vocab.table.detach()
    index = torch.tensor(word_ids, device=table.device)
    rows = table[index].float()
    if tail is not None:
        rows = torch.cat([rows, tail.detach().to(rows.device, rows.dtype)])
    unprojectable = tuple(sorted(set(index[~vocab.allowed[index]].tolist())))
    return FittedText(
        embeddings=rows.clone(),
        slot_ids=(*ids, *pad_ids),
        n_text_tokens=n,
        truncated=truncated,
        padded=missing,
        policy=policy.name,
        unprojectable_ids=unprojectable,
    )


def _padding(
    text: str,
    n: int,
    length: int,
    missing: int,
    ids: list[int],
    vocab: Vocabulary,
    policy: FitPolicy,
    current: torch.Tensor | None,
) -> tuple[list[int | None], torch.Tensor | None]:
    """Slot ids that pad a short text, and the current prompt's rows when padding with them."""
    if not missing:
        return [], None
    if policy.pad is None:
        raise ConfigError(
            f"text {text[:60]!r} has {n} tokens but the prompt has {length} slots and fit policy "
            f"{policy.name!r} does not pad: lengthen the text, lower the prompt length, or add "
            "one of pad_repeat / pad_filler / pad_current to the fit policy"
        )
    if policy.pad == "current":
        if current is None or tuple(current.shape) != (length, vocab.dim):
            got = None if current is None else tuple(current.shape)
            raise ConfigError(
                f"fit policy pad_current needs the current prompt of shape ({length}, "
                f"{vocab.dim}), got {got}; at initialisation there is no current prompt: "
                "use pad_repeat or pad_filler there"
            )
        return [None] * missing, current[length - missing :]
    source = ids
    if policy.pad == "filler":
        source = vocab.encode(policy.filler or "")
        if not source:
            raise ConfigError(f"filler {policy.filler!r} has no tokens: choose a visible filler")
    return list(itertools.islice(itertools.cycle(source), missing)), None
