"""Templates, fields and few-shot exemplars shared by every request type.

Why a sandboxed jinja2 environment with ``StrictUndefined``: task files come from
users, and a misspelt field must be an error that names it, not an empty string
silently scored.
"""

from __future__ import annotations

import random
import string
from functools import lru_cache
from typing import Any, Iterable, Sequence

from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.exceptions import UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from aligngoals.errors import ConfigError
from aligngoals.io import stable_hash

_ENV = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)

LABELS = tuple(string.ascii_uppercase)
"""Choice labels offered to templates as ``labels`` (A, B, C, ...)."""

_MISSING = object()


@lru_cache(maxsize=512)
def _compile(template: str):
    return _ENV.from_string(template)


def render(template: str, fields: dict, *, where: str) -> str:
    """Render a jinja2 template; unknown fields and syntax errors become :class:`ConfigError`."""
    try:
        return _compile(template).render(**fields)
    except UndefinedError as exc:
        raise ConfigError(f"{where}: template uses an unknown field ({exc.message}).",
                          hint=f"Available fields: {', '.join(sorted(fields))}.") from exc
    except TemplateSyntaxError as exc:
        raise ConfigError(f"{where}: template syntax error on its line {exc.lineno}: {exc.message}.",
                          hint="See https://jinja.palletsprojects.com/ for the syntax.") from exc


def get_field(doc: dict, dotted: str, default: Any = _MISSING) -> Any:
    """``doc["a"]["b"]`` for ``"a.b"`` (list indices allowed: ``"choices.0"``)."""
    node: Any = doc
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            if default is _MISSING:
                raise KeyError(dotted)
            return default
    return node


def has_field(doc: dict, dotted: str) -> bool:
    return get_field(doc, dotted, None) is not None


def draw(pool: Sequence[Any], n: int, seed_material: Any) -> list[Any]:
    """``n`` elements of ``pool`` drawn without replacement, reproducibly from ``seed_material``.

    Why hash the material: the draw for one task/item must not depend on how many
    other tasks ran before it, so every draw gets its own seed.
    """
    if n <= 0 or not pool:
        return []
    rng = random.Random(int(stable_hash(seed_material)[:16], 16))
    idx = sorted(rng.sample(range(len(pool)), min(n, len(pool))))
    return [pool[i] for i in idx]


def join_nonempty(parts: Iterable[str], sep: str) -> str:
    return sep.join(p for p in parts if p)
