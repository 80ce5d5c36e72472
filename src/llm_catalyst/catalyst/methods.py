"""The five methods under one budget of gradient steps, and the runs that execute them.

    plain               prompt tuning alone: ``train.steps`` gradient steps, best S by dev
    random-restart      the catalyst's schedule and selection; the C proposals of a round are
                        prompts of random vocabulary tokens
    projection-restart  the catalyst's schedule and selection; the proposal is the pool's best
                        projected trajectory text (no LLM)
    llm-only            OPRO-style search over hard prompts: the same LLM, the same number of
                        rounds (so LLM calls), the scored history shown worst to best; no gradients
    catalyst            the loop of method.md with the LLM proposing restarts

The gradient methods share the schedule (N stages of m steps, then M), the selection policy
and the checkpoints, so the controls differ from the catalyst only in where restarts come from.

Protocols: ``fewshot`` samples k-shot train and dev splits from the train pool and reports the
official evaluation split once; ``paper`` trains on the whole train pool and uses the
evaluation split both to select and to report, as the reference code did (see config.py).

Under ``accelerate launch`` every process runs the method on its share of each batch and of
each evaluation; the main process alone calls the LLM, writes the run directory and prints
(see ``llm_catalyst.distributed``).

Public API:
    RunResult(run_dir, results, is_main=True)
    run(config, console=None, name=None) -> RunResult   a new run directory under output_dir
                                          (``name`` makes it exactly output_dir/name)
    resume(path, console=None) -> RunResult             continue a killed or interrupted run
    protocol_splits(config) -> FewShotSplits
    LLMSource, RandomSource, ProjectionSource           the proposal sources
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from llm_catalyst.backbones.causal_lm import CausalLMBackbone
from llm_catalyst.backbones.config import build_backbone
from llm_catalyst.catalyst.checkpoint import (
    Candidate,
    LoopState,
    StopRequest,
    checkpoint_payload,
    restore_checkpoint,
)
from llm_catalyst.catalyst.config import RunConfig, load_run_config
from llm_catalyst.catalyst.loop import (
    CatalystLoop,
    DevScorer,
    MainProcessSource,
    Proposals,
    ProposalSource,
    RoundInput,
    RunInterrupted,
)
from llm_catalyst.data.config import load_data, load_splits
from llm_catalyst.data.sampling import FewShotSplits
from llm_catalyst.data.tasks import Task
from llm_catalyst.distributed import Distributed
from llm_catalyst.errors import ConfigError, TrainingError
from llm_catalyst.llm.budget import Budget
from llm_catalyst.llm.gateway import build_gateway
from llm_catalyst.llm.proposer import Proposer, ScoredPrompt
from llm_catalyst.prompts.artifact import save_prompt
from llm_catalyst.prompts.projection import FitPolicy, Vocabulary, embed_text, project
from llm_catalyst.prompts.soft_prompt import init_prompt, random_prompt
from llm_catalyst.rundir import RunDirectory
from llm_catalyst.training.scoring import evaluate, evaluate_hard_prompt
from llm_catalyst.training.trainer import NonFiniteLossError, PromptTrainer

LLM_METHODS = frozenset({"catalyst", "llm-only"})


@dataclass(frozen=True)
class RunResult:
    """Where a run was written and what its results.json says.

    ``is_main`` is False in the other processes of a data-parallel run: they hold the same
    results but should not print them again.
    """

    run_dir: Path
    results: dict[str, Any]
    is_main: bool = True


# -- proposal sources ------------------------------------------------------------------------


@dataclass
class LLMSource:
    """The instructor: the LLM reads the task and the scored pool and writes C new prompts,
    each fitted to the prompt's P slots by the fit policy (``pad_current`` pads with S)."""

    proposer: Proposer
    task: Task
    vocab: Vocabulary
    length: int
    fit: FitPolicy
    state: LoopState

    def propose(self, request: RoundInput) -> Proposals:
        history = [
            ScoredPrompt(c.text, c.result.loss, c.result.accuracy)
            for c in request.pool
            if c.result is not None
        ]
        with self.state.clock.phase("llm_s"):
            answer = self.proposer.propose(
                self.task, history, request.round_index, tried=request.tried
            )
        candidates: list[Candidate] = []
        unfit: list[dict[str, str]] = []
        for text in answer.proposals:
            try:
                fitted = embed_text(
                    text, self.vocab, self.length, self.fit, current=request.current.rows
                )
            except ConfigError as error:
                unfit.append({"text": text, "reason": str(error)})
                continue
            candidates.append(Candidate(text, fitted.embeddings, "llm"))
        details = {
            "status": answer.status,
            "llm_reason": answer.reason,
            "calls": answer.calls,
            "cache_hits": answer.cache_hits,
            "rejected": [asdict(r) for r in answer.rejected] + unfit,
        }
        skip_reason = ""
        if not candidates:
            skip_reason = answer.reason or f"none of {len(answer.proposals)} proposal(s) fits"
        return Proposals(tuple(candidates), skip_reason, details)


