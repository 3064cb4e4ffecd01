"""The format registry and the one read loop every format goes through.

Why one loop: stopping at the first bad row (or skipping it with ``skip_bad``),
counting what was skipped and why, applying ``limit`` and naming ``file:line``
and the field in errors must behave identically for all ~30 formats, so readers
only describe how to get raw rows and how to turn one raw row into records.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from pydantic import ValidationError

from aligngoals.data.records import Record
from aligngoals.data.sources import BadRow, Loc, PathLike
from aligngoals.errors import ConfigError, DataError
from aligngoals.plugins import GROUPS, Registry

log = logging.getLogger(__name__)

RowSource = Callable[[Path, "ReadContext"], Iterator[tuple[Loc, Any]]]
Converter = Callable[[Any, Loc, "ReadContext"], Optional[list[Record]]]
Detector = Callable[["Peek"], bool]


@dataclass
class FormatSpec:
    """One input format: where rows come from and what one row becomes.

    ``convert`` returns the records for a row, or ``None`` when an option filters
    the row out (counted separately from bad rows).
    """

    name: str
    description: str
    produces: tuple[str, ...]
    rows: RowSource
    convert: Converter
    options: dict[str, str] = field(default_factory=dict)
    """Accepted reader options, ``{name: help}``."""
    group: str = "other"
    """instructions, preferences, values, evaluation or generic (for listings)."""
    example: str = ""
    """What one input row looks like (shown by ``aligngoals data formats``)."""
    accepts_dir: bool = False
    """Reads a folder (a saved Hugging Face dataset) or a non-file source (a hub name)."""


#: Every data format: the built-in readers register on import; plug-ins through the
#: ``aligngoals.formats`` entry-point group (an entry point naming a FormatSpec).
FORMATS: Registry[FormatSpec] = Registry("data format", GROUPS["formats"], builtin_modules=("aligngoals.data.readers",))


def register(spec: FormatSpec) -> FormatSpec:
    return FORMATS.add(spec.name, spec, origin=getattr(spec.convert, "__module__", "aligngoals"))


def _ensure_loaded() -> None:
    FORMATS.names()


def get_format(name: str) -> FormatSpec:
    _ensure_loaded()
    if name not in FORMATS:
        raise ConfigError(
            f"Unknown data format {name!r}.",
            hint=f"Known formats: {', '.join(sorted(FORMATS.names()))} (see 'aligngoals data formats').",
        )
    return FORMATS.get(name)


def list_formats() -> list[str]:
    """Names of every registered format, sorted."""
    _ensure_loaded()
    return sorted(FORMATS.names())


def format_specs() -> list[FormatSpec]:
    _ensure_loaded()
    return [FORMATS.get(n) for n in sorted(FORMATS.names())]


# ---------------------------------------------------------------------------------
# read context and report
# ---------------------------------------------------------------------------------


@dataclass
class ReadContext:
    """What a converter may look at besides the row: the file, its options and per-file state."""

    path: Path
    stem: str
    options: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)

    def opt(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)

    def opt_int(self, name: str, default: Optional[int] = None) -> Optional[int]:
        v = self.options.get(name, default)
        if v is None or isinstance(v, int):
            return v
        try:
            return int(str(v))
        except ValueError as exc:
            raise ConfigError(f"Option {name}={v!r}: expected an integer.") from exc

    def opt_bool(self, name: str, default: bool = False) -> bool:
        v = self.options.get(name, default)
        if isinstance(v, bool):
            return v
        s = str(v).strip().lower()
        if s in ("1", "true", "yes", "y", "on"):
            return True
        if s in ("0", "false", "no", "n", "off"):
            return False
        raise ConfigError(f"Option {name}={v!r}: expected true or false.")

    def opt_list(self, name: str) -> Optional[list[str]]:
        v = self.options.get(name)
        if v is None:
            return None
        if isinstance(v, (list, tuple)):
            return [str(x) for x in v]
        return [s.strip() for s in str(v).split(",") if s.strip()]


@dataclass
class ReadReport:
    """What happened while reading one file: counts, skipped rows and why.

    ``rows`` counts source units (lines, CSV rows, JSON items) including bad and
    filtered ones, so ``rows == kept_rows + skipped + filtered``.
    """

    path: str
    format: str
    rows: int = 0
    records: int = 0
    filtered: int = 0
    skipped: int = 0
    skip_reasons: Counter = field(default_factory=Counter)
    skip_examples: list[str] = field(default_factory=list)
    record_types: Counter = field(default_factory=Counter)
    truncated: bool = False
    """True when ``limit`` stopped reading before the end of the file."""

    @property
    def kept_rows(self) -> int:
        return self.rows - self.skipped - self.filtered

    def summary(self) -> str:
        parts = [f"{self.records} record(s) from {self.rows} row(s) of {self.path} as {self.format}"]
        if self.filtered:
            parts.append(f"{self.filtered} row(s) filtered out by options")
        if self.skipped:
            why = "; ".join(f"{n} x {r}" for r, n in self.skip_reasons.most_common(5))
            parts.append(f"{self.skipped} bad row(s) skipped ({why})")
        if self.truncated:
            parts.append("stopped at --limit")
        return ", ".join(parts) + "."

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "format": self.format,
            "rows": self.rows,
            "records": self.records,
            "filtered": self.filtered,
            "skipped": self.skipped,
            "skip_reasons": dict(self.skip_reasons),
            "skip_examples": list(self.skip_examples),
            "record_types": dict(self.record_types),
            "truncated": self.truncated,
        }


class RecordList(list):
    """A plain ``list`` of records that also carries the :class:`ReadReport` of the read."""

    report: ReadReport

    def __init__(self, items: Any = (), report: Optional[ReadReport] = None):
        super().__init__(items)
        self.report = report  # type: ignore[assignment]


# ---------------------------------------------------------------------------------
# building records
# ---------------------------------------------------------------------------------


def build(cls: type[Record], sources: Optional[dict[str, str]] = None, **fields: Any) -> Record:
    """Construct a record; a validation error becomes a :class:`BadRow` naming the *source* field.

    ``sources`` maps record fields to the input's field names (e.g. ``{"answer": "label"}``),
    so the message talks about the user's file, not about our record type.
    """
    try:
        return cls(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(x) for x in err["loc"]]
        msg = err["msg"].removeprefix("Value error, ")
        if loc:
            top = loc[0]
            name = (sources or {}).get(top, top)
            rest = "".join(f"[{x}]" if x.isdigit() else f".{x}" for x in loc[1:])
            raise BadRow(name + rest, msg, detail=msg) from exc
        # A whole-record check (e.g. "answer index 3 is outside 0..2"): name the first field it mentions.
        for word in re.findall(r"[A-Za-z_]+", msg):
            if word in cls.model_fields and word not in ("id", "meta", "record_type"):
                raise BadRow((sources or {}).get(word, word), msg, detail=msg) from exc
        raise BadRow(None, msg, detail=msg) from exc


# ---------------------------------------------------------------------------------
# the read loop
# ---------------------------------------------------------------------------------


def _check_options(spec: FormatSpec, options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        accepted = ", ".join(f"{k} ({v})" for k, v in spec.options.items()) or "none"
        raise ConfigError(
            f"Format {spec.name!r} does not take option(s) {', '.join(unknown)}.",
            hint=f"Options of {spec.name}: {accepted}.",
        )


def iter_records(
    path: PathLike,
    format: Optional[str] = None,
    *,
    skip_bad: bool = False,
    limit: Optional[int] = None,
    report: Optional[ReadReport] = None,
    **options: Any,
) -> Iterator[Record]:
    """Stream the records of one file (format detected when ``format`` is None).

    Without ``skip_bad`` the first bad row raises :class:`DataError` naming
    ``file:line``, the field and what was expected; with it, bad rows are counted
    in ``report`` (pass a :class:`ReadReport` to see them) and reading goes on.
    """
    src = str(path)
    if format is None:
        format = detect_format(path)
    spec = get_format(format)
    _check_options(spec, options)
    p = Path(src).expanduser()
    if not spec.accepts_dir:
        from aligngoals.data.sources import check_file

        check_file(p)
    from aligngoals.data.sources import logical_stem

    ctx = ReadContext(path=p, stem=logical_stem(p), options=dict(options))
    rep = report if report is not None else ReadReport(path=src, format=format)
    rep.path, rep.format = src, format
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be at least 1, got {limit}.")
    produced = 0
    for loc, raw in spec.rows(p, ctx):
        if limit is not None and produced >= limit:
            rep.truncated = True
            return
        rep.rows += 1
        try:
            if isinstance(raw, BadRow):
                raise raw
            recs = spec.convert(raw, loc, ctx)
        except BadRow as bad:
            where = loc.describe(src)
            if not skip_bad:
                raise DataError(
                    f"{where}: {bad.message}.",
                    hint=f"Fix the row, read it as another format (--format; detected/used: {format}), "
                    "or pass --skip-bad (skip_bad=True) to skip bad rows and report them.",
                ) from bad
            rep.skipped += 1
            rep.skip_reasons[bad.reason] += 1
            if len(rep.skip_examples) < 5:
                rep.skip_examples.append(f"{where}: {bad.message}")
            continue
        if recs is None:
            rep.filtered += 1
            continue
        for r in recs:
            if limit is not None and produced >= limit:
                rep.truncated = True
                return
            produced += 1
            rep.records += 1
            rep.record_types[r.record_type] += 1
            yield r
    if rep.skipped:
        log.warning(rep.summary())


def load_records(
    path: PathLike,
    format: Optional[str] = None,
    *,
    skip_bad: bool = False,
    limit: Optional[int] = None,
    **options: Any,
) -> RecordList:
    """Read every record of a file into a list; ``result.report`` says what was read, filtered and skipped.

    ``format`` is a name from :func:`list_formats` (detected when None); ``options``
    are the format's reader options (e.g. ``inventory="PVQ40"`` for ``valuebench``).
    """
    rep = ReadReport(path=str(path), format=format or "")
    recs = list(iter_records(path, format, skip_bad=skip_bad, limit=limit, report=rep, **options))
    return RecordList(recs, rep)


# ---------------------------------------------------------------------------------
# detection
# ---------------------------------------------------------------------------------


@dataclass
class Peek:
    """What detection looks at: the file's kind (jsonl/json/csv), the first rows and the name."""

    path: Path
    name: str
    kind: str
    rows: list[Any]
    header: Optional[list[str]] = None

    def keys(self) -> set[str]:
        ks: set[str] = set()
        for r in self.rows:
            if isinstance(r, dict):
                ks |= set(r)
        return ks

    def first(self) -> dict:
        return self.rows[0] if self.rows and isinstance(self.rows[0], dict) else {}


