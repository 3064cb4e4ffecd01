"""Where a task's items come from: a file read by a reader of :mod:`aligngoals.data`,
the foundation's ``mc_jsonl`` format, plain ``jsonl`` objects, or Hugging Face ``datasets``.

Every source yields *docs*: plain dicts whose keys are the template fields. A
record from :mod:`aligngoals.data` becomes its ``model_dump()`` (so a
``PreferencePair`` gives ``prompt``, ``chosen``, ``rejected``, ``meta``...).

A data file that does not exist raises :class:`MissingData`, which the runner
turns into a skipped task with the reason in the report (suites point at datasets
the project does not ship).
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from aligngoals.data.records import MultipleChoiceItem
from aligngoals.data.sources import read_jsonl_objects
from aligngoals.errors import ConfigError, DataError
from aligngoals.evaluate.tasks.prompting import get_field
from aligngoals.evaluate.tasks.spec import DataSource, TaskSpec


class MissingData(DataError):
    """The task's data file is not there; the task is skipped, not failed."""


def _files(spec: TaskSpec, rel: str, data_dir: str | None) -> list[Path]:
    p = spec.resolve_path(rel, data_dir)
    if glob.has_magic(str(p)):
        files = sorted(Path(f) for f in glob.glob(str(p)) if Path(f).is_file())
        if not files:
            raise MissingData(spec.missing_reason(rel, data_dir))
        return files
    if not p.exists():
        raise MissingData(spec.missing_reason(rel, data_dir))
    return [p]


def _read_jsonl(path: Path) -> list[dict]:
    from aligngoals.data.sources import BadRow, iter_jsonl

    rows = []
    for loc, obj in iter_jsonl(path):
        if isinstance(obj, BadRow):
            raise DataError(f"{loc.describe(path)}: {obj.message}.", hint="Each line must be one JSON object.")
        rows.append(obj)
    return rows


def _read_with_reader(path: Path, fmt: str, options: dict) -> list[dict]:
    try:
        from aligngoals.data import load_records
    except ImportError as exc:  # the readers live in aligngoals.data
        raise ConfigError(
            f"Data format {fmt!r} needs the readers of aligngoals.data (load_records), which this install lacks.",
            hint="Use format 'mc_jsonl' or 'jsonl', or a 'datasets' source.",
        ) from exc
    records = load_records(path, format=fmt, **options)
    out = []
    for r in records:
        out.append(r.model_dump(mode="json") if hasattr(r, "model_dump") else dict(r))
    return out


def _read_datasets(spec: TaskSpec, src: DataSource, data_dir: str | None) -> list[dict]:
    ds_spec = src.datasets
    assert ds_spec is not None
    try:
        import datasets
    except ImportError as exc:
        raise ConfigError(f"Task {spec.name} reads through Hugging Face 'datasets', which is not installed.",
                          hint="pip install datasets") from exc
    data_files = ds_spec.data_files
    if data_files is not None:
        def res(f: str) -> str:
            return str(_files(spec, f, data_dir)[0]) if not glob.has_magic(f) else str(spec.resolve_path(f, data_dir))

        if isinstance(data_files, str):
            data_files = res(data_files)
        elif isinstance(data_files, list):
            data_files = [res(f) for f in data_files]
        elif isinstance(data_files, dict):
            data_files = {k: (res(v) if isinstance(v, str) else [res(x) for x in v]) for k, v in data_files.items()}
    try:
        ds = datasets.load_dataset(ds_spec.path, ds_spec.name, split=ds_spec.split, data_files=data_files,
                                   revision=ds_spec.revision)
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as exc:
        raise DataError(f"Task {spec.name}: datasets could not load {ds_spec.path!r} ({exc}).",
                        hint="Check data.datasets (local data_files, or a dataset already in the local cache).") from exc
    return [dict(row) for row in ds]


def read_source(spec: TaskSpec, src: DataSource, data_dir: str | None) -> list[dict]:
    """Raw docs of one data source, before renaming, filtering and limits."""
    if src.datasets is not None:
        docs = _read_datasets(spec, src, data_dir)
    else:
        assert src.path is not None
        docs = []
        for f in _files(spec, src.path, data_dir):
            stem = f.name
            if src.format == "mc_jsonl":
                rows = [it.model_dump(mode="json") for it in read_mc_jsonl(f)]
            elif src.format == "jsonl":
                rows = _read_jsonl(f)
            else:
                rows = _read_with_reader(f, src.format, src.options)
            for i, row in enumerate(rows):
                row.setdefault("_source", stem)
                row.setdefault("_index", i)
            docs.extend(rows)
    for name, path in src.fields.items():
        for d in docs:
            d[name] = get_field(d, path, None)
    if src.where:
        def keep(d: dict) -> bool:
            for k, v in src.where.items():
                got = get_field(d, k, None)
                if isinstance(v, list):
                    if got not in v:
                        return False
                elif got != v:
                    return False
            return True

        docs = [d for d in docs if keep(d)]
    return docs


def assign_ids(spec: TaskSpec, docs: list[dict]) -> list[dict]:
    """Give every doc a stable, unique ``id`` (its own id field, else file name and position)."""
    seen: dict[str, int] = {}
    for i, d in enumerate(docs):
        raw: Any = get_field(d, spec.id_field, None)
        if raw is None or raw == "":
            raw = f"{d.get('_source', 'item')}:{d.get('_index', i)}"
        key = str(raw)
        if key in seen:
            seen[key] += 1
            key = f"{key}#{seen[key]}"
        else:
            seen[key] = 0
        d["id"] = key
    return docs


def read_mc_jsonl(path: Path) -> list[MultipleChoiceItem]:
    """JSONL of ``{"question", "choices", "answer"}`` (+ optional id, context, answers, meta).

    Why here: the foundation's multiple-choice format; errors name file, line and field.
    """
    if not path.is_file():
        raise DataError(f"Data file {path} does not exist.", hint="Check the task's data.path or pass --data-dir.")
    items = []
    for lineno, row in read_jsonl_objects(
            path, hint="Each line must be one JSON object with question, choices and answer."):
        for field, kind in (("question", str), ("choices", list), ("answer", int)):
            if field not in row:
                raise DataError(
                    f"{path}:{lineno}: missing field '{field}'.",
                    hint="Each line needs question (text), choices (list of text) and answer (index of the correct choice).",
                )
            if not isinstance(row[field], kind) or (kind is int and isinstance(row[field], bool)):
                raise DataError(
                    f"{path}:{lineno}: field '{field}' must be {kind.__name__}, got {type(row[field]).__name__}."
                )
        try:
            items.append(
                MultipleChoiceItem(
                    id=str(row.get("id", lineno)),
                    question=row["question"],
                    choices=[str(c) for c in row["choices"]],
                    answer=row["answer"],
                    answers=row.get("answers"),
                    context=row.get("context"),
                    meta=row.get("meta", {}),
                )
            )
        except ValueError as exc:
            raise DataError(f"{path}:{lineno}: {exc}".rstrip(".") + ".") from exc
    if not items:
        raise DataError(f"Data file {path} has no items.")
    return items
