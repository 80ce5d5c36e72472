"""Run directories: everything needed to understand, reproduce and resume a run.

config.yaml (resolved configuration), run.json (seed, protocol, versions, command, times),
events.jsonl (one ``records.Event`` per line), results.json (``records.RunResults``), artifact/,
checkpoint.pt (replaced atomically) and llm_calls.jsonl. Writes are atomic or append-only so a
killed process leaves a readable directory that ``resume`` can continue.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import yaml

from llm_catalyst.errors import ArtifactError, ConfigError
from llm_catalyst.records import Event, RunResults

TRACKED_PACKAGES = (
    "llm-catalyst",
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "safetensors",
    "datasets",
    "numpy",
    "openai",
)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages: a wall-clock figure means little without what else
    the machine was running (None where the platform has none)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary file and rename, so a killed process never leaves half a file and a
    reader (a grid comparing a cell's settings) never reads one."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json_atomic(path: Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, default=_json_default) + "\n")


def require_folder(path: Path, name: str) -> None:
    """Refuse, in one line, a folder to write into that is a file or lies inside one, before
    anything is written (``mkdir`` would fail later with NotADirectoryError). ``name`` is how
    the user gave it (``--output``, ``output_dir``)."""
    path = Path(path)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or existing.is_dir():
        return
    where = "" if existing == path else f" is inside {existing}, which"
    raise ConfigError(f"{name} {path}{where} is a file, not a folder; give a folder")


CHECKPOINT_FILE = "checkpoint.pt"
EVENTS_FILE = "events.jsonl"


class RunListener(Protocol):
    """Told of each event and of the results a run directory records, after it wrote them: run
    tracking reports a run this way (``llm_catalyst.tracking``) and the loops stay as they are.
    A listener must not raise: what it was told is already written."""

    def on_event(self, event: Event) -> None: ...

    def on_results(self, results: RunResults) -> None: ...


class RunDirectory:
    """A run's directory; creating one records the configuration and the environment.
    ``listeners`` are told of what ``log`` and ``write_results`` record."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.listeners: list[RunListener] = []

    @classmethod
    def create(
        cls,
        root: Path,
        name: str,
        config: Mapping[str, Any],
        seed: int,
        protocol: str,
        *,
        timestamp: bool = True,
    ) -> RunDirectory:
        """A new run directory ``ROOT/<time>-NAME``, or exactly ``ROOT/NAME`` with
        ``timestamp=False`` (a grid cell, found again by name), which must not exist yet."""
        return cls.create_at(cls.new_path(root, name, timestamp=timestamp), config, seed, protocol)

    @staticmethod
    def new_path(root: Path, name: str, *, timestamp: bool = True) -> Path:
        """Where ``create`` would make the run directory, refused at once where it cannot be.
        Nothing is written, so a run checks its set-up before it makes the directory
        (``create_at``) and a refused run leaves nothing that blocks the corrected one."""
        require_folder(root, "output_dir")
        if not timestamp:
            path = Path(root) / name
            if path.exists():
                raise ConfigError(
                    f"{path} already exists: resume it (llm-catalyst run --resume {path}) or "
                    "choose another output directory"
                )
            return path
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        path = Path(root) / f"{stamp}-{name}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = Path(root) / f"{stamp}-{name}-{suffix}"
        return path

    @classmethod
    def create_at(
        cls, path: Path, config: Mapping[str, Any], seed: int, protocol: str
    ) -> RunDirectory:
        """Make the run directory ``new_path`` chose, with its config.yaml and run.json."""
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            raise ConfigError(
                f"{path} was made by another process meanwhile; run again for a new directory"
            ) from None
        import torch  # here, not at the top: the commands check their folders without torch

        run = cls(path)
        tree = json.loads(json.dumps(config, default=_json_default))
        write_text_atomic(path / "config.yaml", yaml.safe_dump(tree, sort_keys=False))
        write_json_atomic(
            path / "run.json",
            {
                "seed": seed,
                "protocol": protocol,
                "versions": package_versions(),
                "command": sys.argv,
                "started_at": datetime.now(UTC).isoformat(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "torch_threads": torch.get_num_threads(),
                "load_average_at_start": _load_average(),
            },
        )
        return run

    @classmethod
    def open(cls, path: Path) -> RunDirectory:
        """An existing run directory; a folder without run.json is refused with the fix."""
        path = Path(path)
        if not (path / "run.json").is_file() or not (path / "config.yaml").is_file():
            raise ConfigError(
                f"{path} is not a run directory (it has no run.json and config.yaml): pass the "
                "directory a run printed as 'run directory: ...'"
            )
        return cls(path)

    @property
    def artifact_dir(self) -> Path:
        return self.path / "artifact"

    @property
    def llm_log_path(self) -> Path:
        return self.path / "llm_calls.jsonl"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_FILE

    @property
    def is_finished(self) -> bool:
        return (self.path / "results.json").is_file()

    def log(self, event: Event) -> None:
        with (self.path / EVENTS_FILE).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(event.line(time.time()), default=_json_default) + "\n")
        for listener in self.listeners:
            listener.on_event(event)

    def events_size(self) -> int:
        """Bytes of events.jsonl written so far (stored in a checkpoint, see truncate_events)."""
        events_path = self.path / EVENTS_FILE
        return events_path.stat().st_size if events_path.exists() else 0

    def truncate_events(self, size: int) -> None:
        """Drop events logged after byte ``size``: a resumed run repeats them."""
        events_path = self.path / EVENTS_FILE
        if events_path.exists():
            with events_path.open("r+b") as handle:
                handle.truncate(size)

    def save_checkpoint(self, payload: Mapping[str, Any]) -> None:
        """Write the checkpoint atomically: a kill leaves the old or the new one, whole."""
        import torch

        tmp = self.checkpoint_path.with_suffix(".pt.tmp")
        with tmp.open("wb") as handle:
            torch.save(dict(payload), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.checkpoint_path)

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The latest checkpoint, or None when the run stopped before writing one."""
        if not self.checkpoint_path.exists():
            return None
        import torch

        try:
            return torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch.load raises many unrelated types for a bad file
            raise ArtifactError(
                f"{self.checkpoint_path}: cannot read the checkpoint ({error}); delete it to "
                "rerun from the start in this directory"
            ) from error

    def mark_resumed(self) -> None:
        """Record in run.json when the run was resumed and by which command."""
        info = json.loads((self.path / "run.json").read_text(encoding="utf-8"))
        info.setdefault("resumed", []).append(
            {"at": datetime.now(UTC).isoformat(), "command": sys.argv}
        )
        write_json_atomic(self.path / "run.json", info)

    def read_results(self) -> RunResults:
        text = (self.path / "results.json").read_text(encoding="utf-8")
        return RunResults.model_validate_json(text)

    def write_results(self, results: RunResults) -> None:
        write_json_atomic(self.path / "results.json", results.model_dump(mode="json"))
        info = json.loads((self.path / "run.json").read_text(encoding="utf-8"))
        info["finished_at"] = datetime.now(UTC).isoformat()
        info["load_average_at_finish"] = _load_average()
        write_json_atomic(self.path / "run.json", info)
        for listener in self.listeners:
            listener.on_results(results)

    def events(self) -> list[dict[str, Any]]:
        events_path = self.path / EVENTS_FILE
        if not events_path.exists():
            return []
        lines = events_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
