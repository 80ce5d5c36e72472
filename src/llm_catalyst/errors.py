"""Typed errors. Every error a user can cause says what went wrong, where, and how to fix it."""

from __future__ import annotations


class LLMCatalystError(Exception):
    """Base class: catch this to handle any error the library raises on purpose."""


class ConfigError(LLMCatalystError):
    """A configuration value is missing, malformed or inconsistent."""


class DataError(LLMCatalystError):
    """Task data cannot be read or does not match the task's schema.

    The message names the file, the line (when there is one) and the fix.
    """

    def __init__(
        self, message: str, *, path: object = None, line: int | None = None, fix: str = ""
    ):
        where = ""
        if path is not None:
            where = f"{path}" + (f", line {line}" if line is not None else "") + ": "
        text = where + message + (f"\n  fix: {fix}" if fix else "")
        super().__init__(text)
        self.path = path
        self.line = line
        self.fix = fix


class BackboneError(LLMCatalystError):
    """A backbone model cannot be found, loaded or used with the given task."""


class WeightsError(LLMCatalystError):
    """Model weights are missing, incomplete or corrupt; the message names the file and the fix."""


class ArtifactError(LLMCatalystError):
    """A saved prompt artifact is missing, corrupt, or belongs to a different backbone."""


class TrainingError(LLMCatalystError):
    """Training cannot go on (e.g. the loss became NaN); the message says what was kept."""
