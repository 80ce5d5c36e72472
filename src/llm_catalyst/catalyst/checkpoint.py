"""Checkpoints that let a run survive a kill: the loop state, the trainer, the LLM usage and
the RNG states, written at step and round boundaries.

Batches and dropout are pure functions of (seed, step) and LLM answers replay from the response
cache, so a run resumed from its last checkpoint ends exactly where the uninterrupted run would.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from llm_catalyst.catalyst.state import LoopState
from llm_catalyst.errors import ConfigError
from llm_catalyst.llm.budget import Budget
from llm_catalyst.rundir import RunDirectory
from llm_catalyst.training.trainer import PromptTrainer

# Version 2: the loop state's compute record, and candidates' origin and detail.
FORMAT_VERSION = 2


def config_digest(run: RunDirectory) -> str:
    """sha256 of config.yaml: a checkpoint only resumes the configuration it was made with."""
    return hashlib.sha256((run.path / "config.yaml").read_bytes()).hexdigest()


def _rng_state() -> dict[str, Any]:
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), position, has_gauss, cached],
    }


def _restore_rng(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))


def _tuples(value: Any) -> Any:
    """random.setstate wants the nested tuples getstate gave; a checkpoint may hold lists."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list | tuple) else value


def checkpoint_payload(
    run: RunDirectory,
    state: LoopState,
    trainer: PromptTrainer | None,
    budget: Budget | None,
) -> dict[str, Any]:
    """Trainer, loop state, LLM usage, RNG states, the config's hash and the size of
    events.jsonl at this moment (a resumed run drops the events logged after it)."""
    return {
        "version": FORMAT_VERSION,
        "config_sha256": config_digest(run),
        "state": state.to_payload(),
        "trainer": None if trainer is None else trainer.state_dict(),
        "budget": None if budget is None else budget.state_dict(),
        "events_size": run.events_size(),
        "rng": _rng_state(),
    }


def restore_checkpoint(
    run: RunDirectory,
    payload: Mapping[str, Any],
    trainer: PromptTrainer | None,
    budget: Budget | None,
) -> None:
    """Load the trainer, LLM usage and RNG states, and cut events.jsonl back to the checkpoint.

    The loop state is read separately (``LoopState.from_payload``) because it is needed before
    the trainer exists. Refuses a checkpoint of another format or of an edited config.yaml.
    """
    if payload.get("version") != FORMAT_VERSION:
        raise ConfigError(
            f"{run.checkpoint_path}: checkpoint format {payload.get('version')} is not "
            f"{FORMAT_VERSION}; it was written by another version of llm-catalyst: resume it "
            "with that version or delete the checkpoint to rerun from the start"
        )
    if payload["config_sha256"] != config_digest(run):
        raise ConfigError(
            f"{run.path / 'config.yaml'} changed after the checkpoint was written; a resumed "
            "run must use the configuration it started with: restore the file, or start a new "
            "run with the new configuration"
        )
    if trainer is not None:
        trainer.load_state_dict(payload["trainer"])
    if budget is not None and payload["budget"] is not None:
        budget.load_state_dict(payload["budget"])
    _restore_rng(payload["rng"])
    run.truncate_events(payload["events_size"])
