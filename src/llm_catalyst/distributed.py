"""Data-parallel training through Hugging Face Accelerate, and the main-process guards around it.

Every process trains the same prompt on its share of each global batch, with the same result as
one process; why and how: docs/design.md, "Data-parallel runs".
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch
import torch.distributed as torch_dist

from llm_catalyst.errors import ConfigError
from llm_catalyst.records import Event, RunResults
from llm_catalyst.rundir import RunDirectory

if TYPE_CHECKING:
    from accelerate import Accelerator

T = TypeVar("T")


def _launched() -> bool:
    """``accelerate launch`` always sets ACCELERATE_MIXED_PRECISION; torchrun sets WORLD_SIZE."""
    return "ACCELERATE_MIXED_PRECISION" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


class Distributed:
    """The processes of one data-parallel run (one process and nothing wrapped by default)."""

    def __init__(self, accelerator: Accelerator | None = None):
        self._accelerator = accelerator

    @classmethod
    def single(cls) -> Distributed:
        return cls(None)

    @classmethod
    def from_environment(cls, device: torch.device) -> Distributed:
        """The launcher's processes, precision and accumulation for a backbone on ``device``.

        ``device`` is the backbone's configured device: CPU processes talk through gloo, GPU
        processes through NCCL, each on its own GPU (``backbone.device: cuda`` or ``auto``).
        """
        if not _launched():
            return cls.single()
        from accelerate import Accelerator

        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and device.type == "cuda" and device.index is not None:
            raise ConfigError(
                f"backbone.device is {device} but {world} processes were launched: they would "
                "all use that one GPU\n  fix: set backbone.device to cuda or auto; each process "
                "then uses its own GPU"
            )
        accelerator = Accelerator(cpu=device.type == "cpu")
        plain = (
            accelerator.num_processes == 1
            and accelerator.mixed_precision == "no"
            and accelerator.gradient_accumulation_steps == 1
        )
        return cls.single() if plain else cls(accelerator)

    # -- who am I ----------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether Accelerate drives training (several processes, mixed precision or
        accumulation); when False, training takes the plain one-process path."""
        return self._accelerator is not None

    @property
    def world_size(self) -> int:
        return 1 if self._accelerator is None else self._accelerator.num_processes

    @property
    def rank(self) -> int:
        return 0 if self._accelerator is None else self._accelerator.process_index

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def accumulation_steps(self) -> int:
        return 1 if self._accelerator is None else self._accelerator.gradient_accumulation_steps

    @property
    def device(self) -> torch.device:
        """Where collectives run (this process's GPU under NCCL, the CPU under gloo)."""
        return torch.device("cpu") if self._accelerator is None else self._accelerator.device

    # -- collectives -------------------------------------------------------------------------

    def shard(self, items: Sequence[T]) -> list[T]:
        """Items ``rank, rank + W, rank + 2W, ...``: shares differ by at most one item, and a
        process may get none (then it still joins every collective)."""
        return list(items[self.rank :: self.world_size])

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of ``tensor`` over all processes (a new tensor, same device)."""
        if self.world_size == 1:
            return tensor
        reduced = tensor.detach().to(self.device, copy=True)
        torch_dist.all_reduce(reduced, op=torch_dist.ReduceOp.SUM)
        return reduced.to(tensor.device)

    def any(self, flag: bool) -> bool:
        """Whether any process has ``flag`` set (e.g. Ctrl-C seen), so all branch alike."""
        if self.world_size == 1:
            return flag
        return bool(self.sum(torch.tensor([int(flag)])).item())

    def on_main(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the main process only; its result (or its exception) reaches every process.

        Results travel pickled, so they must be picklable (tensors, dataclasses, paths).
        """
        if self.world_size == 1:
            return fn()
        box: list[Any] = [None]
        if self.is_main:
            try:
                box[0] = (True, fn())
            except Exception as error:
                box[0] = (False, error)
        torch_dist.broadcast_object_list(box, src=0, device=self.device)
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def broadcast_(self, tensor: torch.Tensor) -> None:
        """Copy the main process's ``tensor`` into every process's ``tensor``, in place."""
        if self.world_size == 1:
            return
        buffer = tensor.detach().to(self.device, copy=True)
        torch_dist.broadcast(buffer, src=0)
        with torch.no_grad():
            tensor.copy_(buffer.to(tensor.device))

    # -- mixed precision ---------------------------------------------------------------------

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Accelerate's autocast for its ``mixed_precision``; nothing when not active."""
        if self._accelerator is None:
            return contextlib.nullcontext()
        return self._accelerator.autocast()

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, through the fp16 gradient scaler when there is one.

        Not ``Accelerator.backward``: that divides by the accumulation steps, and the trainer's
        micro-batch losses are already weighted by their share of the global batch.
        """
        scaler = self._scaler()
        (loss if scaler is None else scaler.scale(loss)).backward()

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        """Bring scaled fp16 gradients back to their true size (before clipping or norms)."""
        scaler = self._scaler()
        if scaler is not None:
            scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """The optimizer step (skipped by the fp16 scaler when a gradient overflowed)."""
        scaler = self._scaler()
        if scaler is None:
            optimizer.step()
            return
        scaler.step(optimizer)
        scaler.update()

    def _scaler(self) -> Any:
        return None if self._accelerator is None else self._accelerator.scaler

    def finish(self) -> None:
        """Wait for every process, then close the process group.

        Without this a process that finishes first exits while gloo's threads still serve the
        group, and the C++ runtime aborts it ("terminate called without an active exception"),
        failing the launch after a successful run. Call it once, after the last collective."""
        if self._accelerator is None or self.world_size == 1:
            return
        import torch.distributed

        self._accelerator.wait_for_everyone()
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    # -- main-process guards -----------------------------------------------------------------

    def run_directory(self, path: Path) -> RunDirectory:
        """The run directory at ``path``: readable everywhere, written by the main process."""
        return RunDirectory(path) if self.is_main else _ReadOnlyRunDirectory(path)


class _ReadOnlyRunDirectory(RunDirectory):
    """What the other processes see of the run directory: reads work, writes are dropped."""

    def log(self, event: Event) -> None:
        pass

    def truncate_events(self, size: int) -> None:
        pass

    def save_checkpoint(self, payload: Mapping[str, Any]) -> None:
        pass

    def mark_resumed(self) -> None:
        pass

    def write_results(self, results: RunResults) -> None:
        pass
