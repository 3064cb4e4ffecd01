"""Low-level reading: open (gzip-transparent) files and yield raw rows with their location.

Why by hand and not pandas: every error must name the file, the line and the
field; pandas/json loses line numbers, and a bad line must be skippable without
losing the rest of the file. Formats only differ in what a row means, so the
row sources are shared by every reader.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Union

from aligngoals.errors import DataError

PathLike = Union[str, Path]

_MISSING = object()

# ETHICS commonsense has long Reddit posts; the csv module's default 128 KiB cell limit is too small.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True)
class Loc:
    """Where a row came from: a 1-based physical ``line``, a 1-based data ``row`` (CSV) or an ``item`` path (JSON)."""

    line: Optional[int] = None
    row: Optional[int] = None
    item: Optional[str] = None

    def describe(self, path: PathLike) -> str:
        """``file:line`` plus the row or item, e.g. ``data.csv:12 (row 11)`` or ``task.json:40 (Instances[3])``."""
        head = f"{path}:{self.line}" if self.line is not None else str(path)
        extra = []
        if self.row is not None:
            extra.append(f"row {self.row}")
        if self.item is not None:
            extra.append(self.item)
        return head + (f" ({', '.join(extra)})" if extra else "")


class BadRow(Exception):
    """A row that does not have the shape its format expects.

    ``field`` names the offending field (dotted for nested values, e.g. ``conversations[2].from``),
    ``expected`` says what it should have been. ``reason`` is a short form used to count skips.
    """

    def __init__(self, field: Optional[str], expected: str, got: Any = _MISSING, *, detail: Optional[str] = None):
        self.field = field
        self.expected = expected
        self.got = got
        self.detail = detail
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if self.detail is not None:
            body = self.detail
        elif self.got is _MISSING:
            body = f"missing (expected {self.expected})"
        else:
            body = f"expected {self.expected}, got {describe_value(self.got)}"
        return f"field '{self.field}': {body}" if self.field else body

    @property
    def reason(self) -> str:
        """Short, row-independent text so that skip reasons can be counted."""
        if self.detail is not None and self.field is None:
            return re.sub(r"\d+", "N", self.detail)[:80]
        if self.got is _MISSING and self.detail is None:
            return f"missing field '{self.field}'"
        return f"field '{self.field}': expected {self.expected}" if self.field else f"expected {self.expected}"


def describe_value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, str):
        s = v if len(v) <= 40 else v[:37] + "..."
        return f"text {s!r}" if v else "empty text"
    if isinstance(v, bool):
        return f"boolean {v}".lower()
    if isinstance(v, (int, float)):
        return f"number {v}"
    if isinstance(v, list):
        return f"a list of {len(v)}"
    if isinstance(v, dict):
        keys = ", ".join(list(v)[:5])
        return f"an object with keys {keys}" if v else "an empty object"
    return type(v).__name__


# ---------------------------------------------------------------------------------
# opening
# ---------------------------------------------------------------------------------


def is_gzip(path: PathLike) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def logical_suffix(path: PathLike) -> str:
    """Extension without a trailing ``.gz``: ``x.jsonl.gz`` -> ``.jsonl``."""
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def logical_stem(path: PathLike) -> str:
    """File name without ``.gz`` and the data extension: ``cm_test.csv.gz`` -> ``cm_test``."""
    name = Path(path).name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    suf = logical_suffix(path)
    return name[: -len(suf)] if suf and name.lower().endswith(suf) else name


def check_file(path: PathLike) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"Data file {p} does not exist.", hint="Check the path (relative paths resolve against the current folder).")
    if p.is_dir():
        raise DataError(
            f"{p} is a folder, not a data file.",
            hint="Pass one file; a folder is only readable as a saved Hugging Face dataset (--format hf_datasets).",
        )
    return p


def check_not_empty(path: PathLike) -> None:
    """Refuse an empty file (or an empty gzip stream) with that reason, not a format guess."""
    p = Path(path)
    if p.is_dir():
        return
    if p.stat().st_size == 0:
        raise DataError(f"{p} is empty (0 bytes).", hint="The file holds no data: check that it was written or downloaded completely.")
    if is_gzip(p):
        try:
            with gzip.open(p, "rb") as fh:
                head = fh.read(1 << 16)
        except (OSError, EOFError) as exc:
            raise _decode_error(p, exc) from exc
        if not head.strip():
            raise DataError(f"{p} is empty once decompressed.", hint="The gzip stream holds no data: re-create the file.")
    elif not p.read_bytes()[: 1 << 16].strip():
        raise DataError(f"{p} holds only blank lines.", hint="The file holds no data: check that it was written completely.")


def not_gzip_error(path: PathLike) -> Optional[DataError]:
    """The error for a file named ``.gz`` whose content is not gzip (None when that is not the case)."""
    p = Path(path)
    if p.name.lower().endswith(".gz") and p.is_file() and not is_gzip(p):
        with open(p, "rb") as fh:
            first = fh.read(4)
        return DataError(
            f"{p} is named .gz but is not gzip-compressed (it starts with bytes {first!r}, not the gzip magic b'\\x1f\\x8b').",
            hint="Re-download or re-compress the file (gzip FILE), or rename it without .gz if it is plain text.",
        )
    return None


def deep_json_error(path: PathLike, line: Optional[int] = None) -> DataError:
    """A JSON value nested deeper than Python's parser can follow (it would end in RecursionError)."""
    where = f"{path}:{line}" if line else str(path)
    return DataError(
        f"{where}: the JSON is nested too deeply to read (deeper than Python's limit of about "
        f"{sys.getrecursionlimit()} levels).",
        hint="No dataset record needs that depth; the file is probably damaged or not the data you meant.",
    )


