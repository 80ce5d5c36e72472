"""The cells of a task x method x seed grid: each one's configuration."""

from __future__ import annotations

import json

from llm_catalyst.experiments.grid import grid_cells


def test_a_null_override_reaches_every_cell(tmp_path):
    nulls = {"train.max_grad_norm": None}
    cells = grid_cells(tmp_path, ["sst2"], ["plain", "catalyst"], [1], (), nulls)
    assert [cell.config.train.max_grad_norm for cell in cells] == [None, None]


def test_a_config_file_keeps_its_own_custom_task(tmp_path):
    """No --tasks: the cells run the task spec the file holds (the grid sets no data.task)."""
    spec = {"name": "tickets", "description": "Tickets.", "train": "train.csv"}
    spec["test"] = "test.csv"
    spec |= {"columns": {"text": "body"}, "label_names": ["bug", "feature"]}
    spec |= {"label_words": [" bug", " feature"], "template": "{text} It is a"}
    spec |= {"text_fields": ["text"]}
    config = tmp_path / "tickets.yaml"
    config.write_text(json.dumps({"data": {"task": spec}}))
    (cell,) = grid_cells(tmp_path / "grid", [], ["plain"], [1], [config])
    assert cell.name == "tickets/plain/seed1"
    assert cell.config.data.task != "tickets" and cell.config.data.task.name == "tickets"
