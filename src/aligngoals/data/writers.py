"""Writing normalized records: aligngoals JSONL and Hugging Face ``datasets`` folders.

Why both: JSONL is the lossless interchange format (``records_jsonl`` reads it back
to equal records); a saved ``datasets.Dataset`` is what trainers (TRL) consume,
with plain columns such as ``prompt``/``chosen``/``rejected`` and ``messages``.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Union

from aligngoals.data.records import Record
from aligngoals.errors import ConfigError
from aligngoals.io import atomic_write_bytes, atomic_write_text

PathLike = Union[str, Path]


def record_to_dict(rec: Record) -> dict:
    """The JSON form of a record, ``record_type`` included (what ``records_jsonl`` reads)."""
    return rec.model_dump(mode="json")


def write_jsonl(records: Iterable[Record], path: PathLike) -> Path:
    """Write records as JSONL atomically (gzip-compressed when the name ends in ``.gz``); returns the path."""
    text = "".join(json.dumps(record_to_dict(r), ensure_ascii=False) + "\n" for r in records)
    p = Path(path)
    if p.name.endswith(".gz"):
        return atomic_write_bytes(p, gzip.compress(text.encode("utf-8"), mtime=0))
    return atomic_write_text(p, text)


def records_to_hf_rows(records: Iterable[Record]) -> list[dict]:
    """One flat dict per record, every column present in every row (missing ones are None).

    ``meta`` and ``exemplars`` are JSON text: their shape varies from row to row,
    which an Arrow column cannot hold; everything else stays a native column.
    """
    from aligngoals.data.readers.generic import HF_JSON_FIELDS

    rows = []
    for r in records:
        d = record_to_dict(r)
        for k in HF_JSON_FIELDS:
            if k in d:
                d[k] = json.dumps(d[k], ensure_ascii=False, sort_keys=True)
        rows.append(d)
    columns: list[str] = []
    for d in rows:
        for k in d:
            if k not in columns:
                columns.append(k)
    return [{k: d.get(k) for k in columns} for d in rows]


def to_hf_dataset(records: Iterable[Record]):
    """A ``datasets.Dataset`` of the records (see :func:`records_to_hf_rows` for the columns)."""
    from aligngoals.data.readers.generic import _import_datasets

    datasets = _import_datasets()
    rows = records_to_hf_rows(records)
    if not rows:
        raise ConfigError("No records to write.", hint="Check the input file and the reader options (filters).")
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    return datasets.Dataset.from_dict(columns)


def save_hf(records: Iterable[Record], path: PathLike, *, overwrite: bool = False) -> Path:
    """``datasets.Dataset.save_to_disk`` into ``path``, written to a temporary sibling folder and renamed.

    Why the rename: a crash mid-save must not leave a half-written dataset that
    later loads as if it were complete.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise ConfigError(f"{p} already exists.", hint="Choose another --out or pass --overwrite.")
    ds = to_hf_dataset(records)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", dir=p.parent))
    try:
        ds.save_to_disk(str(tmp / "ds"))
        if p.exists():
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        os.replace(tmp / "ds", p)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return p
