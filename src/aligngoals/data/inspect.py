"""``aligngoals data inspect`` as a function: counts, field coverage and examples of one file.

Why a library function: the CLI only prints what this returns, and tests check
the numbers here against the files themselves.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from aligngoals.data import sources as S
from aligngoals.data.formats import ReadContext, ReadReport, detect_format, get_format, iter_records
from aligngoals.data.writers import record_to_dict

GENERIC = ("jsonl", "json", "csv")


def _filled(v: Any) -> bool:
    return not (v is None or v == "" or v == [] or v == {})


@dataclass
class Inspection:
    """What a file holds. ``mode`` is ``records`` (rows mapped to records) or ``rows`` (raw rows only:
    a generic file whose rows do not match any record type without a mapping)."""

    path: str
    format: str
    detected: bool
    mode: str
    report: ReadReport
    coverage: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    """``{record_type (or 'row'): {field: (filled, total)}}``."""
    meta_coverage: dict[str, dict[str, int]] = field(default_factory=dict)
    examples: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "format": self.format,
            "detected": self.detected,
            "mode": self.mode,
            "report": self.report.to_dict(),
            "coverage": {rt: {f: list(v) for f, v in cov.items()} for rt, cov in self.coverage.items()},
            "meta_coverage": self.meta_coverage,
            "examples": self.examples,
        }


def _wants_raw(path: str, fmt: str, options: dict) -> bool:
    if fmt not in GENERIC or options.get("record_type") or options.get("mapping"):
        return False
    from aligngoals.data.readers.generic import infer_record_type

    spec = get_format(fmt)
    ctx = ReadContext(path=Path(path), stem=S.logical_stem(path), options={})
    for _, row in spec.rows(Path(path), ctx):
        if isinstance(row, dict):
            return infer_record_type(set(row), {}) is None
    return True


def inspect_file(
    path: str | Path,
    format: Optional[str] = None,
    *,
    skip_bad: bool = False,
    limit: Optional[int] = None,
    examples: int = 3,
    **options: Any,
) -> Inspection:
    """Read a file and summarise it (format detected when ``format`` is None)."""
    src = str(path)
    detected = format is None
    fmt = format or detect_format(src)
    report = ReadReport(path=src, format=fmt)
    insp = Inspection(path=src, format=fmt, detected=detected, mode="records", report=report)
    if _wants_raw(src, fmt, options):
        insp.mode = "rows"
        _inspect_rows(insp, src, fmt, skip_bad=skip_bad, limit=limit, examples=examples)
        return insp
    counts: dict[str, Counter] = defaultdict(Counter)
    totals: Counter = Counter()
    meta_counts: dict[str, Counter] = defaultdict(Counter)
    for rec in iter_records(src, fmt, skip_bad=skip_bad, limit=limit, report=report, **options):
        d = record_to_dict(rec)
        rt = rec.record_type
        totals[rt] += 1
        for k, v in d.items():
            if k in ("record_type", "meta"):
                continue
            counts[rt][k] += int(_filled(v))
        for k, v in rec.meta.items():
            meta_counts[rt][k] += int(_filled(v))
        if len(insp.examples) < examples:
            insp.examples.append(d)
    for rt, n in totals.items():
        insp.coverage[rt] = {k: (c, n) for k, c in counts[rt].items()}
        insp.meta_coverage[rt] = dict(meta_counts[rt].most_common())
    return insp


def _inspect_rows(insp: Inspection, src: str, fmt: str, *, skip_bad: bool, limit: Optional[int], examples: int) -> None:
    from aligngoals.errors import DataError

    spec = get_format(fmt)
    ctx = ReadContext(path=Path(src), stem=S.logical_stem(src), options={})
    rep = insp.report
    counts: Counter = Counter()
    for loc, row in spec.rows(Path(src), ctx):
        if limit is not None and rep.rows >= limit:
            rep.truncated = True
            break
        rep.rows += 1
        if isinstance(row, S.BadRow):
            if not skip_bad:
                raise DataError(f"{loc.describe(src)}: {row.message}.", hint="Fix the row or pass --skip-bad.")
            rep.skipped += 1
            rep.skip_reasons[row.reason] += 1
            if len(rep.skip_examples) < 5:
                rep.skip_examples.append(f"{loc.describe(src)}: {row.message}")
            continue
        for k, v in row.items():
            counts[k] += int(_filled(v))
        if len(insp.examples) < examples:
            insp.examples.append(row)
    kept = rep.rows - rep.skipped
    insp.coverage["row"] = {k: (c, kept) for k, c in counts.items()}
