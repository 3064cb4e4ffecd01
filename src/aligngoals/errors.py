"""User-facing errors.

Why a dedicated type: the CLI turns an :class:`AligngoalsError` into a
one-paragraph message that names the thing and the fix, and only shows a
traceback with ``--debug``. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class AligngoalsError(Exception):
    """An error caused by user input or environment, with an actionable message."""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message if not self.hint else f"{self.message} {self.hint}"


class ModelError(AligngoalsError):
    """The model cannot be found, loaded or asked."""


class DataError(AligngoalsError):
    """Input data is missing or malformed (the message names file, line and field)."""


class ConfigError(AligngoalsError):
    """A spec, task or suite file is invalid."""
