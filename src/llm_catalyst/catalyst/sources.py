"""Where restart candidates come from: the one contract every method's proposal source meets,
and the sources themselves (the LLM, random tokens, the projected trajectory).

The controls differ from the catalyst only in their source, so comparing them isolates what the
LLM contributes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from itertools import zip_longest
from typing import Any, Protocol

import numpy as np

from llm_catalyst.backbones.base import Backbone
from llm_catalyst.backbones.causal_lm import CausalLMBackbone
from llm_catalyst.catalyst.domain import Candidate, Round
from llm_catalyst.catalyst.state import LoopState
from llm_catalyst.data.tasks import Example, Task, is_image_task
from llm_catalyst.distributed import Distributed
from llm_catalyst.errors import ConfigError
from llm_catalyst.llm.proposer import LabelledText, MetaInput, Proposer, ScoredPrompt
from llm_catalyst.prompts.config import PromptConfig
from llm_catalyst.prompts.projection import Vocabulary, embed_text
from llm_catalyst.prompts.soft_prompt import random_prompt
from llm_catalyst.training.scoring import predict


@dataclass(frozen=True)
class RoundInput:
    """What a source sees: the round, the scored current S and pool, and every text tried in
    earlier rounds."""

    round: Round
    current: Candidate
    pool: tuple[Candidate, ...]
    tried: tuple[str, ...]


@dataclass(frozen=True)
class Proposals:
    """Restart candidates of one round; none means the round is skipped for ``skip_reason``.

    ``details`` is recorded with the round (LLM status, rejected texts and why, calls)."""

    candidates: tuple[Candidate, ...] = ()
    skip_reason: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


class ProposalSource(Protocol):
    def propose(self, request: RoundInput) -> Proposals: ...


@dataclass
class MainProcessSource:
    """A source asked on the main process only; every process gets its proposals.

    Only the main process calls the LLM (and holds its budget and cache); the others hold
    ``source=None`` and receive what the main process got, so all score and choose alike.
    """

    source: ProposalSource | None
    dist: Distributed

    def propose(self, request: RoundInput) -> Proposals:
        return self.dist.on_main(partial(self._ask, request))

    def _ask(self, request: RoundInput) -> Proposals:
        assert self.source is not None, "the main process holds the proposal source"
        return self.source.propose(request)


@dataclass
class LLMSource:
    """The instructor: the LLM reads the task and what its ingredients show (the scored pool,
    and as configured the usage, train exemplars, its own scored history, the current prompt's
    train errors) and writes C new prompts, each fitted to the prompt's P slots by the fit
    policy ``prompt.fit`` (``pad_current`` pads with S). Proposals the fit cuts short are
    recorded as such (``truncated``), and so are those the proposer cut to the fitted word cap
    (``cut``, with the text the LLM wrote); two that fit to the same slots are one candidate.

    Exemplars are drawn once per run (seeded by ``seed``), so every round shows the same ones;
    errors are searched each round among a fresh seeded draw of train examples, scored in
    batches of ``batch_size``. Neither ever comes from dev or test: this source sees only
    ``train``.
    """

    proposer: Proposer
    backbone: Backbone
    vocab: Vocabulary
    prompt: PromptConfig
    train: tuple[Example, ...]
    seed: int
    batch_size: int
    state: LoopState
    _fixed: MetaInput | None = field(default=None, init=False, repr=False)

    def meta_input(self, request: RoundInput) -> MetaInput:
        """The round's ingredients besides the pool (the switched-off ones cost nothing)."""
        return replace(
            self._round_independent(),
            errors=self._errors(request),
            own_history=tuple(
                _scored_prompts(c for c in self.state.proposal_history if c.origin == "llm")
            ),
        )

    @property
    def task(self) -> Task:
        return self.backbone.task

    def propose(self, request: RoundInput) -> Proposals:
        pool = _scored_prompts(request.pool)
        extra = self.meta_input(request)
        with self.state.clock.phase("llm_s"):
            answer = self.proposer.propose(
                self.task, pool, request.round.index, tried=request.tried, extra=extra
            )
        candidates: list[Candidate] = []
        unfit: list[dict[str, str]] = []
        truncated: list[dict[str, Any]] = []
        slots: dict[tuple[int | None, ...], str] = {}
        length, fit = self.prompt.length, self.prompt.fit_policy()
        for text in answer.proposals:
            try:
                fitted = embed_text(text, self.vocab, length, fit, current=request.current.rows)
            except ConfigError as error:
                unfit.append({"text": text, "reason": str(error)})
                continue
            if fitted.truncated:
                kept = self.vocab.tokenizer.decode([i for i in fitted.slot_ids if i is not None])
                truncated.append({"text": text, "kept": kept, "dropped_tokens": fitted.truncated})
            if fitted.slot_ids in slots:
                same = slots[fitted.slot_ids]
                reason = f"fits the {length} prompt slots exactly as {same!r} does"
                unfit.append({"text": text, "reason": reason})
                continue
            slots[fitted.slot_ids] = text
            candidates.append(Candidate(text, fitted.embeddings, "llm"))
        details = {
            "status": answer.status,
            "llm_reason": answer.reason,
            "calls": answer.calls,
            "cache_hits": answer.cache_hits,
            "rejected": [asdict(r) for r in answer.rejected] + unfit,
            "truncated": truncated,
        }
        if answer.cut:
            # Proposals cut to the fitted word cap: the LLM's text and the kept one. Only when
            # there are any, so a round without a cut records what it recorded before.
            details["cut"] = [asdict(c) for c in answer.cut]
        skip_reason = ""
        if not candidates:
            skip_reason = answer.reason or f"none of {len(answer.proposals)} proposal(s) fits"
        return Proposals(tuple(candidates), skip_reason, details)

    def _round_independent(self) -> MetaInput:
        """Usage, exemplars and the word cap: the same every round, so computed once."""
        if self._fixed is None:
            settings = self.proposer.config.proposer
            on = set(settings.ingredients)
            text_ingredients = on & {"exemplars", "errors"}
            if text_ingredients and is_image_task(self.task):
                raise ConfigError(
                    f"ingredients {sorted(text_ingredients)} show train examples as text, but "
                    f"task {self.task.name!r} is an image task: remove them from "
                    "llm.proposer.ingredients"
                )
            exemplars: tuple[LabelledText, ...] = ()
            if "exemplars" in on:
                picked = _label_balanced(self.train, settings.exemplars, [self.seed, 0])
                exemplars = tuple(_labelled(self.task, ex) for ex in picked)
            self._fixed = MetaInput(
                usage=usage_layout(self.backbone, self.task) if "usage" in on else "",
                exemplars=exemplars,
                prompt_tokens=self.prompt.length,
                fitted_words=words_that_fit(self.vocab, self.task, self.train, self.prompt.length),
            )
        return self._fixed

    def _errors(self, request: RoundInput) -> tuple[LabelledText, ...]:
        """Up to ``errors`` train examples the current prompt S gets wrong, searched among a
        seeded draw of ``errors_scanned`` train examples (counted as train forward passes)."""
        settings = self.proposer.config.proposer
        if "errors" not in settings.ingredients:
            return ()
        rng = np.random.default_rng([self.seed, request.round.index + 1])
        count = min(settings.errors_scanned, len(self.train))
        sample = [self.train[i] for i in rng.permutation(len(self.train))[:count]]
        with self.state.clock.phase("scoring_s"):
            classes = predict(self.backbone, request.current.rows, sample, self.batch_size)
        self.state.compute.train_forward_passes += len(sample)
        wrong = [(ex, c) for ex, c in zip(sample, classes, strict=True) if c != ex.label]
        return tuple(_labelled(self.task, ex, c) for ex, c in wrong[: settings.errors])


