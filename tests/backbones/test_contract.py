"""The Backbone contract, checked on every tiny backbone and on each kind of task it serves.

Whatever a backbone does inside, callers rely on four things: padding (and the rest of the
batch) never changes an example's scores, a stack of prompts scores like each prompt alone,
gradients reach the prompt and the head and nothing else, and a head state survives a round
trip into another backbone (while a state that does not fit is refused).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from llm_catalyst.backbones import Backbone, BackboneConfig, build_backbone
from llm_catalyst.data.config import DataConfig, load_splits
from llm_catalyst.data.tasks import Example, Task
from llm_catalyst.errors import BackboneError


@dataclass(frozen=True)
class Case:
    """A tiny backbone on one task; ``frozen`` names its pre-trained module."""

    model: str
    task: str
    frozen: str
    has_head: bool


CASES = [
    Case("tiny-causal-lm", "sentiment", "model", has_head=False),
    Case("tiny-causal-lm", "copa", "model", has_head=False),
    Case("tiny-encoder", "sentiment", "model", has_head=True),
    Case("tiny-encoder", "copa", "model", has_head=True),
    Case("tiny-clip", "eurosat", "clip", has_head=False),
]


@pytest.fixture(scope="module")
def eurosat_examples(shared_data_dir) -> tuple[Task, tuple[Example, ...]]:
    splits = load_splits(DataConfig(task="eurosat", data_dir=shared_data_dir, shots=2, seed=1))
    return splits.task, splits.dev[::3]


@pytest.fixture(params=CASES, ids=lambda case: f"{case.model}-{case.task}")
def subject(request) -> tuple[Case, Task, tuple[Example, ...]]:
    case = request.param
    if case.task == "eurosat":
        task, examples = request.getfixturevalue("eurosat_examples")
    else:
        task = request.getfixturevalue(f"{case.task}_task")
        examples = request.getfixturevalue(f"{case.task}_examples")
    return case, task, examples


def _build(case: Case, task: Task, **config: object) -> Backbone:
    """A fresh backbone (tests here change heads and modes); CLIP features stay in memory."""
    clip = {"disk_cache": False} if case.model == "tiny-clip" else {}
    return build_backbone(BackboneConfig(model=case.model, clip=clip, **config), task)


def _prompt(backbone: Backbone, slots: int = 3, seed: int = 0) -> torch.Tensor:
    """Random vocabulary rows plus noise: a realistic soft prompt in the embedding space."""
    generator = torch.Generator().manual_seed(seed)
    table = backbone.embedding_table
    rows = torch.randint(0, table.shape[0], (slots,), generator=generator)
    return table[rows] + 0.5 * table.std() * torch.randn(slots, table.shape[1], generator=generator)


def _frozen(backbone: Backbone, case: Case) -> torch.nn.Module:
    return getattr(backbone, case.frozen)


def test_padding_and_batch_mates_do_not_change_an_examples_scores(subject):
    case, task, examples = subject
    backbone = _build(case, task)
    short = min(examples, key=lambda example: len(" ".join(example.fields.values())))
    prompt = _prompt(backbone)
    with torch.no_grad():
        alone = backbone.class_scores(prompt, backbone.collate([short]))
        batch = backbone.collate([*examples, short])
        in_batch = backbone.class_scores(prompt, batch)[-1:]
    if "attention_mask" in batch.inputs:  # text backbones: the example's rows really are padded
        mask = batch.inputs["attention_mask"]
        assert mask[-1].sum() < mask.shape[1], "the short example must be padded"
    assert alone.shape == (1, task.num_classes)
    torch.testing.assert_close(alone, in_batch, rtol=1e-5, atol=1e-6)


def test_stacked_prompts_score_like_each_prompt_alone(subject):
    case, task, examples = subject
    backbone = _build(case, task)
    examples = examples[:4]
    batch = backbone.collate(examples)
    prompts = torch.stack([_prompt(backbone, seed=s) for s in range(len(examples))])
    with torch.no_grad():
        stacked = backbone.class_scores(prompts, batch)
        separate = torch.stack(
            [backbone.class_scores(prompts[i], batch)[i] for i in range(len(examples))]
        )
        shared = backbone.class_scores(prompts[0], batch)
    torch.testing.assert_close(stacked, separate, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(stacked[1:], shared[1:]), "each row must use its own prompt"


def test_gradients_reach_the_prompt_and_head_only(subject):
    case, task, examples = subject
    backbone = _build(case, task)
    frozen = _frozen(backbone, case)
    before = {name: value.clone() for name, value in frozen.state_dict().items()}
    prompt = _prompt(backbone).requires_grad_(True)
    head = backbone.head_parameters()
    assert bool(head) == case.has_head
    backbone.train(True)
    batch = backbone.collate(examples)
    scores = backbone.class_scores(prompt, batch)
    torch.nn.functional.cross_entropy(scores, batch.labels).backward()
    assert prompt.grad is not None
    assert prompt.grad.abs().sum(dim=1).gt(0).all(), "every prompt row gets gradient"
    # A multiple-choice head's bias adds the same to each option's score: its gradient is 0.
    moved = head if task.kind == "classification" else head[:1]
    assert all(p.grad is not None for p in head)
    assert all(p.grad.abs().sum() > 0 for p in moved)
    assert all(not p.requires_grad and p.grad is None for p in frozen.parameters())
    torch.optim.SGD([prompt, *head], lr=0.1).step()
    assert not frozen.training, "the frozen model stays in eval mode"
    for name, value in frozen.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_head_state_round_trip_and_a_state_that_does_not_fit(subject):
    case, task, examples = subject
    source = _build(case, task, head_seed=1)
    target = _build(case, task, head_seed=2)
    batch = source.collate(examples)
    prompt = _prompt(source)
    state = source.head_state()
    assert bool(state) == case.has_head
    with torch.no_grad():
        differed = not torch.allclose(
            source.class_scores(prompt, batch), target.class_scores(prompt, batch)
        )
        assert differed == case.has_head, "only a head's seed changes the scores"
        target.load_head_state(state)
        torch.testing.assert_close(
            source.class_scores(prompt, batch), target.class_scores(prompt, batch)
        )
    foreign = {"weight": torch.zeros(7, 5), "bias": torch.zeros(7)}
    with pytest.raises(BackboneError, match="fix:"):
        target.load_head_state(foreign)
