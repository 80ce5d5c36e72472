"""The methods a run can execute, as a registry: what each trains, whether it needs the LLM, and
how its proposal source is built from the run's parts. Every method shares the loop, the
gradient budget and the selection policy, so a new method (or control) is one ``register``
call here and, at most, a new source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llm_catalyst.errors import ConfigError

if TYPE_CHECKING:
    # Only types here: the parts are made from a RunConfig, whose method names come from here;
    # the sources are imported by the builders, so the names load no torch (the CLI's --help).
    from llm_catalyst.catalyst.parts import RunParts
    from llm_catalyst.catalyst.sources import ProposalSource
    from llm_catalyst.catalyst.state import LoopState

SourceBuilder = Callable[["RunParts", "LoopState"], "ProposalSource"]


@dataclass(frozen=True)
class Method:
    """``trains`` False: no gradient step at all, an OPRO-style search over hard prompts.
    ``source`` None: no rounds (plain prompt tuning). ``init_from_instruction``: the soft
    prompt starts from the task's hand-written instruction (fitted by ``prompt.fit``) instead
    of ``prompt.init``. ``starts``: the method races its start (catalyst/race.py) among the
    seed's random start, the task's instruction and the K texts this source writes; ``rungs``
    False ranks them by dev loss before any step instead of racing them."""

    name: str
    summary: str
    trains: bool = True
    needs_llm: bool = False
    source: SourceBuilder | None = None
    init_from_instruction: bool = False
    starts: SourceBuilder | None = None
    rungs: bool = True


def llm_source(parts: RunParts, state: LoopState) -> ProposalSource:
    from llm_catalyst.catalyst.sources import LLMSource

    assert parts.proposer is not None, "an LLM method is built with its proposer"
    config = parts.config
    return LLMSource(
        proposer=parts.proposer,
        backbone=parts.backbone,
        vocab=parts.vocab,
        prompt=config.prompt,
        train=parts.splits.train,
        seed=config.data.seed,
        batch_size=config.train.eval_batch_size,
        state=state,
    )


def random_source(parts: RunParts, state: LoopState) -> ProposalSource:
    from llm_catalyst.catalyst.sources import RandomSource

    config = parts.config
    count = config.llm.proposer.num_proposals
    return RandomSource(parts.vocab, config.prompt.length, count, config.data.seed)


def projection_source(parts: RunParts, state: LoopState) -> ProposalSource:
    from llm_catalyst.catalyst.sources import ProjectionSource

    return ProjectionSource()


_REGISTRY: dict[str, Method] = {}


def register(method: Method) -> None:
    _REGISTRY[method.name] = method


# Registered baseline first: every comparison is made against the first.
register(Method(name="plain", summary="prompt tuning alone, best S by dev"))
register(
    Method(
        name="plain-text-init",
        summary="prompt tuning alone, starting from the task's hand-written instruction",
        init_from_instruction=True,
    )
)
register(
    Method(
        name="random-restart",
        summary="the catalyst's schedule; restarts proposed as random vocabulary tokens",
        source=random_source,
    )
)
register(
    Method(
        name="projection-restart",
        summary="the catalyst's schedule; the restart proposed is the pool's best projected text",
        source=projection_source,
    )
)
register(
    Method(
        name="llm-only",
        summary="the same LLM and rounds searching hard prompts, no gradient step",
        trains=False,
        needs_llm=True,
        source=llm_source,
    )
)
register(
    Method(
        name="catalyst",
        summary="gradient stages with the LLM proposing restarts between them",
        needs_llm=True,
        source=llm_source,
    )
)

register(
    Method(
        name="race",
        summary="successive halving on dev among LLM-written starts, the instruction and the "
        "random start, inside the gradient budget; the winner trains on",
        needs_llm=True,
        starts=llm_source,
    )
)
register(
    Method(
        name="random-race",
        summary="race's control: the same race with random-token starts in place of the LLM's",
        starts=random_source,
    )
)
register(
    Method(
        name="llm-init",
        summary="the start with the lowest dev loss among race's entrants, before any step; "
        "no race",
        needs_llm=True,
        starts=llm_source,
        rungs=False,
    )
)

# The method names, baseline first.
METHODS: tuple[str, ...] = tuple(_REGISTRY)


def get_method(name: str) -> Method:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; choose from {', '.join(METHODS)}") from None
