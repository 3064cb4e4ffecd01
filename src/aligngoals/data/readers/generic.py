"""Self-describing and mapped formats: ``records_jsonl``, plain ``jsonl``/``json``/``csv`` with a field
mapping, and Hugging Face ``datasets`` sources (saved folders, data files, hub names).

Why a mapping instead of one reader per dataset: most datasets people bring are
"a table whose columns mean X"; naming the columns is enough to turn them into
records, and what is not mapped is kept in ``meta`` so nothing is lost.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any, Iterator, Optional

import yaml

from aligngoals.data import fields as F
from aligngoals.data import sources as S
from aligngoals.data.formats import FormatSpec, Peek, ReadContext, build, detector, register
from aligngoals.data.readers._common import default_id, json_or_jsonl_rows
from aligngoals.data.records import RECORD_TYPES, Record
from aligngoals.data.sources import BadRow, Loc
from aligngoals.errors import ConfigError, DataError

# ---------------------------------------------------------------------------------
# records_jsonl: what `aligngoals data convert --to jsonl` writes
# ---------------------------------------------------------------------------------


def record_from_dict(row: dict) -> Record:
    """Rebuild a record from its ``model_dump`` (``record_type`` says which class)."""
    rt = row.get("record_type")
    if rt not in RECORD_TYPES:
        raise BadRow("record_type", f"one of {', '.join(RECORD_TYPES)}", rt if "record_type" in row else S._MISSING)
    return build(RECORD_TYPES[rt], **row)


def _records(row: dict, loc: Loc, ctx: ReadContext) -> list:
    return [record_from_dict(row)]


register(
    FormatSpec(
        name="records_jsonl",
        group="generic",
        description="aligngoals' own JSONL, one record per line with its record_type (what 'data convert --to jsonl' writes); reads back to the same records.",
        example='{"record_type": "preference_pair", "id": "a:1", "meta": {}, "prompt": "...", "chosen": "...", "rejected": "...", "prompt_messages": null, "margin": null}',
        produces=tuple(RECORD_TYPES),
        rows=json_or_jsonl_rows,
        convert=_records,
    )
)


@detector("records_jsonl", priority=0)
def _is_records(pk: Peek) -> bool:
    return pk.kind in ("json", "jsonl") and bool(pk.rows) and all(isinstance(r, dict) and r.get("record_type") in RECORD_TYPES for r in pk.rows)


# ---------------------------------------------------------------------------------
# mapping rows onto record types
# ---------------------------------------------------------------------------------

#: record type -> fields a row must provide (checked in this order when the type is inferred)
REQUIRED_FIELDS: list[tuple[str, tuple[str, ...]]] = [
    ("rating", ("prompt", "responses", "scores")),
    ("preference_pair", ("prompt", "chosen", "rejected")),
    ("ranking", ("prompt", "responses")),
    ("multiple_choice", ("question", "choices", "answer")),
    ("questionnaire_item", ("instrument", "item_id", "text", "dimension")),
    ("conversation", ("messages",)),
    ("instruction", ("instruction",)),
    ("social_norm", ("action",)),
]


def parse_mapping(value: Any) -> dict[str, str]:
    """A field mapping ``{record_field: source_field}`` from a dict, ``"a=b,c=d"`` or a YAML/JSON file path."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    s = str(value)
    if "=" not in s and Path(s).is_file():
        try:
            raw = yaml.safe_load(Path(s).read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"Mapping file {s} is not valid YAML: {exc}.") from exc
        if isinstance(raw, dict) and "mapping" in raw and isinstance(raw["mapping"], dict):
            raw = raw["mapping"]
        if not isinstance(raw, dict):
            raise ConfigError(f"Mapping file {s} must hold a mapping record_field: source_field.")
        return {str(k): str(v) for k, v in raw.items()}
    out = {}
    for part in s.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise ConfigError(f"Mapping entry {part!r}: expected record_field=source_field (e.g. prompt=question).")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _get_path(row: dict, dotted: str) -> Any:
    node: Any = row
    if dotted in row:
        return row[dotted]
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return S._MISSING
    return node


def _wants_list(cls: type[Record], field: str) -> bool:
    ann = cls.model_fields[field].annotation
    origin = typing.get_origin(ann)
    if origin is typing.Union:
        return any(typing.get_origin(a) is list for a in typing.get_args(ann))
    return origin is list


def _coerce(cls: type[Record], field: str, value: Any, source: str) -> Any:
    if field == "id" and value is not None and not isinstance(value, str):
        return str(value)
    if field == "meta" and isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise BadRow(source, "a JSON object", value) from exc
    if _wants_list(cls, field) and isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            try:
                return json.loads(s)
            except json.JSONDecodeError as exc:
                raise BadRow(source, "a JSON list", value) from exc
    if hasattr(value, "tolist"):  # numpy arrays from pandas/parquet
        return value.tolist()
    return value


