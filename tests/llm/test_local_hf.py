"""The in-process transformers back-end: tiny random model for the mechanics, SmolLM2 for real."""

from __future__ import annotations

import copy

import pytest
import torch

from llm_catalyst.llm.client import InProcessClient, LLMRequest
from llm_catalyst.llm.config import LLMConfig, SamplingConfig
from llm_catalyst.llm.gateway import build_client, build_gateway
from llm_catalyst.llm.local_hf import LocalHFClient
from llm_catalyst.llm.proposer import Proposer, ScoredPrompt
from llm_catalyst.weights.presets import load_pretrained_causal_lm

MESSAGES = ({"role": "user", "content": "Write a prompt for sentiment."},)


@pytest.fixture(scope="module")
def tiny() -> LocalHFClient:
    model, tokenizer = load_pretrained_causal_lm("tiny-causal-lm")
    return LocalHFClient(model, tokenizer, name="tiny-causal-lm")


def ask(client: LocalHFClient, **params) -> tuple[str, ...]:
    return client.complete(LLMRequest(MESSAGES, SamplingConfig(**params))).texts


def test_seeded_sampling_is_reproducible_and_seeds_differ(tiny) -> None:
    a = ask(tiny, temperature=1.0, max_tokens=12, seed=1)
    assert a == ask(tiny, temperature=1.0, max_tokens=12, seed=1)
    assert a != ask(tiny, temperature=1.0, max_tokens=12, seed=2)


def test_the_callers_rng_is_untouched(tiny) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ask(tiny, temperature=1.0, max_tokens=5, seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_greedy_ignores_the_seed(tiny) -> None:
    assert ask(tiny, temperature=0, max_tokens=8, seed=1) == ask(
        tiny, temperature=0, max_tokens=8, seed=2
    )


def test_n_samples_and_usage(tiny) -> None:
    completion = tiny.complete(
        LLMRequest(MESSAGES, SamplingConfig(n=3, temperature=1.0, max_tokens=6, seed=0))
    )
    assert len(completion.texts) == 3
    chat = tiny.tokenizer.apply_chat_template(
        list(MESSAGES), add_generation_prompt=True, tokenize=False
    )
    expected_prompt = len(tiny.tokenizer(chat, add_special_tokens=False)["input_ids"])
    assert completion.usage.prompt_tokens == expected_prompt
    assert 0 < completion.usage.completion_tokens <= 18
    assert set(completion.finish_reasons) <= {"stop", "length"}


def test_stop_strings_cut_the_answer(tiny) -> None:
    free = ask(tiny, temperature=0, max_tokens=20)[0]
    assert len(free) > 4
    stop = free[2:4]
    cut = ask(tiny, temperature=0, max_tokens=20, stop=(stop,))[0]
    assert cut == free[: free.find(stop)]


def test_generation_leaves_the_weights_alone(tiny) -> None:
    before = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    ask(tiny, temperature=1.0, max_tokens=5, seed=0)
    after = tiny.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_model_without_chat_template_continues_plain_text(tiny) -> None:
    tokenizer = copy.deepcopy(tiny.tokenizer)
    tokenizer.chat_template = None
    base = LocalHFClient(tiny.model, tokenizer, name="tiny-base")
    assert tiny.has_chat_template and not base.has_chat_template
    completion = base.complete(LLMRequest(MESSAGES, SamplingConfig(temperature=0, max_tokens=3)))
    assert completion.usage.prompt_tokens == len(
        tokenizer(InProcessClient.plain_prompt(MESSAGES))["input_ids"]
    )


def test_a_loaded_pair_is_reused_not_reloaded(tiny) -> None:
    config = LLMConfig(backend="local_hf", model="tiny-causal-lm")
    client = build_client(config, loaded=(tiny.model, tiny.tokenizer))
    assert isinstance(client, LocalHFClient)
    assert client.model is tiny.model
    assert client.identity == {"backend": "local_hf", "model": "tiny-causal-lm"}


@pytest.mark.slow
def test_smollm2_shared_with_the_backbone_proposes_prompts(
    smollm2_backbone, sentiment_task, tmp_path
):
    cfg = LLMConfig.model_validate(
        {
            "backend": "local_hf",
            "model": "smollm2-135m-instruct",
            # No spare: the seeded sample of this meta-prompt is known to parse.
            "proposer": {"num_proposals": 3, "max_words": 15, "template": "list", "spare": 0},
            "sampling": {"max_tokens": 60, "seed": 0},
            "cache": {"enabled": True, "directory": str(tmp_path / "cache")},
        }
    )
    loaded = (smollm2_backbone.model, smollm2_backbone.tokenizer)
    gateway = build_gateway(cfg, loaded)
    assert gateway.client.model is smollm2_backbone.model  # loaded once for both roles
    history = [
        ScoredPrompt("great terrible movie", 0.8, 0.5),
        ScoredPrompt("Is this movie review positive or negative?", 0.5, 0.75),
    ]
    proposer = Proposer(gateway, cfg)
    first = proposer.propose(sentiment_task, history, round_index=0)
    assert first.calls == 1 and first.usage.completion_tokens > 0
    assert first.proposals, first.raw_answers  # a real model, seeded: some text parses
    replay = proposer.propose(sentiment_task, history, round_index=0)
    assert replay.cache_hits == 1 and replay.proposals == first.proposals