def open_text(path: PathLike, *, newline: Optional[str] = None) -> io.TextIOBase:
    """Open a text file for reading, decompressing gzip transparently (by content, not by name)."""
    p = check_file(path)
    if is_gzip(p):
        return gzip.open(p, "rt", encoding="utf-8-sig", newline=newline)  # type: ignore[return-value]
    return open(p, "r", encoding="utf-8-sig", newline=newline)


def _decode_error(path: PathLike, exc: Exception) -> DataError:
    bad_gz = not_gzip_error(path)
    if bad_gz is not None:
        return bad_gz
    if isinstance(exc, UnicodeDecodeError):
        return DataError(
            f"{path}: not UTF-8 text (byte {exc.start} of a block cannot be decoded).",
            hint="Re-save the file as UTF-8.",
        )
    return DataError(f"{path}: cannot be read as gzip ({exc}).", hint="The file looks compressed but is damaged; re-download it.")


def read_text(path: PathLike) -> str:
    try:
        with open_text(path) as fh:
            return fh.read()
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise _decode_error(path, exc) from exc


def head_lines(path: PathLike, n: int = 5, max_chars: int = 1 << 20) -> list[str]:
    """The first ``n`` non-empty lines (for format detection)."""
    out: list[str] = []
    read = 0
    try:
        with open_text(path) as fh:
            for line in fh:
                read += len(line)
                if line.strip():
                    out.append(line.rstrip("\r\n"))
                if len(out) >= n or read > max_chars:
                    break
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise _decode_error(path, exc) from exc
    return out


# ---------------------------------------------------------------------------------
# JSON Lines
# ---------------------------------------------------------------------------------


def iter_jsonl(path: PathLike) -> Iterator[tuple[Loc, Any]]:
    """Yield ``(Loc(line), object)`` per non-empty line; an unparseable line yields a :class:`BadRow` as the object."""
    try:
        with open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    obj = BadRow(None, "one JSON object per line", detail=f"not valid JSON ({exc.msg} at column {exc.colno})")
                except RecursionError:
                    raise deep_json_error(path, lineno) from None
                else:
                    if not isinstance(obj, dict):
                        obj = BadRow(None, "a JSON object", detail=f"expected a JSON object, got {describe_value(obj)}")
                yield Loc(line=lineno), obj
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise _decode_error(path, exc) from exc