def _scored_prompts(candidates: Iterable[Candidate]) -> list[ScoredPrompt]:
    return [
        ScoredPrompt(c.text, c.result.loss, c.result.accuracy)
        for c in candidates
        if c.result is not None
    ]


def usage_layout(backbone: Backbone, task: Task) -> str:
    """What the backbone reads, with ``<PROMPT>`` for the prompt and ``{field}`` for the
    example: the causal LM puts the prompt at the very front of the rendered template and
    scores the label word after it; other backbones read the prompt before the raw text."""
    fields = {name: "{" + name + "}" for name in task.field_names}
    if isinstance(backbone, CausalLMBackbone):
        answer = "<LABEL WORD>" if task.kind == "classification" else "<OPTION>"
        space = "" if task.template[-1:].isspace() else " "
        return f"<PROMPT>{task.template.format(**fields)}{space}{answer}"
    if is_image_task(task):
        return "<PROMPT> <LABEL WORD>."
    text = " ".join(fields[name] for name in task.text_fields)
    return f"<PROMPT> {text} -> a trained classifier picks the label"


def words_that_fit(vocab: Vocabulary, task: Task, train: Sequence[Example], length: int) -> int:
    """How many words of this task's language fit ``length`` tokens of this tokenizer.

    Tokens per word are measured on the task's description, label meanings and (for text
    tasks) up to 16 train examples; a cap from it keeps proposals from being cut short.
    """
    parts = [task.description, *(task.label_meanings or task.label_names)]
    if not is_image_task(task):
        parts += [" ".join(ex.fields.values()) for ex in train[:16]]
    text = " ".join(parts)
    tokens_per_word = max(1.0, len(vocab.encode(text)) / max(1, len(text.split())))
    return max(1, int(length / tokens_per_word))


