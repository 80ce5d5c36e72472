"""One prompt-tuning run end to end: data, backbone, prompt, training, selection, test, artifact.

The protocol is the few-shot one of method.md: k-shot train, a separate k-shot dev split for
every selection (best prompt by dev), and the official evaluation split scored once at the end.
Under ``accelerate launch`` every process trains and evaluates its share; the main process writes
the run directory (see ``llm_catalyst.distributed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from llm_catalyst.backbones.base import Backbone
from llm_catalyst.backbones.config import build_backbone
from llm_catalyst.config import TuneConfig
from llm_catalyst.data.config import load_splits
from llm_catalyst.data.sampling import FewShotSplits
from llm_catalyst.distributed import Distributed
from llm_catalyst.prompts.artifact import save_prompt
from llm_catalyst.prompts.projection import Vocabulary, project
from llm_catalyst.prompts.soft_prompt import SoftPrompt, init_prompt
from llm_catalyst.records import (
    DevEvalEvent,
    RunResults,
    SplitsEvent,
    TrainStepEvent,
    ZeroShotEvent,
)
from llm_catalyst.rundir import RunDirectory
from llm_catalyst.training.scoring import EvalResult, evaluate, evaluate_hard_prompt
from llm_catalyst.training.trainer import PromptTrainer, StepRecord

PROTOCOL = "fewshot"


@dataclass(frozen=True)
class TuneResult:
    """What a tuning run found. ``is_main`` is False in the other processes of a data-parallel
    run: they hold the same numbers but must not print or write them again."""

    run_dir: Path
    best_step: int
    best_dev: EvalResult
    test: EvalResult
    zero_shot_test: EvalResult | None
    projected_text: str
    is_main: bool = True

    def summary(self) -> dict[str, object]:
        return {
            "run_dir": str(self.run_dir),
            "best_step": self.best_step,
            "dev": self.best_dev.as_dict(),
            "test": self.test.as_dict(),
            "zero_shot_test": None
            if self.zero_shot_test is None
            else self.zero_shot_test.as_dict(),
            "projected_text": self.projected_text,
        }


def _better(candidate: EvalResult, incumbent: EvalResult | None, select_by: str) -> bool:
    if incumbent is None:
        return True
    if select_by == "loss":
        return candidate.loss < incumbent.loss
    return (candidate.accuracy, -candidate.loss) > (incumbent.accuracy, -incumbent.loss)


class BestTracker:
    """Keeps the prompt (and head) with the best dev score seen so far."""

    def __init__(self, select_by: str):
        self.select_by = select_by
        self.result: EvalResult | None = None
        self.step = 0
        self.prompt: torch.Tensor | None = None
        self.head: dict[str, torch.Tensor] = {}

    def offer(
        self, step: int, result: EvalResult, prompt: torch.Tensor, backbone: Backbone
    ) -> bool:
        if not _better(result, self.result, self.select_by):
            return False
        self.result, self.step, self.prompt = result, step, prompt.detach().clone()
        self.head = {k: v.detach().clone() for k, v in backbone.head_state().items()}
        return True


def _test_split(config: TuneConfig, splits: FewShotSplits):
    if config.max_test_examples is None:
        return splits.test
    return splits.test[: config.max_test_examples]


def tune(config: TuneConfig, console: Console | None = None) -> TuneResult:
    """Train a soft prompt as configured; returns the result and writes a run directory."""
    dist = Distributed.from_environment(config.backbone.resolved_device())
    console = dist.console(console or Console(stderr=True))
    seed = config.data.seed
    torch.manual_seed(seed)
    splits = load_splits(config.data)
    backbone = build_backbone(config.backbone, splits.task)
    vocab = Vocabulary.of(backbone)
    initial: SoftPrompt = init_prompt(config.prompt, vocab, seed)
    path = dist.on_main(
        lambda: (
            RunDirectory.create(
                config.output_dir,
                f"{splits.task.name}-{config.backbone.model}-plain-s{seed}",
                config.model_dump(mode="json"),
                seed=seed,
                protocol=PROTOCOL,
            ).path
        )
    )
    run = dist.run_directory(path)
    console.print(f"run directory: {run.path}")
    run.log(
        SplitsEvent(
            train=len(splits.train),
            dev=len(splits.dev),
            test=len(splits.test),
            source=splits.source,
            selection_split="dev",
        )
    )
    test_examples = _test_split(config, splits)
    train_config = config.train

    zero_shot = None
    if config.evaluate_zero_shot:
        zero_shot = evaluate_hard_prompt(
            backbone, test_examples, train_config.eval_batch_size, dist
        )
        run.log(ZeroShotEvent(**zero_shot.as_dict()))
        console.print(f"zero-shot hard prompt: test accuracy {zero_shot.accuracy:.4f}")

    trainer = PromptTrainer(
        backbone, initial.embeddings, splits.train, train_config, seed, dist=dist
    )
    best = BestTracker(train_config.select_by)

    def evaluate_dev() -> None:
        result = evaluate(backbone, trainer.prompt, splits.dev, train_config.eval_batch_size, dist)
        improved = best.offer(trainer.step, result, trainer.prompt, backbone)
        run.log(DevEvalEvent(step=trainer.step, improved=improved, **result.as_dict()))

    evaluate_dev()
    with Progress(
        TextColumn("tuning"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeRemainingColumn(),
        console=console,
        disable=not (train_config.progress and dist.is_main),
    ) as progress:
        bar = progress.add_task("tune", total=train_config.steps, loss=float("nan"))

        def on_step(record: StepRecord) -> None:
            run.log(
                TrainStepEvent(
                    step=record.step, loss=record.loss, lr=record.lr, grad_norm=record.grad_norm
                )
            )
            progress.update(bar, advance=1, loss=record.loss)
            if record.step % train_config.eval_every == 0 or record.step == train_config.steps:
                evaluate_dev()

        trainer.run(train_config.steps, on_step)

    assert best.prompt is not None and best.result is not None
    backbone.load_head_state(best.head)
    test = evaluate(backbone, best.prompt, test_examples, train_config.eval_batch_size, dist)
    projection = project(best.prompt, vocab, config.prompt.metric)
    metrics = {
        "best_step": best.step,
        "dev": best.result.as_dict(),
        "test": test.as_dict(),
        "zero_shot_test": None if zero_shot is None else zero_shot.as_dict(),
        "train_size": len(splits.train),
    }
    if dist.is_main:
        save_prompt(
            run.artifact_dir,
            initial.with_embeddings(best.prompt),
            backbone,
            metrics=metrics,
            extra={"task": splits.task.name, "seed": seed},
            metric=config.prompt.metric,
        )
    result = TuneResult(
        run.path, best.step, best.result, test, zero_shot, projection.text, dist.is_main
    )
    run.write_results(
        RunResults.model_validate(
            {"method": "plain", "task": splits.task.name, "seed": seed, **result.summary()}
        )
    )
    dist.finish()
    return result
