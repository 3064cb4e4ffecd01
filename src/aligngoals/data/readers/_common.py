"""Helpers shared by the readers: row sources and default ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

from aligngoals.data import sources as S
from aligngoals.data.fields import jsonable
from aligngoals.data.formats import ReadContext
from aligngoals.data.sources import Loc


def json_or_jsonl_rows(path: Path, ctx: ReadContext) -> Iterator[tuple[Loc, Any]]:
    """Rows of a JSONL file or of a JSON array file, whichever the content is."""
    if S.json_kind(path) == "jsonl":
        yield from S.iter_jsonl(path)
    else:
        for loc, v in S.iter_json_records(path):
            if not isinstance(v, dict):
                yield loc, S.BadRow(None, "a JSON object", detail=f"expected a JSON object, got {S.describe_value(v)}")
            else:
                yield loc, v


def jsonl_rows(path: Path, ctx: ReadContext) -> Iterator[tuple[Loc, Any]]:
    yield from json_or_jsonl_rows(path, ctx)


def csv_rows(path: Path, ctx: ReadContext) -> Iterator[tuple[Loc, Any]]:
    yield from S.iter_csv(path)


def default_id(ctx: ReadContext, loc: Loc) -> str:
    """A stable id when the data has none: ``<file stem>:<row or line or item index>``."""
    if loc.row is not None:
        n: Any = loc.row
    elif loc.item is not None:
        n = loc.item.rsplit("[", 1)[-1].rstrip("]")
    else:
        n = loc.line
    return f"{ctx.stem}:{n}"


def rest_meta(row: dict, used: Iterable[str], **extra: Any) -> dict:
    """Keep the fields a reader did not map, so converting never loses information."""
    used_set = set(used)
    meta = {k: jsonable(v) for k, v in row.items() if k not in used_set}
    meta.update({k: v for k, v in extra.items() if v is not None})
    return meta


def row_id(row: dict, key: str, ctx: ReadContext, loc: Loc) -> str:
    v = row.get(key)
    if v is None or (isinstance(v, str) and not v.strip()):
        return default_id(ctx, loc)
    return str(v)
