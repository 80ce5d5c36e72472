"""Every method, interrupted and resumed, still writes what it wrote before the loop was reshaped.

The fixtures (``fixtures/golden/``, written by ``python -m tests.catalyst.golden``) are compared
through the record schema of ``llm_catalyst.records``: a record whose shape changed since (a
renamed field, with ``format_version`` bumped) is read back by the same readers that read the
committed ``results/`` trees, so the comparison is of what the records say, value for value
(``format_version`` aside, which says which shape the file has).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llm_catalyst.catalyst.methods import METHODS
from llm_catalyst.records import RESULTS_FORMAT_VERSION, Event, RunResults
from tests.catalyst.golden import RUN_KEYS_DROPPED, fixture_path, golden_outcome


def _event_types() -> dict[str, type[Event]]:
    found: dict[str, type[Event]] = {}
    todo = list(Event.__subclasses__())
    while todo:
        kind = todo.pop()
        todo.extend(kind.__subclasses__())
        found[kind.kind] = kind
    return found


def _read(outcome: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """The outcome as the records' readers see it: results.json and every event line."""
    types = _event_types()
    results = RunResults.model_validate(outcome["results"]).model_dump(
        exclude={*RUN_KEYS_DROPPED, "format_version"}
    )
    events = [
        (line["event"], types[line["event"]].model_validate(line).model_dump())
        for line in outcome["events"]
    ]
    return results, events


@pytest.mark.parametrize("method", METHODS)
def test_golden_run_is_unchanged(method: str, tmp_path: Path, shared_data_dir: Path) -> None:
    fixture = json.loads(fixture_path(method).read_text(encoding="utf-8"))
    outcome = golden_outcome(method, tmp_path, shared_data_dir)
    expected_results, expected_events = _read(fixture)
    results, events = _read(outcome)
    assert outcome["results"]["format_version"] == RESULTS_FORMAT_VERSION
    assert results == expected_results
    assert [kind for kind, _ in events] == [kind for kind, _ in expected_events]
    for (kind, got), (_, want) in zip(events, expected_events, strict=True):
        assert got == want, kind
