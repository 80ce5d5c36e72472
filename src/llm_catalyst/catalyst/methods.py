"""The methods a run can execute, as a registry: what each trains, whether it needs the LLM, and
how its proposal source is built. Every method shares the loop, the gradient budget and the
selection policy, so a new method (or control) is one entry here and, at most, a new source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llm_catalyst.backbones.base import Backbone
from llm_catalyst.catalyst.checkpoint import LoopState
from llm_catalyst.catalyst.sources import (
    LLMSource,
    ProjectionSource,
    ProposalSource,
    RandomSource,
)
from llm_catalyst.data.tasks import Example, Task
from llm_catalyst.errors import ConfigError
from llm_catalyst.llm.proposer import Proposer
from llm_catalyst.prompts.projection import FitPolicy, Vocabulary


@dataclass(frozen=True)
class SourceContext:
    """What a run has set up that a proposal source may need. ``proposer`` is None where the
    method needs no LLM, and on the processes of a data-parallel run other than the main one.
    ``train`` is the train split alone: the meta-prompt's examples never come from dev or test.
    ``batch_size`` is the evaluation batch size."""

    task: Task
    vocab: Vocabulary
    length: int
    fit: FitPolicy
    num_proposals: int
    seed: int
    state: LoopState
    proposer: Proposer | None
    backbone: Backbone
    train: tuple[Example, ...]
    batch_size: int


@dataclass(frozen=True)
class Method:
    """``trains`` False: no gradient step at all, an OPRO-style search over hard prompts.
    ``build_source`` None: no rounds (plain prompt tuning). ``init_from_instruction``: the soft
    prompt starts from the task's hand-written instruction (fitted by ``prompt.fit``) instead
    of ``prompt.init``."""

    name: str
    summary: str
    trains: bool
    needs_llm: bool
    build_source: Callable[[SourceContext], ProposalSource] | None
    init_from_instruction: bool = False


def _llm_source(context: SourceContext) -> ProposalSource:
    assert context.proposer is not None, "an LLM method is built with its proposer"
    return LLMSource(
        context.proposer,
        context.task,
        context.vocab,
        context.length,
        context.fit,
        context.state,
        context.backbone,
        context.train,
        context.seed,
        context.batch_size,
    )


def _random_source(context: SourceContext) -> ProposalSource:
    return RandomSource(context.vocab, context.length, context.num_proposals, context.seed)


def _projection_source(context: SourceContext) -> ProposalSource:
    return ProjectionSource()


_REGISTRY: dict[str, Method] = {
    method.name: method
    for method in (
        Method("plain", "prompt tuning alone, best S by dev", True, False, None),
        Method(
            "plain-text-init",
            "prompt tuning alone, starting from the task's hand-written instruction",
            True,
            False,
            None,
            init_from_instruction=True,
        ),
        Method(
            "random-restart",
            "the catalyst's schedule; restarts proposed as random vocabulary tokens",
            True,
            False,
            _random_source,
        ),
        Method(
            "projection-restart",
            "the catalyst's schedule; the restart proposed is the pool's best projected text",
            True,
            False,
            _projection_source,
        ),
        Method(
            "llm-only",
            "the same LLM and rounds searching hard prompts, no gradient step",
            False,
            True,
            _llm_source,
        ),
        Method(
            "catalyst",
            "gradient stages with the LLM proposing restarts between them",
            True,
            True,
            _llm_source,
        ),
    )
}

# The method names, baseline first: every comparison is made against the first.
METHODS: tuple[str, ...] = tuple(_REGISTRY)


def get_method(name: str) -> Method:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; choose from {', '.join(METHODS)}") from None
