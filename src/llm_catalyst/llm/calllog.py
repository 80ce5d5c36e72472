"""A JSONL record of every LLM request and its outcome.

Built from values that hold no API key or HTTP header, so nothing secret can reach the file.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from llm_catalyst.llm.client import Completion, LLMRequest

MAX_LOGGED_CHARS = 100_000

Outcome = Literal["ok", "cache_hit", "unavailable", "budget"]


@dataclass
class CallRecord:
    identity: dict[str, str]
    request: dict[str, object]
    outcome: Outcome
    cache_hit: bool = False
    latency_s: float = 0.0
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    texts: list[str] = field(default_factory=list)
    truncated: bool = False
    # Asked for a constrained answer, and why it came without the constraint ("" if it did not).
    structured: bool = False
    structure_refused: str = ""
    error: str = ""
    time: float = field(default_factory=time.time)

    @classmethod
    def build(
        cls,
        identity: dict[str, str],
        request: LLMRequest,
        outcome: Outcome,
        completion: Completion | None = None,
        **extra: object,
    ) -> CallRecord:
        record = cls(identity=dict(identity), request=request.to_json(), outcome=outcome)
        record.structured = request.structure is not None
        if completion is not None:
            record.structure_refused = completion.structure_refused
            record.prompt_tokens = completion.usage.prompt_tokens
            record.completion_tokens = completion.usage.completion_tokens
            record.texts = [t[:MAX_LOGGED_CHARS] for t in completion.texts]
            record.truncated = any(len(t) > MAX_LOGGED_CHARS for t in completion.texts)
        for name, value in extra.items():
            setattr(record, name, value)
        return record


class CallLog:
    """Appends one JSON line per call; the file is opened per write so a crash loses nothing."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else None
        self.records: list[CallRecord] = []

    def write(self, record: CallRecord) -> None:
        self.records.append(record)
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
