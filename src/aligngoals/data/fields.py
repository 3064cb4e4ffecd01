"""Typed access to the fields of one raw row, raising :class:`BadRow` that says what was expected.

Why: every reader checks the same handful of shapes (required text, a 0/1 label,
a list of strings); writing the checks once keeps the error messages uniform.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from aligngoals.data.sources import BadRow

_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


def present(row: dict, key: str) -> bool:
    return key in row and row[key] is not None and not (isinstance(row[key], str) and not row[key].strip())


def text(row: dict, key: str, *, allow_empty: bool = False, field: Optional[str] = None) -> str:
    """A required string. Numbers are not silently turned into text: a number where text belongs is a bad row."""
    name = field or key
    if key not in row or row[key] is None:
        raise BadRow(name, "text")
    v = row[key]
    if not isinstance(v, str):
        raise BadRow(name, "text", v)
    if not allow_empty and not v.strip():
        raise BadRow(name, "non-empty text", v)
    return v


def opt_text(row: dict, key: str, *, field: Optional[str] = None) -> Optional[str]:
    """An optional string: missing, null or blank gives ``None``."""
    if key not in row or row[key] is None:
        return None
    v = row[key]
    if not isinstance(v, str):
        raise BadRow(field or key, "text or nothing", v)
    return v if v.strip() else None


def integer(row: dict, key: str, *, allowed: Optional[Iterable[int]] = None, field: Optional[str] = None) -> int:
    """A required integer; accepts JSON numbers and text such as ``"1"`` or ``"1.0"`` (CSV cells are text)."""
    name = field or key
    if key not in row or row[key] is None or (isinstance(row[key], str) and not row[key].strip()):
        raise BadRow(name, _int_expect(allowed))
    return to_int(row[key], name, allowed)


def to_int(v: Any, name: str, allowed: Optional[Iterable[int]] = None) -> int:
    out: Optional[int] = None
    if isinstance(v, bool):
        out = None
    elif isinstance(v, int):
        out = v
    elif isinstance(v, float) and v.is_integer():
        out = int(v)
    elif isinstance(v, str):
        s = v.strip()
        try:
            out = int(s)
        except ValueError:
            try:
                f = float(s)
                out = int(f) if f.is_integer() else None
            except ValueError:
                out = None
    allowed_set = set(allowed) if allowed is not None else None
    if out is None or (allowed_set is not None and out not in allowed_set):
        raise BadRow(name, _int_expect(allowed), v)
    return out


def _int_expect(allowed: Optional[Iterable[int]]) -> str:
    if allowed is None:
        return "an integer"
    vals = [str(a) for a in sorted(set(allowed))]
    if len(vals) == 1:
        return vals[0]
    return ", ".join(vals[:-1]) + " or " + vals[-1] if len(vals) <= 4 else f"one of {', '.join(vals)}"


def opt_float(row: dict, key: str, *, field: Optional[str] = None) -> Optional[float]:
    if key not in row or row[key] is None or (isinstance(row[key], str) and not row[key].strip()):
        return None
    return to_float(row[key], field or key)


def to_float(v: Any, name: str) -> float:
    if isinstance(v, bool):
        raise BadRow(name, "a number", v)
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            pass
    raise BadRow(name, "a number", v)


def boolean(row: dict, key: str, *, field: Optional[str] = None) -> Optional[bool]:
    """``True``/``False`` or their text forms; ``None`` when absent."""
    if key not in row or row[key] is None or row[key] == "":
        return None
    v = row[key]
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in _TRUE:
        return True
    if isinstance(v, str) and v.strip().lower() in _FALSE:
        return False
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    raise BadRow(field or key, "true or false", v)


def str_list(row: dict, key: str, *, min_len: int = 0, field: Optional[str] = None) -> list[str]:
    name = field or key
    if key not in row or row[key] is None:
        raise BadRow(name, "a list of texts")
    v = row[key]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise BadRow(name, "a list of texts", v)
    if len(v) < min_len:
        raise BadRow(name, f"a list of at least {min_len} text(s)", v)
    return v


def obj(row: dict, key: str, *, field: Optional[str] = None) -> dict:
    name = field or key
    if key not in row or row[key] is None:
        raise BadRow(name, "an object")
    if not isinstance(row[key], dict):
        raise BadRow(name, "an object", row[key])
    return row[key]


def obj_list(row: dict, key: str, *, min_len: int = 0, field: Optional[str] = None) -> list[dict]:
    name = field or key
    if key not in row or row[key] is None:
        raise BadRow(name, "a list of objects")
    v = row[key]
    if not isinstance(v, list):
        raise BadRow(name, "a list of objects", v)
    for i, x in enumerate(v):
        if not isinstance(x, dict):
            raise BadRow(f"{name}[{i}]", "an object", x)
    if len(v) < min_len:
        raise BadRow(name, f"a list of at least {min_len} object(s)", v)
    return v


def jsonable(v: Any) -> Any:
    """Keep only JSON-compatible values in meta (so every record serialises)."""
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return str(v)
