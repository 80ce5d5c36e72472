"""What the command line shows of the library's log (``commands/log.py``): each record on
stderr, an exception as its one-line summary and never a traceback, and the logger put back."""

from __future__ import annotations

import logging

import pytest

from llm_catalyst.commands.log import show_library_log


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