def read_jsonl_objects(path: PathLike, *, hint: Optional[str] = None,
                       error: type[Exception] = DataError) -> Iterator[tuple[int, dict]]:
    """Yield ``(line number, object)`` for every non-empty line; stop at the first bad one.

    Why next to :func:`iter_jsonl`: project-specific files (task data, attack lists,
    human labels, judge prompts) have no ``--skip-bad`` mode, so a bad line is an
    error that names the file and line; ``error`` lets config files raise ConfigError.
    """
    for loc, obj in iter_jsonl(path):
        if isinstance(obj, BadRow):
            raise error(f"{path}:{loc.line}: {obj.detail or obj.expected}.", hint=hint)
        yield loc.line, obj


# ---------------------------------------------------------------------------------
# JSON documents (arrays keep line numbers)
# ---------------------------------------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _json_error(path: PathLike, text: str, exc: json.JSONDecodeError) -> DataError:
    return DataError(
        f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}).",
        hint="Fix the JSON syntax; a file with one object per line is JSONL and is read line by line.",
    )


def iter_json_array(path: PathLike, text: str, start: int, item_prefix: str = "") -> Iterator[tuple[Loc, Any]]:
    """Yield ``(Loc(line, item='[i]'), element)`` for the JSON array that starts at ``text[start] == '['``.

    Why not ``json.loads``: it loses where each element starts, and errors must name the line.
    """
    assert text[start] == "["
    idx = _WS.match(text, start + 1).end()
    line = text.count("\n", 0, idx) + 1
    last = idx
    i = 0
    if idx < len(text) and text[idx] == "]":
        return
    while True:
        line += text.count("\n", last, idx)
        last = idx
        try:
            value, end = _DECODER.raw_decode(text, idx)
        except json.JSONDecodeError as exc:
            raise _json_error(path, text, exc) from exc
        except RecursionError:
            raise deep_json_error(path, line) from None
        yield Loc(line=line, item=f"{item_prefix}[{i}]"), value
        i += 1
        idx = _WS.match(text, end).end()
        if idx >= len(text):
            raise DataError(f"{path}: the JSON array is not closed (missing ']').", hint="The file looks truncated.")
        if text[idx] == "]":
            return
        if text[idx] != ",":
            lineno = text.count("\n", 0, idx) + 1
            raise DataError(f"{path}:{lineno}: expected ',' or ']' between array elements.", hint="Fix the JSON syntax.")
        idx = _WS.match(text, idx + 1).end()


def load_json(path: PathLike, text: Optional[str] = None) -> Any:
    text = read_text(path) if text is None else text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _json_error(path, text, exc) from exc
    except RecursionError:
        raise deep_json_error(path) from None


def find_key_array(text: str, key: str) -> Optional[int]:
    """Offset of the ``[`` that opens the array under the top-level-looking key ``"key": [``, if unique."""
    hits = [m.end() - 1 for m in re.finditer(r'(?<!\\)"' + re.escape(key) + r'"\s*:\s*\[', text)]
    return hits[0] if len(hits) == 1 else None


def iter_json_records(path: PathLike, text: Optional[str] = None) -> Iterator[tuple[Loc, Any]]:
    """Elements of a JSON array file, or the single object of a JSON object file.

    A ``{"data": [...]}`` wrapper (a common export shape) is unwrapped.
    """
    text = read_text(path) if text is None else text
    idx = _WS.match(text).end()
    if idx < len(text) and text[idx] == "[":
        yield from iter_json_array(path, text, idx)
        return
    doc = load_json(path, text)
    if isinstance(doc, dict) and set(doc) == {"data"} and isinstance(doc["data"], list):
        start = find_key_array(text, "data")
        if start is not None:
            yield from iter_json_array(path, text, start, item_prefix="data")
            return
        for i, v in enumerate(doc["data"]):
            yield Loc(item=f"data[{i}]"), v
        return
    yield Loc(line=1), doc