def infer_record_type(keys: set[str], mapping: dict[str, str]) -> Optional[str]:
    available = set(keys) | set(mapping)
    for rt, req in REQUIRED_FIELDS:
        if set(req) <= available:
            return rt
    return None


def resolve_mapping(ctx: ReadContext, row: dict, path: Path) -> tuple[type[Record], dict[str, str]]:
    """The record class and mapping for this file, fixed on its first good row."""
    if "cls" in ctx.state:
        return ctx.state["cls"], ctx.state["mapping"]
    mapping = parse_mapping(ctx.opt("mapping"))
    rt = ctx.opt("record_type")
    if rt is None:
        rt = infer_record_type(set(row), mapping)
        if rt is None:
            raise DataError(
                f"{path}: cannot tell which record type the rows are (fields: {', '.join(list(row)[:12])}).",
                hint="Pass record_type (--record-type preference_pair|instruction|...) and a mapping "
                "(--map prompt=question --map chosen=good_answer ...); see docs/data-formats.md.",
            )
    if rt not in RECORD_TYPES:
        raise ConfigError(f"Unknown record type {rt!r}.", hint=f"Record types: {', '.join(RECORD_TYPES)}.")
    cls = RECORD_TYPES[rt]
    bad = sorted(set(mapping) - set(cls.model_fields) - {"record_type"})
    if bad:
        raise ConfigError(
            f"Mapping names field(s) {', '.join(bad)} that record type {rt!r} does not have.",
            hint=f"Fields of {rt}: {', '.join(f for f in cls.model_fields if f != 'record_type')}.",
        )
    ctx.state["cls"], ctx.state["mapping"] = cls, mapping
    return cls, mapping


def map_row(row: dict, loc: Loc, ctx: ReadContext) -> list:
    """One raw row -> one record of the configured (or inferred) type; unmapped fields go to meta."""
    cls, mapping = resolve_mapping(ctx, row, ctx.path)
    fields: dict[str, Any] = {}
    used: set[str] = set()
    sources: dict[str, str] = {}
    for target, src in mapping.items():
        v = _get_path(row, src)
        if v is S._MISSING:
            raise BadRow(src, f"a value (mapped to {target})")
        fields[target] = _coerce(cls, target, v, src)
        used.add(src.split(".")[0] if src not in row else src)
        sources[target] = src
    for name in cls.model_fields:
        if name in fields or name == "record_type" or name not in row or name in used:
            continue
        if row[name] is None:
            used.add(name)
            continue
        fields[name] = _coerce(cls, name, row[name], name)
        used.add(name)
        sources[name] = name
    meta = dict(fields.get("meta") or {})
    if ctx.opt_bool("keep_rest", True):
        for k, v in row.items():
            if k not in used and k != "record_type":
                meta.setdefault(str(k), F.jsonable(v.tolist() if hasattr(v, "tolist") else v))
    fields["meta"] = meta
    if fields.get("id") is None:
        fields["id"] = default_id(ctx, loc)
    return [build(cls, sources, **fields)]


_MAP_OPTS = {
    "record_type": f"record type to build: {', '.join(RECORD_TYPES)} (inferred from the fields when omitted)",
    "mapping": "record_field=source_field pairs (comma-separated, dotted paths allowed) or a YAML file of them",
    "keep_rest": "keep unmapped fields in meta (default true)",
}


def _table_rows(path: Path, ctx: ReadContext) -> Iterator[tuple[Loc, Any]]:
    yield from S.iter_csv(path)


for _name, _rows, _desc in (
    ("jsonl", json_or_jsonl_rows, "Any JSONL (or JSON array) file; rows become records of record_type through mapping."),
    ("json", json_or_jsonl_rows, "Any JSON array (or JSONL) file; rows become records of record_type through mapping."),
    ("csv", _table_rows, "Any CSV/TSV file with a header; rows become records of record_type through mapping (JSON lists allowed in cells)."),
):
    register(
        FormatSpec(
            name=_name,
            group="generic",
            description=_desc + " Without record_type the type is inferred from the field names.",
            example="--format jsonl --record-type preference_pair --map prompt=question --map chosen=good --map rejected=bad",
            produces=tuple(RECORD_TYPES),
            rows=_rows,
            convert=map_row,
            options=dict(_MAP_OPTS),
        )
    )


@detector("jsonl", priority=1000)
def _is_jsonl(pk: Peek) -> bool:
    return pk.kind == "jsonl"


@detector("json", priority=1000)
def _is_json(pk: Peek) -> bool:
    return pk.kind == "json"


