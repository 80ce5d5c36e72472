"""Step 4 of method.md: the kept prompt scored on test once, saved as an artifact, and the run's
results.json.
"""

from __future__ import annotations

from llm_catalyst.catalyst.parts import RunParts
from llm_catalyst.catalyst.protocols import selection_split
from llm_catalyst.catalyst.setup import shares_backbone
from llm_catalyst.catalyst.state import LoopState
from llm_catalyst.distributed import Distributed
from llm_catalyst.prompts.artifact import save_prompt
from llm_catalyst.prompts.projection import project
from llm_catalyst.records import (
    RESULTS_FORMAT_VERSION,
    LLMUsage,
    Metrics,
    RunResults,
    WallClock,
)
from llm_catalyst.rundir import RunDirectory
from llm_catalyst.training.scoring import evaluate


def evaluate_on_test(parts: RunParts, state: LoopState, dist: Distributed) -> Metrics:
    """The best prompt by dev (with the head it was scored with) on the test split, once."""
    best = state.best
    assert best.prompt is not None and best.result is not None
    parts.backbone.load_head_state(best.head)
    test = parts.splits.test
    with state.clock.phase("scoring_s"):
        result = evaluate(
            parts.backbone, best.prompt, test, parts.config.train.eval_batch_size, dist
        )
    state.compute.test_forward_passes += len(test)
    return result


def save_artifact(parts: RunParts, state: LoopState, test: Metrics, run_dir: RunDirectory) -> None:
    """The kept prompt as a reusable artifact, with its scores and where it came from."""
    best, config = state.best, parts.config
    assert best.prompt is not None and best.result is not None
    save_prompt(
        run_dir.artifact_dir,
        parts.initial.with_embeddings(best.prompt),
        parts.backbone,
        metrics={
            "best_step": best.step,
            "dev": best.result.model_dump(),
            "test": test.model_dump(),
            "zero_shot_test": None if state.zero_shot is None else state.zero_shot.model_dump(),
            "train_size": len(parts.splits.train),
        },
        extra={
            "task": parts.splits.task.name,
            "seed": config.data.seed,
            "method": config.method,
            "origin": state.best_origin,
        },
        metric=config.prompt.metric,
    )


def results_record(
    parts: RunParts, state: LoopState, test: Metrics, steps: int, run_dir: RunDirectory
) -> RunResults:
    """results.json; ``steps`` is every optimizer step the run executed."""
    best, config = state.best, parts.config
    assert best.prompt is not None
    projection = project(best.prompt, parts.vocab, config.prompt.metric)
    compute = state.compute.model_copy(
        update={"gradient_steps": steps, "train_examples_seen": steps * config.train.batch_size}
    )
    return RunResults(
        format_version=RESULTS_FORMAT_VERSION,
        method=config.method,
        arm=config.arm,
        task=parts.splits.task.name,
        seed=config.data.seed,
        protocol=config.protocol,
        test=test,
        dev=best.result,
        best_step=best.step,
        best_origin=state.best_origin,
        zero_shot_test=state.zero_shot,
        projected_text=projection.text,
        projection_roundtrip_ok=projection.roundtrip_ok,
        selection_split=selection_split(config),
        schedule=parts.schedule.record(),
        rounds_done=state.rounds_done,
        restarts=state.restarts,
        race=None
        if state.race is None
        else state.race.record(compute.race_steps, compute.discarded_race_steps),
        wall_clock=WallClock(**state.clock.totals()),
        llm=llm_usage(parts, state),
        compute=compute,
        run_dir=str(run_dir.path),
    )


def llm_usage(parts: RunParts, state: LoopState) -> LLMUsage:
    if parts.proposer is None:
        return LLMUsage(cost=0.0, skipped_rounds=state.skipped_rounds)
    return parts.proposer.gateway.budget.usage_record().model_copy(
        update={
            "skipped_rounds": state.skipped_rounds,
            "model": parts.config.llm.model,
            "backend": parts.config.llm.backend,
            "shares_backbone_model": shares_backbone(parts.config, parts.backbone),
        }
    )
