"""The LLM instructor: back-ends, meta-prompts, parsing, cache, retries, budget and call log.

``Proposer(build_gateway(config), config).propose(task, pool, round_index)`` is all the
catalyst needs; a failed or over-budget call comes back as a skipped round, never an exception.
"""

from llm_catalyst.llm.budget import Budget, BudgetExhausted
from llm_catalyst.llm.client import (
    Completion,
    LLMClient,
    LLMRequest,
    LLMUnavailable,
    TransientLLMError,
    Usage,
)
from llm_catalyst.llm.config import (
    BudgetConfig,
    LLMConfig,
    PriceConfig,
    SamplingConfig,
    load_llm_config,
)
from llm_catalyst.llm.gateway import LLMGateway, build_client, build_gateway
from llm_catalyst.llm.parsing import parse_proposals
from llm_catalyst.llm.proposer import ProposalRound, Proposer, ScoredPrompt, load_pool
from llm_catalyst.llm.scripted import ScriptedClient

__all__ = [
    "Budget",
    "BudgetConfig",
    "BudgetExhausted",
    "Completion",
    "LLMClient",
    "LLMConfig",
    "LLMGateway",
    "LLMRequest",
    "LLMUnavailable",
    "PriceConfig",
    "ProposalRound",
    "Proposer",
    "SamplingConfig",
    "ScoredPrompt",
    "ScriptedClient",
    "TransientLLMError",
    "Usage",
    "build_client",
    "build_gateway",
    "load_llm_config",
    "load_pool",
    "parse_proposals",
]
