"""One method on one task and seed, in one run directory: set up, optimise, finish.

``run`` starts a new run directory, ``resume`` continues one from its last checkpoint. Under
``accelerate launch`` every process runs its share; only the main process calls the LLM,
writes the run directory and logs the run's messages (see ``llm_catalyst.distributed``).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from llm_catalyst.catalyst.checkpoint import checkpoint_payload, restore_checkpoint
from llm_catalyst.catalyst.config import RunConfig, load_run_config
from llm_catalyst.catalyst.domain import Candidate, rounds_of
from llm_catalyst.catalyst.finish import evaluate_on_test, results_record, save_artifact
from llm_catalyst.catalyst.loop import CatalystLoop
from llm_catalyst.catalyst.methods import SourceBuilder, get_method
from llm_catalyst.catalyst.output import RunOutput, RunProgress
from llm_catalyst.catalyst.parts import RunParts
from llm_catalyst.catalyst.protocols import run_name, selection_split
from llm_catalyst.catalyst.race import StartRace, race_field
from llm_catalyst.catalyst.search import HardPromptSearch
from llm_catalyst.catalyst.setup import setup
from llm_catalyst.catalyst.sources import MainProcessSource, ProposalSource
from llm_catalyst.catalyst.state import LoopState
from llm_catalyst.catalyst.stop import StopRequest
from llm_catalyst.catalyst.zero_shot import ZeroShotCache, zero_shot_key
from llm_catalyst.distributed import Distributed
from llm_catalyst.errors import TrainingError
from llm_catalyst.progress import NoProgress, ProgressSink, progress_for
from llm_catalyst.prompts.projection import project
from llm_catalyst.records import (
    DevEvalEvent,
    ErrorEvent,
    Metrics,
    PlanEvent,
    ResumeEvent,
    RunResults,
    SplitsEvent,
    ZeroShotEvent,
)
from llm_catalyst.rundir import RunDirectory
from llm_catalyst.tracking.run_tracker import attach_tracking
from llm_catalyst.training.scoring import evaluate_hard_prompt
from llm_catalyst.training.trainer import NonFiniteLossError

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """Where a run was written and what its results.json says. ``is_main`` is False in the
    other processes of a data-parallel run: they hold the same results but print nothing."""

    run_dir: Path
    results: RunResults
    is_main: bool = True


def run(
    config: RunConfig,
    console: Console | None = None,
    name: str | None = None,
    progress: ProgressSink | None = None,
    zero_shot: ZeroShotCache | None = None,
) -> RunResult:
    """Run ``config.method`` in a new run directory and return its results.

    Progress goes to ``progress``, or by default to ``console`` (stderr's): a live bar on a
    terminal, log lines elsewhere (``train.progress: false``: none); it is a display, redrawn
    as the run goes. The run's messages (its directory, the LLM plan, each round's decision)
    are records of the ``llm_catalyst`` logger instead, so that a host application routes them
    with the rest of its logging. ``zero_shot``: where the runs of a grid share their zero-shot
    scores (none: computed here). The run directory is made once the set-up has passed: a run
    refused there writes nothing."""
    dist = Distributed.from_environment(config.backbone.resolved_device())
    path = dist.on_main(
        lambda: RunDirectory.new_path(
            config.output_dir, name or run_name(config), timestamp=name is None
        )
    )
    run_dir = dist.run_directory(path)
    recipe = Recipe(config, run_dir, console, dist, progress, zero_shot)
    return recipe.execute(checkpoint=None, new=True)


def resume(
    path: Path,
    console: Console | None = None,
    progress: ProgressSink | None = None,
    zero_shot: ZeroShotCache | None = None,
) -> RunResult:
    """Continue the run in ``path`` from its last checkpoint (from the start if it has none).

    A finished run is not run again: its recorded results are returned.
    """
    run_dir = RunDirectory.open(path)
    if run_dir.is_finished:
        return RunResult(run_dir.path, run_dir.read_results())
    config = load_run_config(run_dir.path / "config.yaml")
    dist = Distributed.from_environment(config.backbone.resolved_device())
    checkpoint = run_dir.load_checkpoint()
    run_dir = dist.run_directory(run_dir.path)
    if checkpoint is None:
        run_dir.truncate_events(0)
    run_dir.mark_resumed()
    recipe = Recipe(config, run_dir, console, dist, progress, zero_shot)
    return recipe.execute(checkpoint=checkpoint)


class Recipe:
    """One method on one task and seed, in one run directory: set up, optimise, finish."""

    def __init__(
        self,
        config: RunConfig,
        run_dir: RunDirectory,
        console: Console | None,
        dist: Distributed,
        progress: ProgressSink | None = None,
        zero_shot: ZeroShotCache | None = None,
    ):
        self.config = config
        self.method = get_method(config.method)
        self.run_dir = run_dir
        self.dist = dist
        shown = config.train.progress and dist.is_main
        shown_on = console or Console(stderr=True)
        self.sink = (progress or progress_for(shown_on)) if shown else NoProgress()
        self.zero_shot_cache = zero_shot
        # tracking.report_to, checked on every process; only the main one's run directory
        # records events, so only its trackers report
        self.tracking = attach_tracking(config.tracking, run_dir, config)

    def execute(self, checkpoint: dict[str, Any] | None, new: bool = False) -> RunResult:
        """Set up, then (``new``: make the run directory,) optimise and finish. A stop
        (catalyst/stop.py) leaves the set-up at once, as the loops' rounds: a resume redoes it."""
        try:
            with StopRequest(self.run_dir.path, self.dist) as stop:
                with stop.abandonable("the set-up"):
                    parts, state, progress = self.set_up(checkpoint, new)
                checkpoint_now = lambda: self.save(parts, state)  # noqa: E731
                output = RunOutput(self.run_dir, checkpoint_now, stop, progress, self.dist.is_main)
                try:
                    self.optimise(parts, state, output)
                except NonFiniteLossError as error:
                    raise self._diverged(error, parts) from None
                return self.finish(parts, state, progress, stop)
        finally:
            self.sink.close()
            if self.tracking is not None:  # finished, stopped or failed
                self.tracking.finish()

    # -- set-up --------------------------------------------------------------------------------

    def set_up(
        self, checkpoint: dict[str, Any] | None, new: bool
    ) -> tuple[RunParts, LoopState, RunProgress]:
        """The run's parts and state: a fresh start (``new``: in a directory made only now that
        the configuration has proved valid) or the checkpoint's."""
        state = self._state(checkpoint)
        parts = setup(self.config, state, self.run_dir, self.dist)
        if new:
            self.dist.on_main(self._create_directory)
        if self.dist.is_main:
            _log.info("run directory: %s", self.run_dir.path)
        progress = RunProgress(self.sink, state, self._progress_total(parts))
        if checkpoint is None:
            self.start(parts, state, progress)
        else:
            self.restore(parts, state, progress, checkpoint)
        return parts, state, progress

    def _create_directory(self) -> None:
        config = self.config
        record = config.model_dump(mode="json")
        RunDirectory.create_at(self.run_dir.path, record, config.data.seed, config.protocol)

    def start(self, parts: RunParts, state: LoopState, progress: RunProgress) -> None:
        """First steps of a new run: record the splits and the plan, score the zero-shot
        hard prompt on test and the initial S on dev, write the first checkpoint."""
        splits, run_dir = parts.splits, self.run_dir
        run_dir.log(
            SplitsEvent(
                train=len(splits.train),
                dev=len(splits.dev),
                test=len(splits.test),
                source=splits.source,
                selection_split=selection_split(self.config),
            )
        )
        run_dir.log(PlanEvent(method=self.config.method, **parts.schedule.record().model_dump()))
        if self.config.evaluate_zero_shot:
            progress.stage("zero-shot on test")
            zero, reused = self._zero_shot(parts, state)
            state.zero_shot = zero
            run_dir.log(ZeroShotEvent(**zero.model_dump(), reused=reused))
        if parts.trainer is not None:
            prompt = parts.trainer.prompt
            result = parts.scorer.evaluate(prompt)
            improved = state.best.offer(0, result, prompt, parts.backbone)
            run_dir.log(DevEvalEvent(step=0, improved=improved, **result.model_dump()))
        self.save(parts, state)

    def restore(
        self,
        parts: RunParts,
        state: LoopState,
        progress: RunProgress,
        checkpoint: dict[str, Any],
    ) -> None:
        """Continue from ``checkpoint``: the trainer, the LLM's usage and the RNG states."""
        budget = None if parts.proposer is None else parts.proposer.gateway.budget
        restore_checkpoint(self.run_dir, checkpoint, parts.trainer, budget)
        step, rounds = self._step(parts), state.rounds_done
        self.run_dir.log(ResumeEvent(step=step, round=rounds))
        if self.dist.is_main:
            _log.info("resumed at step %d, round %d", step, rounds)
        progress.stepped(self._executed(parts, state) if self.method.trains else rounds)

    def _zero_shot(self, parts: RunParts, state: LoopState) -> tuple[Metrics, bool]:
        """The zero-shot score on test, and whether it was reused from the grid's cache
        (another run of the grid computed the very same score: catalyst/zero_shot.py)."""
        dist, cache, test = self.dist, self.zero_shot_cache, parts.splits.test
        batch_size = self.config.train.eval_batch_size
        key = ""
        if cache is not None:
            key = zero_shot_key(
                self.config.backbone, parts.backbone, test, batch_size, dist.world_size
            )
            known = dist.on_main(lambda: cache.get(key))
            if known is not None:
                return known, True
        with state.clock.phase("scoring_s"):
            zero = evaluate_hard_prompt(parts.backbone, test, batch_size, dist)
        state.compute.test_forward_passes += len(test)
        if cache is not None and dist.is_main:
            cache.put(key, zero)
        return zero, False

    # -- the method ----------------------------------------------------------------------------

    def optimise(self, parts: RunParts, state: LoopState, output: RunOutput) -> None:
        """The method's loop: gradient stages and rounds (or llm-only's search)."""
        source = self._source(parts, state)
        if parts.trainer is None:
            assert source is not None, "a method without gradient steps searches with a source"
            metric = self.config.prompt.metric
            start = parts.initial.embeddings
            text = project(start, parts.vocab, metric).text
            loop = self.config.loop
            rounds = rounds_of(loop.rounds, init_round=False)
            HardPromptSearch(
                source, parts.scorer, state, rounds, Candidate(text, start, "initial"), output
            ).run()
            return
        if self.method.starts is not None:
            self._race(parts, state, output)
        CatalystLoop(
            trainer=parts.trainer,
            scorer=parts.scorer,
            state=state,
            schedule=parts.schedule,
            config=self.config,
            vocab=parts.vocab,
            source=source,
            output=output,
        ).run()

    def _race(self, parts: RunParts, state: LoopState, output: RunOutput) -> None:
        """The start race (catalyst/race.py) among the random start, the instruction and the
        texts of the method's ``starts`` source, before the final stage."""
        assert parts.trainer is not None and self.method.starts is not None
        starts = self._main_process(self.method.starts, parts, state)
        race, prompt = self.config.race, self.config.prompt
        field = functools.partial(
            race_field,
            parts.initial,
            parts.splits.task,
            parts.vocab,
            prompt,
            race.instruction,
            starts,
        )
        rungs = self.method.rungs
        StartRace(parts.trainer, parts.scorer, state, race, rungs, output).run(field)

    def _source(self, parts: RunParts, state: LoopState) -> ProposalSource | None:
        """The method's proposal source, asked on the main process only."""
        if self.method.source is None:
            return None
        return self._main_process(self.method.source, parts, state)

    def _main_process(
        self, build: SourceBuilder, parts: RunParts, state: LoopState
    ) -> MainProcessSource:
        main = build(parts, state) if self.dist.is_main else None
        return MainProcessSource(main, self.dist)

    def _diverged(self, error: NonFiniteLossError, parts: RunParts) -> TrainingError:
        self.run_dir.log(ErrorEvent(step=self._step(parts), message=str(error)))
        kept = self.run_dir.load_checkpoint() or {}
        kept_step = (kept.get("trainer") or {}).get("step", 0)
        return TrainingError(
            f"{error}\n  run directory {self.run_dir.path}: training stopped; the last good "
            f"checkpoint (step {kept_step}) is kept in {self.run_dir.checkpoint_path.name}; fix "
            "the cause (usually train.lr) and start a new run"
        )

    # -- the end -------------------------------------------------------------------------------

    def finish(
        self, parts: RunParts, state: LoopState, progress: RunProgress, stop: StopRequest
    ) -> RunResult:
        """Evaluate the kept prompt on test once (left at once on a stop, as the final
        checkpoint is written), save it as an artifact, write results.json."""
        progress.stage("test", round="")
        with stop.abandonable("the test evaluation"):
            test = evaluate_on_test(parts, state, self.dist)
        if self.dist.is_main:
            save_artifact(parts, state, test, self.run_dir)
        steps = self._executed(parts, state)
        results = results_record(parts, state, test, steps, self.run_dir)
        self.run_dir.write_results(results)
        self.dist.finish()
        return RunResult(self.run_dir.path, results, self.dist.is_main)

    # -- helpers -------------------------------------------------------------------------------

    def save(self, parts: RunParts, state: LoopState) -> None:
        if not self.dist.is_main:
            return
        budget = None if parts.proposer is None else parts.proposer.gateway.budget
        payload = checkpoint_payload(self.run_dir, state, parts.trainer, budget)
        self.run_dir.save_checkpoint(payload)

    def _state(self, checkpoint: dict[str, Any] | None) -> LoopState:
        if checkpoint is None:
            return LoopState.fresh(self.config.train.select_by)
        return LoopState.from_payload(checkpoint["state"])

    def _progress_total(self, parts: RunParts) -> int:
        """What the progress counts to: optimizer steps, or llm-only's rounds."""
        return parts.schedule.total_steps if self.method.trains else parts.schedule.rounds

    @staticmethod
    def _step(parts: RunParts) -> int:
        return 0 if parts.trainer is None else parts.trainer.step

    @classmethod
    def _executed(cls, parts: RunParts, state: LoopState) -> int:
        """Every optimizer step the run has executed: the kept trajectory's and the discarded
        copies' (probes, cut race entrants), or a race's so far while it runs."""
        race = state.race
        if race is not None and race.winner is None:
            return state.compute.race_steps
        return cls._step(parts) + state.compute.discarded_steps
