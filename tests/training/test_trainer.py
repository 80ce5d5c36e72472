"""The trainer: deterministic batches, exact resume, restarts, frozen weights, NaN handling."""

from __future__ import annotations

import pytest
import torch

from llm_catalyst.backbones import BackboneConfig, build_backbone
from llm_catalyst.training.config import TrainConfig
from llm_catalyst.training.scoring import evaluate
from llm_catalyst.training.trainer import BatchStream, NonFiniteLossError, PromptTrainer


def _initial_prompt(backbone, length: int = 4, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, 1000, (length,), generator=generator)
    return backbone.embedding_table[rows].clone()


def _losses(trainer: PromptTrainer, steps: int) -> list[float]:
    return [trainer.train_step().loss for _ in range(steps)]


def test_batch_stream_is_a_pure_function_of_seed_and_step(sentiment_examples):
    stream = BatchStream(sentiment_examples, batch_size=3, seed=7)
    again = BatchStream(sentiment_examples, batch_size=3, seed=7)
    other = BatchStream(sentiment_examples, batch_size=3, seed=8)
    steps = range(12)
    assert [stream.batch(s) for s in reversed(steps)][::-1] == [again.batch(s) for s in steps]
    assert [stream.batch(s) for s in steps] != [other.batch(s) for s in steps]


def test_batch_stream_visits_every_example_once_per_epoch(sentiment_examples):
    stream = BatchStream(sentiment_examples, batch_size=4, seed=1)
    first_epoch = stream.batch(0) + stream.batch(1)
    assert sorted(ex.uid for ex in first_epoch) == sorted(ex.uid for ex in sentiment_examples)


def test_training_lowers_the_training_loss(tiny_causal_backbone, sentiment_examples):
    config = TrainConfig(steps=30, batch_size=8, lr=0.05, schedule="constant", progress=False)
    prompt = _initial_prompt(tiny_causal_backbone)
    before = evaluate(tiny_causal_backbone, prompt, sentiment_examples).loss
    trainer = PromptTrainer(tiny_causal_backbone, prompt, sentiment_examples, config, seed=0)
    for _ in range(config.steps):
        trainer.train_step()
    after = evaluate(tiny_causal_backbone, trainer.current_prompt(), sentiment_examples).loss
    assert after < before - 1e-3


def test_only_the_prompt_changes(tiny_causal_backbone, sentiment_examples):
    model = tiny_causal_backbone.model
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    prompt = _initial_prompt(tiny_causal_backbone)
    config = TrainConfig(steps=3, batch_size=4, lr=0.05, progress=False)
    trainer = PromptTrainer(tiny_causal_backbone, prompt, sentiment_examples, config, seed=0)
    for _ in range(3):
        trainer.train_step()
    assert not torch.equal(trainer.current_prompt(), prompt)
    for name, p in model.named_parameters():
        assert torch.equal(p, weights[name]), name
        assert p.grad is None, name


def test_same_seed_same_losses(tiny_causal_backbone, sentiment_examples):
    config = TrainConfig(steps=5, batch_size=4, lr=0.05, progress=False)
    prompt = _initial_prompt(tiny_causal_backbone)
    runs = [
        _losses(PromptTrainer(tiny_causal_backbone, prompt, sentiment_examples, config, 3), 5)
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


def test_resume_from_state_dict_matches_an_uninterrupted_run(sentiment_task, sentiment_examples):
    backbone = build_backbone(BackboneConfig(model="tiny-encoder"), sentiment_task)
    config = TrainConfig(steps=8, batch_size=4, lr=0.05, warmup_steps=2, progress=False)
    prompt = _initial_prompt(backbone)
    head_at_start = backbone.head_state()

    straight = PromptTrainer(backbone, prompt, sentiment_examples, config, seed=5)
    expected = _losses(straight, 8)

    backbone.load_head_state(head_at_start)
    first = PromptTrainer(backbone, prompt, sentiment_examples, config, seed=5)
    losses = _losses(first, 4)
    state = first.state_dict()
    backbone.load_head_state(head_at_start)
    resumed = PromptTrainer(backbone, prompt, sentiment_examples, config, seed=5)
    resumed.load_state_dict(state)
    losses += _losses(resumed, 4)
    assert losses == pytest.approx(expected, abs=1e-6)


def test_restart_replaces_prompt_and_can_reset_moments(tiny_causal_backbone, sentiment_examples):
    config = TrainConfig(steps=10, batch_size=4, lr=0.05, progress=False)
    trainer = PromptTrainer(
        tiny_causal_backbone, _initial_prompt(tiny_causal_backbone), sentiment_examples, config, 0
    )
    for _ in range(2):
        trainer.train_step()
    new_prompt = _initial_prompt(tiny_causal_backbone, seed=1)
    trainer.restart(new_prompt, reset_moments=False)
    assert torch.equal(trainer.current_prompt(), new_prompt)
    assert trainer.optimizer.state[trainer.prompt]
    trainer.restart(new_prompt, reset_moments=True)
    assert trainer.prompt not in trainer.optimizer.state
    lr_before = trainer.scheduler.get_last_lr()
    trainer.train_step()
    assert trainer.step == 3
    assert trainer.scheduler.get_last_lr() != lr_before


def test_sgd_momentum_carries_the_previous_step(tiny_causal_backbone, sentiment_examples):
    """Both runs take the same first step u1 = lr * g1 and reach the same point, so with
    momentum m the second update is lr * (g2 + m * g1) = (plain second update) + m * u1."""

    def updates(momentum: float) -> tuple[torch.Tensor, torch.Tensor]:
        config = TrainConfig(
            steps=2,
            batch_size=4,
            lr=0.1,
            optimizer="sgd",
            momentum=momentum,
            schedule="constant",
            max_grad_norm=None,
            progress=False,
        )
        start = _initial_prompt(tiny_causal_backbone)
        trainer = PromptTrainer(tiny_causal_backbone, start, sentiment_examples, config, 0)
        trainer.train_step()
        after_one = trainer.current_prompt()
        trainer.train_step()
        return start - after_one, after_one - trainer.current_prompt()

    first, plain_second = updates(0.0)
    first_again, momentum_second = updates(0.9)
    assert torch.equal(first, first_again)
    assert first.abs().max() > 0
    torch.testing.assert_close(momentum_second, plain_second + 0.9 * first)


def test_non_finite_loss_stops_with_a_clear_error(tiny_causal_backbone, sentiment_examples):
    prompt = _initial_prompt(tiny_causal_backbone)
    prompt[0, 0] = float("nan")
    config = TrainConfig(steps=1, batch_size=4, progress=False)
    trainer = PromptTrainer(tiny_causal_backbone, prompt, sentiment_examples, config, seed=0)
    with pytest.raises(NonFiniteLossError, match="learning rate"):
        trainer.train_step()


def test_warmup_longer_than_training_is_refused():
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(steps=5, warmup_steps=10)
