"""One method on one task and seed, in one run directory: set up, optimise, finish.

``run`` starts a new run directory, ``resume`` continues one from its last checkpoint. Under
``accelerate launch`` every process runs its share; only the main process calls the LLM,
writes the run directory and prints (see ``llm_catalyst.distributed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from llm_catalyst.backbones.causal_lm import CausalLMBackbone
from llm_catalyst.backbones.config import build_backbone
from llm_catalyst.catalyst.bookkeeping import DevScorer, RoundBook, RunProgress
from llm_catalyst.catalyst.checkpoint import (
    Candidate,
    LoopState,
    StopRequest,
    checkpoint_payload,
    restore_checkpoint,
)
from llm_catalyst.catalyst.config import RunConfig, load_run_config
from llm_catalyst.catalyst.loop import CatalystLoop, HardPromptSearch
from llm_catalyst.catalyst.methods import SourceContext, get_method
from llm_catalyst.catalyst.protocols import protocol_splits, run_name, selection_split
from llm_catalyst.catalyst.sources import MainProcessSource
from llm_catalyst.catalyst.zero_shot import ZeroShotCache, zero_shot_key
from llm_catalyst.data.sampling import (
    evaluation_subset,
)
from llm_catalyst.distributed import Distributed
from llm_catalyst.errors import ConfigError, TrainingError
from llm_catalyst.llm.budget import Budget
from llm_catalyst.llm.gateway import build_gateway
from llm_catalyst.llm.proposer import Proposer
from llm_catalyst.progress import NoProgress, ProgressSink, progress_for
from llm_catalyst.prompts.artifact import save_prompt
from llm_catalyst.prompts.projection import Vocabulary, project
from llm_catalyst.prompts.soft_prompt import SoftPrompt, init_prompt, prompt_from_text
from llm_catalyst.records import (
    RESULTS_FORMAT_VERSION,
    DevEvalEvent,
    ErrorEvent,
    LLMUsage,
    Metrics,
    PlanEvent,
    ResumeEvent,
    RunResults,
    SplitsEvent,
    WallClock,
    ZeroShotEvent,
)
from llm_catalyst.rundir import RunDirectory
from llm_catalyst.training.scoring import evaluate, evaluate_hard_prompt
from llm_catalyst.training.trainer import NonFiniteLossError, PromptTrainer


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

    Progress goes to ``progress``, or by default to the console: a live bar on a terminal,
    log lines elsewhere (``train.progress: false``: none). ``zero_shot``: where the runs of a
    grid share their zero-shot scores (none: computed here)."""
    dist = Distributed.from_environment(config.backbone.resolved_device())
    path = dist.on_main(
        lambda: (
            RunDirectory.create(
                config.output_dir,
                name or run_name(config),
                config.model_dump(mode="json"),
                seed=config.data.seed,
                protocol=config.protocol,
                timestamp=name is None,
            ).path
        )
    )
    run_dir = dist.run_directory(path)
    return _Run(config, run_dir, console, dist, progress, zero_shot).execute(checkpoint=None)


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
    return _Run(config, run_dir, console, dist, progress, zero_shot).execute(checkpoint=checkpoint)


