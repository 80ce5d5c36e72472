"""The command line answers ``--help`` and usage errors without loading model or plotting code.

Importing torch and transformers takes seconds, so a command that needs neither must not import
them. Each check runs in a fresh interpreter: this test session has imported torch long ago.
How long a start takes is measured by ``time llm-catalyst --help``, not asserted here.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from llm_catalyst.commands import COMMANDS, app

HEAVY = ("torch", "transformers", "matplotlib")


def _fresh_interpreter(code: str) -> dict:
    """Run ``code`` in a new interpreter; it prints one JSON object as its last line."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def _invoke_all(argv_lists: list[list[str]]) -> dict:
    """Exit codes of ``llm-catalyst ARGS`` for each ARGS, in one fresh interpreter, and the
    heavy modules imported by the end."""
    return _fresh_interpreter(
        f"""
        import json, sys
        from llm_catalyst.commands import app
        codes = []
        for argv in {argv_lists!r}:
            try:
                app(argv, prog_name="llm-catalyst")
            except SystemExit as stop:
                codes.append(stop.code)
        print()
        print(json.dumps({{"codes": codes, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
        """
    )


def test_importing_the_commands_loads_no_model_or_plotting_code() -> None:
    found = _fresh_interpreter(
        f"""
        import json, sys
        import llm_catalyst.commands
        print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
        """
    )
    assert found == []


def test_every_help_exits_0_without_loading_model_code() -> None:
    argv_lists = [["--help"], *([name, "--help"] for name in COMMANDS)]
    found = _invoke_all(argv_lists)
    assert found == {"codes": [0] * len(argv_lists), "heavy": []}


def test_usage_errors_print_without_loading_model_code(tmp_path) -> None:
    """Errors found before a run is configured: a malformed option, a missing file or folder."""
    missing = str(tmp_path / "missing.yaml")
    argv_lists = [
        ["compare", "--seeds", "one"],
        ["sweep"],
        ["run", "--set", "no-equals-sign"],
        ["run", "--resume", str(tmp_path), "--task", "sst2"],
        ["run", "--llm", missing],
        ["propose", "--task", "no-such-task", "--pool", missing],
        ["report", str(tmp_path / "missing")],
    ]
    found = _invoke_all(argv_lists)
    assert found == {"codes": [2] * len(argv_lists), "heavy": []}


def test_the_module_entry_point_prints_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "llm_catalyst", "--help"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert all(name in done.stdout for name in COMMANDS)


@pytest.mark.parametrize("quiet", [False, True], ids=["notes", "quiet"])
def test_a_run_says_which_model_it_is_loading(tmp_path, shared_data_dir, quiet) -> None:
    """The command line shows the library's "loading" log records on stderr, not on stdout
    where the results go; ``--quiet`` leaves only warnings, so no such note."""
    library = logging.getLogger("llm_catalyst")
    before = (list(library.handlers), library.level)
    outcome = CliRunner().invoke(
        app,
        [
            *(["--quiet"] if quiet else []),
            "tune",
            "--task",
            "sst2",
            "--model",
            "tiny-causal-lm",
            "--shots",
            "2",
            "--steps",
            "1",
            "--data-dir",
            str(shared_data_dir),
            "--output-dir",
            str(tmp_path),
            "--max-test-examples",
            "4",
            "--set",
            "train.progress=false",
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert ("loading backbone tiny-causal-lm" in outcome.stderr) is not quiet
    assert "loading backbone" not in outcome.stdout
    # a host application (or a test) that calls the app gets its logger back as it was
    assert (library.handlers, library.level) == before


def test_loading_a_run_config_loads_no_model_code() -> None:
    """Validating a run's configuration imports no torch, transformers or peft, so a config
    error is reported in well under 2 s (the issue "Nothing silent...")."""
    found = _fresh_interpreter(
        f"""
        import json, sys
        from llm_catalyst.catalyst.config import load_run_config
        load_run_config(None, {{"data.task": "sst2"}})
        print(json.dumps([m for m in {HEAVY!r} + ("peft",) if m in sys.modules]))
        """
    )
    assert found == []


def test_a_config_error_prints_without_loading_model_code(tmp_path) -> None:
    """``run`` and ``tune`` validate the configuration before they import the runner."""
    found = _fresh_interpreter(
        f"""
        import json, sys
        from typer.testing import CliRunner
        from llm_catalyst.commands import app
        runner = CliRunner()
        outcomes = [
            runner.invoke(app, argv)
            for argv in (["run", "--set", "train.nonsense=1"],
                         ["tune", "--set", "train.nonsense=1"],
                         ["run", "--config", {str(tmp_path / "missing.yaml")!r}])
        ]
        print()
        print(json.dumps({{
            "codes": [o.exit_code for o in outcomes],
            "output": [o.output for o in outcomes],
            "heavy": [m for m in {HEAVY!r} + ("peft",) if m in sys.modules],
        }}))
        """
    )
    assert found["codes"] == [2, 2, 2], found["output"]
    assert "train.nonsense" in found["output"][0] and "train.nonsense" in found["output"][1]
    assert "missing.yaml" in found["output"][2]
    assert found["heavy"] == []


def test_version_prints_the_installed_version_without_loading_model_code() -> None:
    """``llm-catalyst --version`` prints ``llm-catalyst <version>`` (the installed
    distribution's) and exits 0 before any command or model code runs."""
    from importlib.metadata import version

    found = _fresh_interpreter(
        f"""
        import contextlib, io, json, sys
        from llm_catalyst.commands import app
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            try:
                app(["--version"], prog_name="llm-catalyst")
            except SystemExit as stop:
                code = stop.code
        print(json.dumps({{"code": code, "printed": printed.getvalue(),
                           "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
        """
    )
    assert found == {
        "code": 0,
        "printed": f"llm-catalyst {version('llm-catalyst')}\n",
        "heavy": [],
    }