def json_kind(path: PathLike) -> str:
    """``jsonl`` when the file is one object per line, ``json`` for a single JSON document, ``""`` when unsure."""
    lines = head_lines(path, 2)
    if not lines:
        return ""
    first = lines[0].lstrip()
    if first.startswith("["):
        return "json"
    if first.startswith("{"):
        try:
            json.loads(lines[0])
        except json.JSONDecodeError:
            return "json"  # an object spread over several lines
        except RecursionError:
            raise deep_json_error(path, 1) from None
        return "jsonl"
    return ""


# ---------------------------------------------------------------------------------
# CSV / TSV
# ---------------------------------------------------------------------------------


def sniff_delimiter(path: PathLike) -> str:
    if logical_suffix(path) == ".tsv":
        return "\t"
    lines = head_lines(path, 1)
    if not lines:
        return ","
    return "\t" if lines[0].count("\t") > lines[0].count(",") else ","


@dataclass
class Table:
    """A CSV/TSV file's header (``None`` for header-less files) and its delimiter."""

    header: Optional[list[str]]
    delimiter: str


def iter_csv(
    path: PathLike, *, header: bool = True, delimiter: Optional[str] = None, min_columns: Optional[int] = None
) -> Iterator[tuple[Loc, Any]]:
    """Yield ``(Loc(line, row), row)``; rows are dicts keyed by header, or lists when ``header=False``.

    ``line`` is the physical line where the row *starts* (cells may span lines).
    A row with the wrong number of cells yields a :class:`BadRow`.
    """
    delim = delimiter or sniff_delimiter(path)
    try:
        with open_text(path, newline="") as fh:
            reader = csv.reader(fh, delimiter=delim)
            cols: Optional[list[str]] = None
            if header:
                try:
                    cols = next(reader)
                except StopIteration:
                    return
                if len(set(cols)) != len(cols):
                    dup = sorted({c for c in cols if cols.count(c) > 1})
                    raise DataError(f"{path}:1: the header repeats column(s) {', '.join(map(repr, dup))}.", hint="Column names must be unique.")
            prev_end = reader.line_num
            row_no = 0
            for cells in reader:
                start = prev_end + 1
                prev_end = reader.line_num
                if not cells or all(not c.strip() for c in cells):
                    continue
                row_no += 1
                loc = Loc(line=start, row=row_no)
                if cols is not None:
                    if len(cells) != len(cols):
                        yield loc, BadRow(
                            None, f"{len(cols)} cells", detail=f"expected {len(cols)} cells (one per header column), got {len(cells)}"
                        )
                        continue
                    yield loc, dict(zip(cols, cells))
                else:
                    if min_columns is not None and len(cells) < min_columns:
                        yield loc, BadRow(None, f"{min_columns} cells", detail=f"expected {min_columns} cells, got {len(cells)}")
                        continue
                    yield loc, cells
    except csv.Error as exc:
        raise DataError(f"{path}: not valid CSV ({exc}).", hint="Check quoting: a cell with the delimiter or a newline must be quoted.") from exc
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise _decode_error(path, exc) from exc


def csv_header(path: PathLike, delimiter: Optional[str] = None) -> list[str]:
    delim = delimiter or sniff_delimiter(path)
    try:
        with open_text(path, newline="") as fh:
            for cells in csv.reader(fh, delimiter=delim):
                return cells
    except csv.Error:
        return []
    return []


def csv_first_rows(path: PathLike, n: int = 3, delimiter: Optional[str] = None) -> list[list[str]]:
    delim = delimiter or sniff_delimiter(path)
    out: list[list[str]] = []
    try:
        with open_text(path, newline="") as fh:
            for cells in csv.reader(fh, delimiter=delim):
                out.append(cells)
                if len(out) >= n:
                    break
    except csv.Error:
        return out
    return out
