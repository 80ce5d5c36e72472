"""What the command line shows of the library's log (``commands/log.py``): each record on
stderr (above a live progress bar), an exception as its one-line summary and never a
traceback, and the logger put back."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console

from llm_catalyst.commands.log import show_library_log
from llm_catalyst.progress import ProgressUpdate, RichProgress


def _shown(capsys, emit, quiet: bool = False) -> str:
    restore = show_library_log(quiet)
    try:
        emit(logging.getLogger("llm_catalyst.somewhere"))
    finally:
        restore()
    out, err = capsys.readouterr()
    assert out == ""
    return err


def test_an_error_record_shows_its_exception_in_a_line_not_a_traceback(capsys) -> None:
    def emit(logger: logging.Logger) -> None:
        try:
            raise ValueError("bad [/x] value")
        except ValueError:
            logger.exception("the server refused")

    err = _shown(capsys, emit)
    assert "the server refused (ValueError: bad [/x] value)" in err  # brackets printed as written
    assert "Traceback" not in err


@pytest.mark.parametrize(("quiet", "shown"), [(False, True), (True, False)])
def test_quiet_shows_warnings_but_not_notes(capsys, quiet, shown) -> None:
    def emit(logger: logging.Logger) -> None:
        logger.info("loading backbone x…")
        logger.warning("label words cut")

    err = _shown(capsys, emit, quiet)
    assert ("loading backbone x…" in err) is shown
    assert "label words cut" in err


def test_the_logger_is_put_back_as_it_was() -> None:
    library = logging.getLogger("llm_catalyst")
    before = (list(library.handlers), library.level)
    show_library_log()()
    assert (library.handlers, library.level) == before


def test_a_record_during_a_live_progress_bar_is_printed_above_it(capsys) -> None:
    """While a live bar is drawn, rich sends stderr through the bar's console, which prints a
    line above the bar; a record written straight to stderr instead would land under the bar,
    where its next redraw splits or erases it."""
    terminal = io.StringIO()
    bar = RichProgress(Console(file=terminal, width=200, force_terminal=True))
    restore = show_library_log()
    try:
        bar.update(ProgressUpdate("gradient", 0, 8))
        logging.getLogger("llm_catalyst.catalyst.output").info("round 1/2 at step 3: kept it")
        bar.close()
    finally:
        restore()
    assert "round 1/2 at step 3: kept it" in terminal.getvalue()
    assert "round 1/2" not in capsys.readouterr().err
