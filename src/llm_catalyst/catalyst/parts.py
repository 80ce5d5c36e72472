"""The parts of a run, made once by ``setup`` and handed to the loop and to the method's
proposal source: one frozen value instead of attributes set one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from llm_catalyst.backbones.base import Backbone
from llm_catalyst.catalyst.config import RunConfig
from llm_catalyst.catalyst.dev_scorer import DevScorer
from llm_catalyst.catalyst.schedule import Schedule
from llm_catalyst.data.sampling import FewShotSplits
from llm_catalyst.llm.proposer import Proposer
from llm_catalyst.prompts.projection import Vocabulary
from llm_catalyst.prompts.soft_prompt import SoftPrompt
from llm_catalyst.training.trainer import PromptTrainer


@dataclass(frozen=True)
class RunParts:
    """``splits.test`` is already the evaluated subset (``max_test_examples``). ``trainer`` is
    None for a method without gradient steps; ``proposer`` None where the method needs no LLM
    and on the processes of a data-parallel run other than the main one."""

    config: RunConfig
    splits: FewShotSplits
    backbone: Backbone
    vocab: Vocabulary
    initial: SoftPrompt
    trainer: PromptTrainer | None
    proposer: Proposer | None
    scorer: DevScorer

    @cached_property
    def schedule(self) -> Schedule:
        return Schedule.of_run(self.config, len(self.splits.train))