def _labelled(task: Task, example: Example, predicted: int | None = None) -> LabelledText:
    """An example's fields on one line and the right answer (and the model's, if given)."""

    def answer(label: int) -> str:
        if task.kind == "multiple_choice":
            return example.fields[task.option_fields[label]]
        return task.label_words[label].strip()

    text = "; ".join(f"{name}: {example.fields[name]}" for name in task.field_names)
    said = "" if predicted is None else answer(predicted)
    return LabelledText(example.uid, text, answer(example.label), said)


def _label_balanced(examples: Sequence[Example], count: int, entropy: list[int]) -> list[Example]:
    """``count`` examples in a seeded order that takes each label in turn, so every label is
    shown before any is shown twice."""
    rng = np.random.default_rng(entropy)
    by_label: dict[int, list[Example]] = {}
    for i in rng.permutation(len(examples)):
        by_label.setdefault(examples[i].label, []).append(examples[i])
    turns = zip_longest(*(by_label[label] for label in sorted(by_label)))
    return [ex for turn in turns for ex in turn if ex is not None][:count]


@dataclass
class RandomSource:
    """C prompts of distinct random vocabulary tokens, seeded by (seed, round, index)."""

    vocab: Vocabulary
    length: int
    count: int
    seed: int

    def propose(self, request: RoundInput) -> Proposals:
        candidates = []
        for index in range(self.count):
            entropy = [self.seed, request.round.index, index]
            seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
            prompt = random_prompt(self.vocab, self.length, seed)
            ids = [i for i in prompt.init_token_ids or () if i is not None]
            text = self.vocab.tokenizer.decode(ids)
            candidates.append(Candidate(text, prompt.embeddings, "random"))
        return Proposals(tuple(candidates))


class ProjectionSource:
    """The pool's best projected trajectory text by dev loss (already scored: no extra pass)."""

    def propose(self, request: RoundInput) -> Proposals:
        scored = [c for c in request.pool if c.result is not None]
        if not scored:
            return Proposals(skip_reason="the pool is empty")
        best = min(scored, key=lambda c: c.loss)
        return Proposals((Candidate(best.text, best.rows, "projection", best.detail, best.result),))