@dataclass
class RandomSource:
    """C prompts of distinct random vocabulary tokens, seeded by (seed, round, index)."""

    vocab: Vocabulary
    length: int
    count: int
    seed: int

    def propose(self, request: RoundInput) -> Proposals:
        candidates = []
        for index in range(self.count):
            entropy = [self.seed, request.round_index, index]
            seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
            prompt = random_prompt(self.vocab, self.length, seed)
            ids = [i for i in prompt.init_token_ids or () if i is not None]
            text = self.vocab.tokenizer.decode(ids)
            candidates.append(Candidate(text, prompt.embeddings, "random tokens"))
        return Proposals(tuple(candidates))


class ProjectionSource:
    """The pool's best projected trajectory text by dev loss (already scored: no extra pass)."""

    def propose(self, request: RoundInput) -> Proposals:
        scored = [c for c in request.pool if c.result is not None]
        if not scored:
            return Proposals(skip_reason="the pool is empty")
        best = min(scored, key=lambda c: c.result.loss if c.result else float("inf"))
        return Proposals(
            (Candidate(best.text, best.rows, f"projection ({best.source})", best.result),)
        )


# -- protocols -------------------------------------------------------------------------------


def protocol_splits(config: RunConfig) -> FewShotSplits:
    """fewshot: k-shot train and dev from the train pool; paper: the whole pool for training
    and the evaluation split as dev too (the reference code's leak, reproduced on purpose)."""
    if config.protocol == "fewshot":
        return load_splits(config.data)
    data = load_data(config.data)
    test = data.test[: config.max_test_examples]
    return FewShotSplits(
        task=data.task,
        train=data.train,
        dev=test,
        test=test,
        seed=config.data.seed,
        shots=None,
        dev_shots=0,
        source=data.source,
    )


# -- running a method ------------------------------------------------------------------------


def _selection_split(config: RunConfig) -> str:
    return "test" if config.protocol == "paper" else "dev"


def _run_name(config: RunConfig) -> str:
    task = config.data.task if isinstance(config.data.task, str) else config.data.task.name
    model = Path(config.backbone.model).name
    return f"{task}-{model}-{config.method}-s{config.data.seed}"


def run(config: RunConfig, console: Console | None = None, name: str | None = None) -> RunResult:
    """Run ``config.method`` in a new run directory and return its results."""
    dist = Distributed.from_environment(config.backbone.resolved_device())
    path = dist.on_main(
        lambda: (
            RunDirectory.create(
                config.output_dir,
                name or _run_name(config),
                config.model_dump(mode="json"),
                seed=config.data.seed,
                protocol=config.protocol,
                timestamp=name is None,
            ).path
        )
    )
    return _Run(config, dist.run_directory(path), console, dist).execute(checkpoint=None)


def resume(path: Path, console: Console | None = None) -> RunResult:
    """Continue the run in ``path`` from its last checkpoint (from the start if it has none).

    A finished run is not run again: its recorded results are returned.
    """
    run_dir = RunDirectory.open(path)
    if run_dir.is_finished:
        results = json.loads((run_dir.path / "results.json").read_text(encoding="utf-8"))
        return RunResult(run_dir.path, results)
    config = load_run_config(run_dir.path / "config.yaml")
    dist = Distributed.from_environment(config.backbone.resolved_device())
    checkpoint = run_dir.load_checkpoint()
    run_dir = dist.run_directory(run_dir.path)
    if checkpoint is None:
        run_dir.truncate_events(0)
    run_dir.mark_resumed()
    return _Run(config, run_dir, console, dist).execute(checkpoint=checkpoint)


