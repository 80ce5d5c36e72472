"""Where restart candidates come from: the one contract every method's proposal source meets,
and the sources themselves (the LLM, random tokens, the projected trajectory).

The controls differ from the catalyst only in their source, so comparing them isolates what the
LLM contributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Protocol

import numpy as np

from llm_catalyst.catalyst.checkpoint import Candidate, LoopState
from llm_catalyst.data.tasks import Task
from llm_catalyst.distributed import Distributed
from llm_catalyst.errors import ConfigError
from llm_catalyst.llm.proposer import Proposer, ScoredPrompt
from llm_catalyst.prompts.projection import FitPolicy, Vocabulary, embed_text
from llm_catalyst.prompts.soft_prompt import random_prompt


@dataclass(frozen=True)
class RoundInput:
    """What a source sees: the round (0-based), the scored current S and pool, and every text
    tried in earlier rounds."""

    round_index: int
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
    """The instructor: the LLM reads the task and the scored pool and writes C new prompts,
    each fitted to the prompt's P slots by the fit policy (``pad_current`` pads with S)."""

    proposer: Proposer
    task: Task
    vocab: Vocabulary
    length: int
    fit: FitPolicy
    state: LoopState

    def propose(self, request: RoundInput) -> Proposals:
        history = [
            ScoredPrompt(c.text, c.result.loss, c.result.accuracy)
            for c in request.pool
            if c.result is not None
        ]
        with self.state.clock.phase("llm_s"):
            answer = self.proposer.propose(
                self.task, history, request.round_index, tried=request.tried
            )
        candidates: list[Candidate] = []
        unfit: list[dict[str, str]] = []
        for text in answer.proposals:
            try:
                fitted = embed_text(
                    text, self.vocab, self.length, self.fit, current=request.current.rows
                )
            except ConfigError as error:
                unfit.append({"text": text, "reason": str(error)})
                continue
            candidates.append(Candidate(text, fitted.embeddings, "llm"))
        details = {
            "status": answer.status,
            "llm_reason": answer.reason,
            "calls": answer.calls,
            "cache_hits": answer.cache_hits,
            "rejected": [asdict(r) for r in answer.rejected] + unfit,
        }
        skip_reason = ""
        if not candidates:
            skip_reason = answer.reason or f"none of {len(answer.proposals)} proposal(s) fits"
        return Proposals(tuple(candidates), skip_reason, details)


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
            entropy = [self.seed, request.round_index, index]
            seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
            prompt = random_prompt(self.vocab, self.length, seed)
            ids = [i for i in prompt.init_token_ids or () if i is not None]
            text = self.vocab.tokenizer.decode(ids)
            candidates.append(Candidate(text, prompt.embeddings, "random tokens"))
        return Proposals(tuple(candidates))


class ProjectionSource:
    """The pool's best projected trajectory text by dev loss (already scored: no extra pass)."""

    def propose(self, request: RoundInput) -> Proposals:
        scored = [c for c in request.pool if c.result is not None]
        if not scored:
            return Proposals(skip_reason="the pool is empty")
        best = min(scored, key=lambda c: c.result.loss if c.result else float("inf"))
        return Proposals(
            (Candidate(best.text, best.rows, f"projection ({best.source})", best.result),)
        )
