"""Fixtures for the command tests.

tuned_run      the output of one small ``llm-catalyst tune`` (tiny causal LM, SST-2, 2 steps)
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from llm_catalyst.commands import app


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory, shared_data_dir):
    output = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(
        app,
        [
            "tune",
            "--task",
            "sst2",
            "--model",
            "tiny-causal-lm",
            "--shots",
            "2",
            "--steps",
            "2",
            "--data-dir",
            str(shared_data_dir),
            "--output-dir",
            str(output),
            "--max-test-examples",
            "8",
            "--set",
            "train.eval_every=1",
            "--set",
            "train.progress=false",
        ],
    )
    assert result.exit_code == 0, result.output
    return result