class _Run:
    """One method on one task and seed, in one run directory: prepare, optimise, finish."""

    def __init__(
        self,
        config: RunConfig,
        run_dir: RunDirectory,
        console: Console | None,
        dist: Distributed,
    ):
        self.config = config
        self.run_dir = run_dir
        self.dist = dist
        self.console = dist.console(console or Console(stderr=True))
        self.trainer: PromptTrainer | None = None
        self.proposer: Proposer | None = None
        self.llm_shares_backbone = False

    def execute(self, checkpoint: dict[str, Any] | None) -> RunResult:
        self._prepare(checkpoint)
        with StopRequest() as stop:
            try:
                self._optimise(stop)
            except NonFiniteLossError as error:
                raise self._diverged(error) from None
        return self._finish()

    # -- set-up --------------------------------------------------------------------------------

    def _prepare(self, checkpoint: dict[str, Any] | None) -> None:
        """Data, backbone, initial prompt, trainer and LLM; then a fresh start or the
        checkpoint's state."""
        config = self.config
        seed = config.data.seed
        torch.manual_seed(seed)
        self.splits = protocol_splits(config)
        self.backbone = build_backbone(config.backbone, self.splits.task)
        if config.method == "llm-only" and self.backbone.head_parameters():
            raise ConfigError(
                f"method llm-only trains nothing, but backbone {config.backbone.model!r} scores "
                "through a trainable linear head that would stay random: use a causal-LM "
                "backbone (label words) for llm-only"
            )
        self.vocab = Vocabulary.of(self.backbone)
        self.initial = init_prompt(config.prompt, self.vocab, seed)
        self.test = self.splits.test[: config.max_test_examples]
        self.console.print(f"run directory: {self.run_dir.path}")
        self.state = (
            LoopState.fresh(config.train.select_by)
            if checkpoint is None
            else LoopState.from_payload(checkpoint["state"])
        )
        self.scorer = DevScorer(
            self.backbone, self.splits.dev, config.train.eval_batch_size, self.state, self.dist
        )
        epoch = -(-len(self.splits.train) // config.train.batch_size)
        self.schedule = config.loop.schedule(config.train.steps, epoch)
        if config.method in LLM_METHODS and self.dist.is_main:
            self.proposer = self._proposer()
            self.console.print(self.proposer.plan(self.schedule.rounds))
        if config.method != "llm-only":
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
            self.run_dir.log_event("resume", step=self._step(), round=rounds)
            self.console.print(f"resumed at step {self._step()}, round {rounds}")

    def _proposer(self) -> Proposer:
        llm = self.config.llm
        loaded = None
        same_model = llm.backend == "local_hf" and llm.model == self.config.backbone.model
        if same_model and isinstance(self.backbone, CausalLMBackbone):
            loaded = (self.backbone.model, self.backbone.tokenizer)  # one model, loaded once
        self.llm_shares_backbone = loaded is not None
        gateway = build_gateway(llm, loaded, log_path=self.run_dir.llm_log_path)
        return Proposer(gateway, llm)

    def _start(self) -> None:
        """First steps of a new run: record the splits and the plan, score the zero-shot
        hard prompt on test and the initial S on dev, write the first checkpoint."""
        config, state, backbone = self.config, self.state, self.backbone
        self.run_dir.log_event(
            "splits",
            train=len(self.splits.train),
            dev=len(self.splits.dev),
            test=len(self.test),
            source=self.splits.source,
            selection_split=_selection_split(config),
        )
        self.run_dir.log_event("plan", method=config.method, **self.schedule.as_dict())
        if config.evaluate_zero_shot:
            with state.clock.phase("scoring_s"):
                zero = evaluate_hard_prompt(
                    backbone, self.test, config.train.eval_batch_size, self.dist
                )
            state.counters.test_forward_passes += len(self.test)
            state.zero_shot = zero.as_dict()
            self.run_dir.log_event("zero_shot_test", **zero.as_dict())
        if self.trainer is not None:
            result = self.scorer.evaluate(self.trainer.prompt)
            improved = state.best.offer(0, result, self.trainer.prompt, backbone)
            self.run_dir.log_event("dev_eval", step=0, improved=improved, **result.as_dict())
        self._save()

    def _budget(self) -> Budget | None:
        return None if self.proposer is None else self.proposer.gateway.budget

    def _step(self) -> int:
        return 0 if self.trainer is None else self.trainer.step

    def _save(self) -> None:
        if not self.dist.is_main:
            return
        payload = checkpoint_payload(self.run_dir, self.state, self.trainer, self._budget())
        self.run_dir.save_checkpoint(payload)

    def _source(self) -> ProposalSource | None:
        """The method's proposal source, asked on the main process only (None for plain)."""
        if self.config.method == "plain":
            return None
        return MainProcessSource(self._main_source() if self.dist.is_main else None, self.dist)

    def _main_source(self) -> ProposalSource:
        config = self.config
        if self.proposer is not None:
            fit = config.prompt.fit_policy()
            task, length = self.splits.task, config.prompt.length
            return LLMSource(self.proposer, task, self.vocab, length, fit, self.state)
        if config.method == "random-restart":
            count = config.llm.proposer.num_proposals
            return RandomSource(self.vocab, config.prompt.length, count, config.data.seed)
        assert config.method == "projection-restart", config.method
        return ProjectionSource()

    # -- optimisation --------------------------------------------------------------------------

    def _optimise(self, stop: StopRequest) -> None:
        source = self._source()
        if self.trainer is None:
            assert source is not None
            self._search(source, stop)
            return
        CatalystLoop(
            trainer=self.trainer,
            schedule=self.schedule,
            config=self.config.loop,
            source=source,
            scorer=self.scorer,
            vocab=self.vocab,
            metric=self.config.prompt.metric,
            state=self.state,
            run_dir=self.run_dir,
            save=self._save,
            stop=stop,
            eval_every=self.config.train.eval_every,
            say=self.console.print,
            dist=self.dist,
        ).run()

    def _diverged(self, error: NonFiniteLossError) -> TrainingError:
        self.run_dir.log_event("error", step=self._step(), message=str(error))
        kept = self.run_dir.load_checkpoint() or {}
        kept_step = (kept.get("trainer") or {}).get("step", 0)
        return TrainingError(
            f"{error}\n  run directory {self.run_dir.path}: training stopped; the last good "
            f"checkpoint (step {kept_step}) is kept in {self.run_dir.checkpoint_path.name}; fix "
            "the cause (usually train.lr) and start a new run"
        )

    def _search(self, source: ProposalSource, stop: StopRequest) -> None:
        """llm-only, OPRO-style: each round the LLM sees every prompt scored so far (worst to
        best) and proposes C new ones, which are scored on dev; the best by dev is kept."""
        state, backbone = self.state, self.backbone
        if not state.history:
            text = project(self.initial.embeddings, self.vocab, self.config.prompt.metric).text
            start = Candidate(text, self.initial.embeddings, "initial prompt")
            (start,) = self.scorer.score([start])
            assert start.result is not None
            state.best.offer(0, start.result, start.rows, backbone)
            state.history.append(start)
            self.run_dir.log_event("dev_eval", step=0, improved=True, **start.result.as_dict())
            self._save()
        for r in range(state.rounds_done, self.schedule.rounds):
            current = min(state.history, key=lambda c: c.result.loss if c.result else 0.0)
            proposals = source.propose(
                RoundInput(r, current, tuple(state.history), tuple(state.tried))
            )
            scored = self.scorer.score(proposals.candidates)
            chosen = None
            for candidate in scored:
                assert candidate.result is not None
                if state.best.offer(0, candidate.result, candidate.rows, backbone):
                    chosen = candidate
                    state.best_origin = f"round {r + 1}: {candidate.text}"
            skip_reason = (proposals.skip_reason or "no proposals") if not scored else None
            if skip_reason is not None:
                reason = f"round skipped: {skip_reason}"
                state.skipped_rounds += 1
            elif chosen is None:
                reason = "no proposal beats the best prompt so far"
            else:
                reason = "the best prompt so far by dev score"
            self.run_dir.log_event(
                "round",
                round=r + 1,
                step=0,
                pool=[c.record() for c in state.history],
                proposals=[c.record() for c in scored],
                chosen=None if chosen is None else chosen.record(),
                reason=reason,
                skipped=not scored,
                skip_reason=skip_reason,
                selection="best by dev",
                details=dict(proposals.details),
            )
            state.history.extend(scored)
            state.tried.extend(c.text for c in scored)
            state.rounds_done = r + 1
            self.console.print(f"round {r + 1}/{self.schedule.rounds}: {reason}")
            self._save()
            if self.dist.any(stop.requested):
                raise RunInterrupted(
                    f"interrupted after round {r + 1}; a checkpoint was written: continue with "
                    f"`llm-catalyst run --resume {self.run_dir.path}`"
                )

    # -- the end -------------------------------------------------------------------------------

    def _finish(self) -> RunResult:
        """Evaluate the kept prompt on test once, save it as an artifact, write results.json."""
        config, state, backbone = self.config, self.state, self.backbone
        best = state.best
        assert best.prompt is not None and best.result is not None
        backbone.load_head_state(best.head)
        with state.clock.phase("scoring_s"):
            result = evaluate(
                backbone, best.prompt, self.test, config.train.eval_batch_size, self.dist
            )
        state.counters.test_forward_passes += len(self.test)
        projection = project(best.prompt, self.vocab, config.prompt.metric)
        task = self.splits.task.name
        if self.dist.is_main:
            save_prompt(
                self.run_dir.artifact_dir,
                self.initial.with_embeddings(best.prompt),
                backbone,
                metrics={
                    "best_step": best.step,
                    "dev": best.result.as_dict(),
                    "test": result.as_dict(),
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
        results = {
            "method": config.method,
            "task": task,
            "seed": config.data.seed,
            "protocol": config.protocol,
            "test": result.as_dict(),
            "dev": best.result.as_dict(),
            "best_step": best.step,
            "best_origin": state.best_origin,
            "zero_shot_test": state.zero_shot,
            "projected_text": projection.text,
            "projection_roundtrip_ok": projection.roundtrip_ok,
            "selection_split": _selection_split(config),
            "schedule": self.schedule.as_dict(),
            "rounds_done": state.rounds_done,
            "restarts": state.restarts,
            "wall_clock": state.clock.totals(),
            "llm": self._llm_usage(state),
            "budget": {
                "gradient_steps": self._step(),
                "train_examples_seen": self._step() * config.train.batch_size,
                "dev_prompts_scored": state.counters.dev_prompts,
                "dev_forward_passes": state.counters.dev_forward_passes,
                "test_forward_passes": state.counters.test_forward_passes,
            },
            "run_dir": str(self.run_dir.path),
        }
        self.run_dir.write_results(results)
        self.dist.finish()
        return RunResult(self.run_dir.path, results, self.dist.is_main)

    def _llm_usage(self, state: LoopState) -> dict[str, Any]:
        """Calls made by the method, answered fresh or from the cache (a resumed run replays
        answers from the cache); ``cost`` is what this run's fresh calls cost."""
        budget = self._budget()
        if budget is None:
            return {
                "calls": 0,
                "fresh_calls": 0,
                "cache_hits": 0,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "cost": 0.0,
                "skipped_rounds": state.skipped_rounds,
            }
        return {
            "calls": budget.calls + budget.cache_hits,
            "fresh_calls": budget.calls,
            "cache_hits": budget.cache_hits,
            "prompt_tokens": budget.usage.prompt_tokens + budget.cached_usage.prompt_tokens,
            "completion_tokens": (
                budget.usage.completion_tokens + budget.cached_usage.completion_tokens
            ),
            "cost": round(budget.cost_usd, 6),
            "skipped_rounds": state.skipped_rounds,
            "model": self.config.llm.model,
            "backend": self.config.llm.backend,
            "shares_backbone_model": self.llm_shares_backbone,
        }
