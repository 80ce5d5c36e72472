"""``llm-catalyst tasks`` lists every built-in task."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from llm_catalyst.commands import app
from llm_catalyst.data.registry import TASK_NAMES


def test_tasks_lists_every_builtin_task(shared_data_dir):
    result = CliRunner().invoke(app, ["tasks", "--data-dir", str(shared_data_dir)])
    assert result.exit_code == 0, result.output
    for name in TASK_NAMES:
        assert re.search(rf"\b{name}\b", result.output), name


def test_label_words_are_shown_as_scored_with_their_leading_space(shared_data_dir):
    """A causal LM scores " great", not "great": the space is part of the token."""
    result = CliRunner().invoke(
        app, ["tasks", "--data-dir", str(shared_data_dir)], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 0, result.output
    assert "' terrible' (negative)" in result.output and "' great' (positive)" in result.output
    assert "' World' (World)" in result.output
