"""Fixtures shared by every test folder.

Tasks and examples (in memory, no files):
    sentiment_task, sentiment_examples    binary sentiment, one field "sentence", 8 examples
    nli_task, nli_examples                entailment pairs "premise"/"hypothesis", 6 examples
    copa_task, copa_examples              COPA-like multiple choice, 2 options, 4 examples

Backbones (frozen; the tiny ones are random models around the real tokenizers, fast enough for
unit tests; session-scoped because they are never mutated - a test that changes one, e.g. loads
a head state, builds its own with ``build_backbone``):
    tiny_causal_backbone, tiny_causal_nli_backbone, tiny_causal_copa_backbone
    tiny_encoder_backbone, tiny_encoder_nli_backbone, tiny_encoder_copa_backbone

Real offline models (session-scoped; use them only in tests marked ``@pytest.mark.slow``):
    smollm2_backbone           SmolLM2-135M-Instruct on the sentiment task
    minilm_backbone            all-MiniLM-L6-v2 + linear head on the sentiment task

    shared_data_dir            Path of the read-only benchmark data (../shared/data)

HF_HUB_OFFLINE is set for the whole session: tests never reach the hub.
"""

from __future__ import annotations

import os

# Before anything imports huggingface_hub, which reads these once at import time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path

import pytest

from llm_catalyst.backbones import Backbone, BackboneConfig, build_backbone
from llm_catalyst.data.tasks import Example, Task


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    return Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def sentiment_task() -> Task:
    return Task(
        name="toy-sentiment",
        description="Movie review sentences labelled by the sentiment they express.",
        field_names=("sentence",),
        label_names=("negative", "positive"),
        label_words=("negative", "positive"),
        template="Review: {sentence}\nSentiment:",
        text_fields=("sentence",),
        label_meanings=("the review is unfavourable", "the review is favourable"),
    )


@pytest.fixture(scope="session")
def sentiment_examples() -> tuple[Example, ...]:
    texts = [
        ("a gripping, beautifully acted film", 1),
        ("dull and far too long", 0),
        ("the best comedy of the year , warm and funny", 1),
        ("a mess", 0),
        ("i loved every minute of it", 1),
        ("the plot makes no sense and the jokes fall flat", 0),
        ("charming", 1),
        ("an overlong , tedious exercise in style over substance", 0),
    ]
    return tuple(
        Example({"sentence": text}, label, uid=f"s{i}") for i, (text, label) in enumerate(texts)
    )


@pytest.fixture(scope="session")
def nli_task() -> Task:
    return Task(
        name="toy-nli",
        description="Does the premise entail the hypothesis?",
        field_names=("premise", "hypothesis"),
        label_names=("entailment", "not_entailment"),
        label_words=("yes", "no"),
        template="{premise}\nQuestion: {hypothesis} Yes or no?\nAnswer:",
        text_fields=("premise", "hypothesis"),
    )


@pytest.fixture(scope="session")
def nli_examples() -> tuple[Example, ...]:
    pairs = [
        ("A man is playing a guitar on stage.", "A man is performing music.", 0),
        ("The cat sleeps on the sofa.", "The cat is running outside.", 1),
        ("Paris is the capital of France.", "France has a capital.", 0),
        ("She bought three apples.", "She bought no fruit.", 1),
        ("The road was closed because of snow.", "It had snowed.", 0),
        ("Two kids play chess in the park.", "The kids are asleep.", 1),
    ]
    return tuple(
        Example({"premise": p, "hypothesis": h}, label, uid=f"n{i}")
        for i, (p, h, label) in enumerate(pairs)
    )


@pytest.fixture(scope="session")
def copa_task() -> Task:
    return Task(
        name="toy-copa",
        description="Pick the more plausible cause or effect of the premise.",
        field_names=("premise", "question", "choice1", "choice2"),
        label_names=("choice1", "choice2"),
        label_words=(),
        template="{premise} What was the {question}?",
        text_fields=("premise",),
        kind="multiple_choice",
        option_fields=("choice1", "choice2"),
    )


@pytest.fixture(scope="session")
def copa_examples() -> tuple[Example, ...]:
    rows = [
        (
            "My body cast a shadow over the grass.",
            "cause",
            "The sun was rising.",
            "The grass was cut.",
            0,
        ),
        (
            "The woman tolerated her friend's difficult behavior.",
            "cause",
            "The woman knew her friend was going through a hard time.",
            "The woman felt that her friend took advantage of her kindness.",
            0,
        ),
        (
            "The women met for coffee.",
            "cause",
            "The cafe reopened in a new location.",
            "They wanted to catch up with each other.",
            1,
        ),
        (
            "The runner wore shorts.",
            "cause",
            "The forecast predicted high temperatures.",
            "She planned to run along the beach.",
            0,
        ),
    ]
    return tuple(
        Example({"premise": p, "question": q, "choice1": a, "choice2": b}, label, uid=f"c{i}")
        for i, (p, q, a, b, label) in enumerate(rows)
    )


def _build(model: str, task: Task) -> Backbone:
    return build_backbone(BackboneConfig(model=model), task)


@pytest.fixture(scope="session")
def tiny_causal_backbone(sentiment_task: Task) -> Backbone:
    return _build("tiny-causal-lm", sentiment_task)


@pytest.fixture(scope="session")
def tiny_causal_nli_backbone(nli_task: Task) -> Backbone:
    return _build("tiny-causal-lm", nli_task)


@pytest.fixture(scope="session")
def tiny_causal_copa_backbone(copa_task: Task) -> Backbone:
    return _build("tiny-causal-lm", copa_task)


@pytest.fixture(scope="session")
def tiny_encoder_backbone(sentiment_task: Task) -> Backbone:
    return _build("tiny-encoder", sentiment_task)


@pytest.fixture(scope="session")
def tiny_encoder_nli_backbone(nli_task: Task) -> Backbone:
    return _build("tiny-encoder", nli_task)


@pytest.fixture(scope="session")
def tiny_encoder_copa_backbone(copa_task: Task) -> Backbone:
    return _build("tiny-encoder", copa_task)


@pytest.fixture(scope="session")
def smollm2_backbone(sentiment_task: Task) -> Backbone:
    return _build("smollm2-135m-instruct", sentiment_task)


@pytest.fixture(scope="session")
def minilm_backbone(sentiment_task: Task) -> Backbone:
    return _build("all-minilm-l6-v2", sentiment_task)
