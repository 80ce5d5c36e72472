"""Run directories: everything needed to understand, reproduce and resume a run.

Layout::

    RUN/
      config.yaml      the full resolved configuration
      run.json         seed, protocol, package versions, command line, start/end times
      events.jsonl     one JSON object per event (train steps, evaluations, rounds)
      results.json     final metrics
      artifact/        the learned prompt (PEFT adapter files + our metadata)
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
from typing import Any

import yaml

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


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write to a temporary file and rename, so a killed process never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class RunDirectory:
    """A run's directory; creating one records the configuration and the environment."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def create(
        cls, root: Path, name: str, config: Mapping[str, Any], seed: int, protocol: str
    ) -> RunDirectory:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        path = Path(root) / f"{stamp}-{name}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = Path(root) / f"{stamp}-{name}-{suffix}"
        path.mkdir(parents=True)
        run = cls(path)
        (path / "config.yaml").write_text(
            yaml.safe_dump(json.loads(json.dumps(config, default=_json_default)), sort_keys=False),
            encoding="utf-8",
        )
        write_json_atomic(
            path / "run.json",
            {
                "seed": seed,
                "protocol": protocol,
                "versions": package_versions(),
                "command": sys.argv,
                "started_at": datetime.now(UTC).isoformat(),
                "platform": platform.platform(),
            },
        )
        return run

    @property
    def artifact_dir(self) -> Path:
        return self.path / "artifact"

    def log_event(self, kind: str, **fields: Any) -> None:
        record = {"event": kind, "time": time.time(), **fields}
        with (self.path / "events.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=_json_default) + "\n")

    def write_results(self, results: Mapping[str, Any]) -> None:
        write_json_atomic(self.path / "results.json", dict(results))
        info = json.loads((self.path / "run.json").read_text(encoding="utf-8"))
        info["finished_at"] = datetime.now(UTC).isoformat()
        write_json_atomic(self.path / "run.json", info)

    def events(self) -> list[dict[str, Any]]:
        events_path = self.path / "events.jsonl"
        if not events_path.exists():
            return []
        lines = events_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
