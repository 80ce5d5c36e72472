"""The LLM instructor: back-ends, meta-prompts, parsing, cache, retries, budget and call log.

The catalyst loop needs three things from here::

    config = load_llm_config("llm.yaml")          # or LLMConfig() for the local default
    proposer = Proposer(build_gateway(config, loaded=(model, tokenizer)), config)
    print(proposer.plan(rounds))                  # projected LLM calls, before the run
    result = proposer.propose(task, scored_history, round_index, tried=texts)
    if result.skipped: ...                        # LLM unavailable or budget spent: keep training
    proposer.gateway.budget.totals()              # calls, tokens, cost for the run record

Modules: ``client`` (protocol and values), ``openai_compat`` / ``local_hf`` / ``llama_cpp`` /
``scripted`` (back-ends, imported only when built), ``gateway`` (cache -> budget -> retries ->
call log), ``cache``, ``budget``, ``calllog``, ``parsing``, ``proposer`` (+ ``templates/``),
``config``.
"""

from llm_catalyst.llm.budget import Budget, BudgetExhausted, BudgetLimits, Price
from llm_catalyst.llm.client import (
    Completion,
    LLMClient,
    LLMRequest,
    LLMUnavailable,
    SamplingParams,
    TransientLLMError,
    Usage,
)
from llm_catalyst.llm.config import LLMConfig, load_llm_config
from llm_catalyst.llm.gateway import LLMGateway, build_client, build_gateway
from llm_catalyst.llm.parsing import parse_proposals
from llm_catalyst.llm.proposer import ProposalRound, Proposer, ScoredPrompt, load_history
from llm_catalyst.llm.scripted import ScriptedClient

__all__ = [
    "Budget",
    "BudgetExhausted",
    "BudgetLimits",
    "Completion",
    "LLMClient",
    "LLMConfig",
    "LLMGateway",
    "LLMRequest",
    "LLMUnavailable",
    "Price",
    "ProposalRound",
    "Proposer",
    "SamplingParams",
    "ScoredPrompt",
    "ScriptedClient",
    "TransientLLMError",
    "Usage",
    "build_client",
    "build_gateway",
    "load_history",
    "load_llm_config",
    "parse_proposals",
]
