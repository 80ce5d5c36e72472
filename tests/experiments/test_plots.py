from __future__ import annotations

import pytest

from llm_catalyst.experiments.plots import _at_least


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ((65.0, 66.0), (60.5, 70.5)),  # one point apart: not drawn as a full-height gap
        ((0.5, 2.0), (0.0, 10.0)),  # kept above 0%
        ((97.0, 99.5), (90.0, 100.0)),  # and below 100%
        ((40.0, 70.0), (40.0, 70.0)),  # a wide spread is left as it is
    ],
)
def test_an_accuracy_panel_spans_at_least_ten_points(limits, expected) -> None:
    assert _at_least(limits, 10.0) == pytest.approx(expected)
