"""A run's set-up: data, backbone, vocabulary, initial prompt, trainer, LLM and dev scorer, made
once from the config and returned as one frozen value (``RunParts``).
"""

from __future__ import annotations

import logging
from dataclasses import replace

import torch

from llm_catalyst.backbones.base import Backbone
from llm_catalyst.backbones.causal_lm import CausalLMBackbone
from llm_catalyst.backbones.config import build_backbone
from llm_catalyst.catalyst.config import RunConfig
from llm_catalyst.catalyst.dev_scorer import DevScorer
from llm_catalyst.catalyst.domain import rounds_of
from llm_catalyst.catalyst.methods import Method, get_method
from llm_catalyst.catalyst.parts import RunParts
from llm_catalyst.catalyst.protocols import protocol_splits
from llm_catalyst.catalyst.schedule import Schedule, check_race_budget
from llm_catalyst.catalyst.state import LoopState
from llm_catalyst.data.sampling import evaluation_subset
from llm_catalyst.data.tasks import Task
from llm_catalyst.distributed import Distributed
from llm_catalyst.errors import ConfigError
from llm_catalyst.llm.gateway import build_gateway
from llm_catalyst.llm.proposer import Proposer
from llm_catalyst.prompts.projection import Vocabulary
from llm_catalyst.prompts.soft_prompt import SoftPrompt, init_prompt, prompt_from_text
from llm_catalyst.rundir import RunDirectory
from llm_catalyst.training.trainer import PromptTrainer

_log = logging.getLogger(__name__)


def setup(
    config: RunConfig, state: LoopState, run_dir: RunDirectory, dist: Distributed
) -> RunParts:
    """The parts of a run of ``config``; ``state`` is what its scorer counts into. What the user
    should know of them (label words cut, the LLM's plan) is logged by the main process alone:
    the other processes of a data-parallel run would only repeat it."""
    method = get_method(config.method)
    torch.manual_seed(config.data.seed)
    splits = protocol_splits(config)
    splits = replace(splits, test=tuple(evaluation_subset(splits.test, config.max_test_examples)))
    backbone = build_backbone(config.backbone, splits.task)
    if isinstance(backbone, CausalLMBackbone):
        warning = backbone.label_word_warning()
        if warning is not None and dist.is_main:
            _log.warning(warning)
    if not method.trains and backbone.head_parameters():
        raise ConfigError(
            f"method {config.method} trains nothing, but backbone "
            f"{config.backbone.model!r} scores through a trainable linear head that would "
            f"stay random: use a causal-LM backbone (label words) for {config.method}"
        )
    if method.starts is not None:
        with_instruction = config.race.instruction and bool(splits.task.instruction)
        check_race_budget(config, 1 + with_instruction + config.llm.proposer.num_proposals)
    vocab = Vocabulary.of(backbone)
    initial = initial_prompt(config, method, vocab, splits.task)
    seed = config.data.seed
    scorer = DevScorer(
        backbone, splits.dev, config.train.eval_batch_size, state, dist, config.loop.scoring, seed
    )
    schedule = Schedule.of_run(config, len(splits.train))
    proposer = None
    if method.needs_llm and dist.is_main:
        proposer = build_proposer(config, backbone, run_dir)
        rounds = len(rounds_of(config.loop.rounds, config.loop.init_round and method.trains))
        _log.info(proposer.plan(1 if method.starts is not None else rounds))
    trainer = None
    if method.trains:
        trainer = PromptTrainer(
            backbone,
            initial.embeddings,
            splits.train,
            config.train,
            seed,
            schedule.total_steps,
            dist=dist,
        )
    return RunParts(config, splits, backbone, vocab, initial, trainer, proposer, scorer)


def initial_prompt(config: RunConfig, method: Method, vocab: Vocabulary, task: Task) -> SoftPrompt:
    """``prompt.init``, or the task's instruction for a method that starts from it."""
    if not method.init_from_instruction:
        return init_prompt(config.prompt, vocab, config.data.seed)
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
    return prompt_from_text(task.instruction, vocab, prompt.length, prompt.fit_policy())


def shares_backbone(config: RunConfig, backbone: Backbone) -> bool:
    """Whether the LLM is the backbone's own model, loaded once for both."""
    same_model = config.llm.backend == "local_hf" and config.llm.model == config.backbone.model
    return same_model and isinstance(backbone, CausalLMBackbone)


def build_proposer(config: RunConfig, backbone: Backbone, run_dir: RunDirectory) -> Proposer:
    """The LLM behind the proposals (the backbone's model itself when it is the same one)."""
    loaded = None
    if shares_backbone(config, backbone):
        assert isinstance(backbone, CausalLMBackbone)
        loaded = (backbone.model, backbone.tokenizer)
    gateway = build_gateway(config.llm, loaded, log_path=run_dir.llm_log_path)
    return Proposer(gateway, config.llm, run_seed=config.data.seed)