class _Run:
    """One method on one task and seed, in one run directory: prepare, optimise, finish."""

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
        self.zero_shot_cache = zero_shot
        self.method = get_method(config.method)
        self.run_dir = run_dir
        self.dist = dist
        self.console = dist.console(console or Console(stderr=True))
        shown = config.train.progress and dist.is_main
        self.sink = (progress or progress_for(self.console)) if shown else NoProgress()
        self.trainer: PromptTrainer | None = None
        self.proposer: Proposer | None = None
        self.llm_shares_backbone = False

    def execute(self, checkpoint: dict[str, Any] | None) -> RunResult:
        try:
            self._prepare(checkpoint)
            with StopRequest() as stop:
                try:
                    self._optimise(stop)
                except NonFiniteLossError as error:
                    raise self._diverged(error) from None
            return self._finish()
        finally:
            self.sink.close()

    # -- set-up --------------------------------------------------------------------------------

    def _prepare(self, checkpoint: dict[str, Any] | None) -> None:
        """Data, backbone, initial prompt, trainer and LLM; then a fresh start or the
        checkpoint's state."""
        config = self.config
        seed = config.data.seed
        torch.manual_seed(seed)
        self.splits = protocol_splits(config)
        self.backbone = build_backbone(config.backbone, self.splits.task)
        if isinstance(self.backbone, CausalLMBackbone):
            warning = self.backbone.label_word_warning()
            if warning is not None:
                self.console.print(warning, markup=False)
        if not self.method.trains and self.backbone.head_parameters():
            raise ConfigError(
                f"method {config.method} trains nothing, but backbone "
                f"{config.backbone.model!r} scores through a trainable linear head that would "
                f"stay random: use a causal-LM backbone (label words) for {config.method}"
            )
        self.vocab = Vocabulary.of(self.backbone)
        self.initial = self._initial_prompt()
        self.test = evaluation_subset(self.splits.test, config.max_test_examples)
        self.console.print(f"run directory: {self.run_dir.path}")
        self.state = (
            LoopState.fresh(config.train.select_by)
            if checkpoint is None
            else LoopState.from_payload(checkpoint["state"])
        )
        self.scorer = DevScorer(
            self.backbone,
            self.splits.dev,
            config.train.eval_batch_size,
            self.state,
            self.dist,
            path=config.loop.scoring,
            seed=seed,
        )
        epoch = -(-len(self.splits.train) // config.train.batch_size)
        self.schedule = config.loop.schedule(config.train.steps, epoch)
        total = self.schedule.total_steps if self.method.trains else self.schedule.rounds
        self.progress = RunProgress(self.sink, self.state, total)
        if self.method.needs_llm and self.dist.is_main:
            self.proposer = self._proposer()
            self.console.print(self.proposer.plan(self._llm_rounds()))
        if self.method.trains:
            self.trainer = PromptTrainer(
                self.backbone,
                self.initial.embeddings,
                self.splits.train,
                config.train,
                seed,
                self.schedule.total_steps,
                dist=self.dist,
            )
        if checkpoint is None:
            self._start()
        else:
            restore_checkpoint(self.run_dir, checkpoint, self.trainer, self._budget())
            rounds = self.state.rounds_done
            self.run_dir.log(ResumeEvent(step=self._step(), round=rounds))
            self.console.print(f"resumed at step {self._step()}, round {rounds}")
            executed = self._step() + self.state.counters.discarded_probe_steps
            self.progress.stepped(executed if self.method.trains else rounds)

    def _initial_prompt(self) -> SoftPrompt:
        """``prompt.init``, or the task's instruction for a method that starts from it."""
        config, task = self.config, self.splits.task
        if not self.method.init_from_instruction:
            return init_prompt(config.prompt, self.vocab, config.data.seed)
        if config.prompt.init != "random":
            raise ConfigError(
                f"method {config.method} starts from the task's instruction, but prompt.init "
                f"is {config.prompt.init!r}: drop prompt.init or use method plain"
            )
        if not task.instruction:
            raise ConfigError(
                f"method {config.method} starts from the task's hand-written instruction, but "
                f"task {task.name!r} has none: set `instruction` in its task spec, or use "
                "method plain with prompt.init: text"
            )
        prompt = config.prompt
        return prompt_from_text(task.instruction, self.vocab, prompt.length, prompt.fit_policy())

    def _proposer(self) -> Proposer:
        llm = self.config.llm
        loaded = None
        same_model = llm.backend == "local_hf" and llm.model == self.config.backbone.model
        if same_model and isinstance(self.backbone, CausalLMBackbone):
            loaded = (self.backbone.model, self.backbone.tokenizer)  # one model, loaded once
        self.llm_shares_backbone = loaded is not None
        gateway = build_gateway(llm, loaded, log_path=self.run_dir.llm_log_path)
        return Proposer(gateway, llm, run_seed=self.config.data.seed)

    def _start(self) -> None:
        """First steps of a new run: record the splits and the plan, score the zero-shot
        hard prompt on test and the initial S on dev, write the first checkpoint."""
        config, state, backbone = self.config, self.state, self.backbone
        self.run_dir.log(
            SplitsEvent(
                train=len(self.splits.train),
                dev=len(self.splits.dev),
                test=len(self.test),
                source=self.splits.source,
                selection_split=selection_split(config),
            )
        )
        self.run_dir.log(PlanEvent(method=config.method, **self.schedule.record().model_dump()))
        if config.evaluate_zero_shot:
            self.progress.stage("zero-shot on test")
            zero, reused = self._zero_shot()
            state.zero_shot = zero.model_dump()
            self.run_dir.log(ZeroShotEvent(**zero.model_dump(), reused=reused))
        if self.trainer is not None:
            result = self.scorer.evaluate(self.trainer.prompt)
            improved = state.best.offer(0, result, self.trainer.prompt, backbone)
            self.run_dir.log(DevEvalEvent(step=0, improved=improved, **result.model_dump()))
        self._save()

    def _zero_shot(self) -> tuple[Metrics, bool]:
        """The zero-shot score on test, and whether it was reused from the grid's cache
        (another run of the grid computed the very same score: catalyst/zero_shot.py)."""
        config, dist, cache = self.config, self.dist, self.zero_shot_cache
        batch_size = config.train.eval_batch_size
        key = ""
        if cache is not None:
            key = zero_shot_key(
                config.backbone, self.backbone, self.test, batch_size, dist.world_size
            )
            known = dist.on_main(lambda: cache.get(key))
            if known is not None:
                return known, True
        with self.state.clock.phase("scoring_s"):
            zero = evaluate_hard_prompt(self.backbone, self.test, batch_size, dist)
        self.state.counters.test_forward_passes += len(self.test)
        if cache is not None and dist.is_main:
            cache.put(key, zero)
        return zero, False

    def _llm_rounds(self) -> int:
        return self.config.loop.asking_rounds(self.method.trains)

    def _budget(self) -> Budget | None:
        return None if self.proposer is None else self.proposer.gateway.budget

    def _step(self) -> int:
        return 0 if self.trainer is None else self.trainer.step

    def _save(self) -> None:
        if not self.dist.is_main:
            return
        payload = checkpoint_payload(self.run_dir, self.state, self.trainer, self._budget())
        self.run_dir.save_checkpoint(payload)

    def _optimise(self, stop: StopRequest) -> None:
        if self.method.build_source is None:
            source = None
        else:
            context = SourceContext(
                task=self.splits.task,
                vocab=self.vocab,
                length=self.config.prompt.length,
                fit=self.config.prompt.fit_policy(),
                num_proposals=self.config.llm.proposer.num_proposals,
                seed=self.config.data.seed,
                state=self.state,
                proposer=self.proposer,
                backbone=self.backbone,
                train=tuple(self.splits.train),
                batch_size=self.config.train.eval_batch_size,
            )
            main = self.method.build_source(context) if self.dist.is_main else None
            source = MainProcessSource(main, self.dist)
        book = RoundBook(
            state=self.state,
            scorer=self.scorer,
            run_dir=self.run_dir,
            rounds=self._llm_rounds(),
            save=self._save,
            stop=stop,
            say=self.console.print,
            progress=self.progress,
            dist=self.dist,
            first_round=0 if self._llm_rounds() > self.schedule.rounds else 1,
        )
        if self.trainer is None:
            assert source is not None, "a method without gradient steps searches with a source"
            text = project(self.initial.embeddings, self.vocab, self.config.prompt.metric).text
            start = Candidate(text, self.initial.embeddings, "initial prompt")
            HardPromptSearch(source, book, start).run()
            return
        CatalystLoop(
            trainer=self.trainer,
            schedule=self.schedule,
            config=self.config.loop,
            source=source,
            book=book,
            vocab=self.vocab,
            metric=self.config.prompt.metric,
            eval_every=self.config.train.eval_every,
        ).run()

    def _diverged(self, error: NonFiniteLossError) -> TrainingError:
        self.run_dir.log(ErrorEvent(step=self._step(), message=str(error)))
        kept = self.run_dir.load_checkpoint() or {}
        kept_step = (kept.get("trainer") or {}).get("step", 0)
        return TrainingError(
            f"{error}\n  run directory {self.run_dir.path}: training stopped; the last good "
            f"checkpoint (step {kept_step}) is kept in {self.run_dir.checkpoint_path.name}; fix "
            "the cause (usually train.lr) and start a new run"
        )

    # -- the end -------------------------------------------------------------------------------

    def _finish(self) -> RunResult:
        """Evaluate the kept prompt on test once, save it as an artifact, write results.json."""
        config, state, backbone = self.config, self.state, self.backbone
        best = state.best
        assert best.prompt is not None and best.result is not None
        self.progress.stage("test", round="")
        backbone.load_head_state(best.head)
        with state.clock.phase("scoring_s"):
            result = evaluate(
                backbone, best.prompt, self.test, config.train.eval_batch_size, self.dist
            )
        state.counters.test_forward_passes += len(self.test)
        projection = project(best.prompt, self.vocab, config.prompt.metric)
        task = self.splits.task.name
        steps = self._step() + state.counters.discarded_probe_steps  # every optimizer step
        if self.dist.is_main:
            save_prompt(
                self.run_dir.artifact_dir,
                self.initial.with_embeddings(best.prompt),
                backbone,
                metrics={
                    "best_step": best.step,
                    "dev": best.result.model_dump(),
                    "test": result.model_dump(),
                    "zero_shot_test": state.zero_shot,
                    "train_size": len(self.splits.train),
                },
                extra={
                    "task": task,
                    "seed": config.data.seed,
                    "method": config.method,
                    "origin": state.best_origin,
                },
                metric=config.prompt.metric,
            )
        results = RunResults(
            format_version=RESULTS_FORMAT_VERSION,
            method=config.method,
            arm=config.arm,
            task=task,
            seed=config.data.seed,
            protocol=config.protocol,
            test=Metrics(**result.model_dump()),
            dev=Metrics(**best.result.model_dump()),
            best_step=best.step,
            best_origin=state.best_origin,
            zero_shot_test=None if state.zero_shot is None else Metrics(**state.zero_shot),
            projected_text=projection.text,
            projection_roundtrip_ok=projection.roundtrip_ok,
            selection_split=selection_split(config),
            schedule=self.schedule.record(),
            rounds_done=state.rounds_done,
            restarts=state.restarts,
            wall_clock=WallClock(**state.clock.totals()),
            llm=self._llm_usage(state),
            budget=state.counters.spent(steps, config.train.batch_size),
            run_dir=str(self.run_dir.path),
        )
        self.run_dir.write_results(results)
        self.dist.finish()
        return RunResult(self.run_dir.path, results, self.dist.is_main)

    def _llm_usage(self, state: LoopState) -> LLMUsage:
        budget = self._budget()
        if budget is None:
            return LLMUsage(cost=0.0, skipped_rounds=state.skipped_rounds)
        return budget.usage_record().model_copy(
            update={
                "skipped_rounds": state.skipped_rounds,
                "model": self.config.llm.model,
                "backend": self.config.llm.backend,
                "shares_backbone_model": self.llm_shares_backbone,
            }
        )