@detector("csv", priority=1000)
def _is_csv(pk: Peek) -> bool:
    return pk.kind == "csv" and bool(pk.header)


# ---------------------------------------------------------------------------------
# Hugging Face datasets
# ---------------------------------------------------------------------------------

_HF_FILE_BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".json": "json", ".jsonl": "json", ".csv": "csv", ".tsv": "csv"}
#: fields that ``save_hf`` stores as JSON text (their shape varies between rows, which Arrow cannot hold)
HF_JSON_FIELDS = ("meta", "exemplars")


def _import_datasets():
    try:
        import datasets  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(
            "Reading or writing Hugging Face datasets needs the 'datasets' package.",
            hint="pip install 'aligngoals[train]' (or pip install datasets).",
        ) from exc
    return datasets


def open_hf_dataset(source: str, *, split: Optional[str] = None, config: Optional[str] = None):
    """A ``datasets.Dataset`` from a saved folder, a local data file or a hub name (no remote code)."""
    datasets = _import_datasets()
    p = Path(source).expanduser()
    try:
        if p.is_dir():
            ds = datasets.load_from_disk(str(p))
        elif p.is_file():
            builder = _HF_FILE_BUILDERS.get(S.logical_suffix(p))
            if builder is None:
                raise DataError(f"{p}: no Hugging Face loader for {p.suffix!r} files.", hint=f"Use one of {', '.join(_HF_FILE_BUILDERS)}.")
            kwargs = {"delimiter": "\t"} if S.logical_suffix(p) == ".tsv" else {}
            ds = datasets.load_dataset(builder, data_files=str(p), split=split or "train", **kwargs)
        else:
            ds = datasets.load_dataset(source, config, split=split or "train")
    except (FileNotFoundError, ValueError) as exc:
        raise DataError(f"Cannot load Hugging Face dataset {source!r}: {exc}", hint="Check the name, split and config, or the path.") from exc
    except Exception as exc:  # datasets raises many types (hub errors, offline mode, ...)
        if isinstance(exc, (DataError, ConfigError)):
            raise
        raise DataError(f"Cannot load Hugging Face dataset {source!r}: {type(exc).__name__}: {exc}", hint="Check the name, split and network/offline settings.") from exc
    if isinstance(ds, datasets.DatasetDict):
        splits = list(ds)
        if split is None and len(splits) == 1:
            split = splits[0]
        if split not in ds:
            raise DataError(f"{source}: holds splits {', '.join(splits)}; pick one.", hint="Pass split=NAME (--opt split=NAME).")
        ds = ds[split]
    return ds


def _hf_rows(path: Path, ctx: ReadContext) -> Iterator[tuple[Loc, Any]]:
    ds = open_hf_dataset(str(path), split=ctx.opt("split"), config=ctx.opt("config"))
    ctx.state["records_mode"] = "record_type" in ds.column_names and ctx.opt("record_type") is None and not ctx.opt("mapping")
    for i, row in enumerate(ds):
        yield Loc(row=i + 1), row


def _hf_convert(row: dict, loc: Loc, ctx: ReadContext) -> list:
    if ctx.state.get("records_mode"):
        rt = row.get("record_type")
        if rt not in RECORD_TYPES:
            raise BadRow("record_type", f"one of {', '.join(RECORD_TYPES)}", rt)
        cls = RECORD_TYPES[rt]
        fields = {}
        for k, v in row.items():
            if v is None or k not in cls.model_fields:
                continue
            if k in HF_JSON_FIELDS and isinstance(v, str):
                try:
                    v = json.loads(v)
                except json.JSONDecodeError as exc:
                    raise BadRow(k, "JSON text", v) from exc
            fields[k] = v
        return [build(cls, **fields)]
    return map_row(row, loc, ctx)


register(
    FormatSpec(
        name="hf_datasets",
        group="generic",
        description=(
            "A Hugging Face datasets source: a folder written by save_to_disk (e.g. by 'data convert --to hf'), a local "
            ".parquet/.arrow/.json/.jsonl/.csv file, or a hub name (split, config). Folders with a record_type column read "
            "back as records; anything else needs record_type/mapping (or has them inferred)."
        ),
        example="aligngoals data inspect Anthropic/hh-rlhf --format hf_datasets --opt split=test --record-type preference_pair",
        produces=tuple(RECORD_TYPES),
        rows=_hf_rows,
        convert=_hf_convert,
        options={"split": "split to read (default: train, or the only split)", "config": "dataset configuration name (hub)", **_MAP_OPTS},
        accepts_dir=True,
    )
)


@detector("hf_datasets", priority=1)
def _is_hf(pk: Peek) -> bool:
    return pk.kind in ("dir", "parquet", "arrow")
