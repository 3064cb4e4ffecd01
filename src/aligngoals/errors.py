"""User-facing errors.

Why a dedicated type: the CLI turns an :class:`AligngoalsError` into a
one-paragraph message that names the thing and the fix, and only shows a
traceback with ``--debug``. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any


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


def field_path(raw: Any, loc: tuple) -> str:
    """A pydantic error location as a readable field path, naming list entries by their ``id``."""
    parts: list[str] = []
    node = raw
    for key in loc:
        if isinstance(key, int):
            label = f"[{key}]"
            if isinstance(node, list) and key < len(node) and isinstance(node[key], dict) and "id" in node[key]:
                label += f" (id {node[key]['id']!r})"
            parts.append(label)
            node = node[key] if isinstance(node, list) and key < len(node) else None
        else:
            parts.append(("." if parts else "") + str(key))
            node = node.get(key) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def config_error(exc: Any, where: str, *, hint: str | None = None, raw: Any = None,
                 cls: type[AligngoalsError] = ConfigError) -> AligngoalsError:
    """The one translation of a pydantic ``ValidationError`` into the CLI's message.

    Names the source (``where``: a file, a command) and the first invalid field, says how many
    more problems follow, and carries ``hint``. ``raw`` (the input mapping) lets list entries be
    named by their ``id``. Use as ``raise config_error(exc, where, hint=...) from exc``.
    """
    errors = exc.errors()
    first = errors[0]
    loc = tuple(first.get("loc") or ())
    path = field_path(raw, loc) if raw is not None else (".".join(str(x) for x in loc) or "(top level)")
    msg = str(first.get("msg", "")).removeprefix("Value error, ")
    more = f" ({len(errors) - 1} more problem(s) after fixing this one)" if len(errors) > 1 else ""
    return cls(f"{where}: field '{path}': {msg}.{more}", hint=hint)