_DETECTORS: list[tuple[int, int, str, Detector]] = []


def detector(name: str, priority: int = 100) -> Callable[[Detector], Detector]:
    """Register a detection rule for format ``name``.

    Rules run by ``priority`` (lower first), then in registration order: specific
    formats use the default, exact self-describing files (``record_type``) go
    first and the generic jsonl/json/csv fallbacks last.
    """

    def deco(fn: Detector) -> Detector:
        _DETECTORS.append((priority, len(_DETECTORS), name, fn))
        _DETECTORS.sort(key=lambda t: (t[0], t[1]))
        return fn

    return deco


def peek(path: PathLike) -> Peek:
    from aligngoals.data import sources as S

    p = S.check_file(path) if not Path(path).is_dir() else Path(path)
    name = p.name.lower()
    if p.is_dir():
        return Peek(p, name, "dir", [])
    suffix = S.logical_suffix(p)
    if suffix in (".xlsx", ".xls", ".parquet", ".arrow"):
        return Peek(p, name, suffix[1:], [])
    kind = S.json_kind(p)
    if kind == "jsonl":
        rows = []
        for _, r in S.iter_jsonl(p):
            rows.append(r)
            if len(rows) >= 5:
                break
        return Peek(p, name, "jsonl", [r for r in rows if isinstance(r, dict)])
    if kind == "json":
        doc = S.load_json(p)
        if isinstance(doc, list):
            return Peek(p, name, "json", doc[:5])
        if isinstance(doc, dict) and set(doc) == {"data"} and isinstance(doc["data"], list):
            return Peek(p, name, "json", doc["data"][:5])
        return Peek(p, name, "json-object", [doc])
    if suffix in (".csv", ".tsv", ".txt", "") or suffix not in (".json", ".jsonl"):
        header = S.csv_header(p)
        first = S.csv_first_rows(p, 4)
        return Peek(p, name, "csv", first[1:], header=header)
    return Peek(p, name, "unknown", [])


def detect_format(path: PathLike) -> str:
    """Guess the format of a file from its content (keys, header) and, where content is ambiguous, its name."""
    _ensure_loaded()
    pk = peek(path)
    for _, _, name, rule in _DETECTORS:
        try:
            if rule(pk):
                return name
        except (KeyError, IndexError, TypeError, AttributeError):
            continue
    if pk.kind in ("xlsx", "xls"):
        raise DataError(
            f"{path}: Excel workbooks are not read directly.",
            hint="Export the sheet you need to CSV (e.g. ValueBench's value2def sheet is value_definitions.csv) and read that.",
        )
    raise DataError(
        f"{path}: cannot tell which data format this is (looked at the first rows: "
        f"{'header ' + ', '.join(pk.header[:8]) if pk.header else 'keys ' + ', '.join(sorted(pk.keys())[:8]) or 'nothing readable'}).",
        hint="Pass --format NAME (see 'aligngoals data formats'), or read it as jsonl/json/csv with --record-type and --map.",
    )
