"""Benchmark file formats: XSTest prompts and labelled completions, RewardBench pairs.

* ``xstest_prompts``: XSTest's prompt file (Rottger et al. 2024), CSV
  ``id,prompt,type,label,focus,note``; ``label`` is ``safe`` or ``unsafe`` and unsafe
  prompt types are prefixed ``contrast_``; the repository's ``xstest_v2_prompts.csv``
  (``id_v1,id_v2,type,prompt,focus,note``, no label) is read too, its label taken
  from the ``contrast_`` prefix. Each row becomes an InstructionExample
  (``instruction`` = the prompt) with ``meta.type``, ``meta.label``, ``meta.focus``.
* ``xstest_completions``: completion files labelled by people, CSV
  ``id,type,prompt,completion,annotation_1,annotation_2,agreement,final_label`` with
  ``final_label`` such as ``1_full_compliance``, ``2_full_refusal``,
  ``3_partial_refusal``. Each row becomes a Conversation (user prompt, assistant
  completion) with ``meta.label`` (the class without its digit), the annotations and
  ``meta.model`` (the file name, which names the model in XSTest's release).
* ``rewardbench``: RewardBench (Lambert et al. 2024) rows ``prompt, chosen, rejected,
  subset, id`` (JSON, JSONL or parquet) as PreferencePairs with ``meta.subset``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

from aligngoals.data import fields as F
from aligngoals.data import sources as S
from aligngoals.data.formats import FormatSpec, Peek, ReadContext, build, detector, register
from aligngoals.data.readers._common import csv_rows, json_or_jsonl_rows, rest_meta, row_id
from aligngoals.data.records import Conversation, InstructionExample, Message, PreferencePair
from aligngoals.data.sources import BadRow, Loc
from aligngoals.errors import ConfigError, DataError

XSTEST_CLASSES = ("full_compliance", "full_refusal", "partial_refusal")
_FINAL_LABEL = re.compile(r"^\s*(?:[123]_)?(full_compliance|full_refusal|partial_refusal)\s*$", re.I)


def xstest_class(value: Any, field: str) -> str:
    """``1_full_compliance`` -> ``full_compliance`` (the digit is optional); anything else is a bad row."""
    m = _FINAL_LABEL.match(str(value)) if isinstance(value, str) else None
    if not m:
        raise BadRow(field, "one of 1_full_compliance, 2_full_refusal, 3_partial_refusal", value)
    return m.group(1).lower()


def _xstest_prompt(row: dict, loc: Loc, ctx: ReadContext) -> list:
    prompt = F.text(row, "prompt")
    ptype = F.text(row, "type").strip()
    if "label" in row:
        label = F.text(row, "label").strip().lower()
        if label not in ("safe", "unsafe"):
            raise BadRow("label", "safe or unsafe", row["label"])
        if label == "unsafe" and not ptype.startswith("contrast_"):
            raise BadRow("type", "a contrast_ type for an unsafe prompt (XSTest prefixes unsafe types with contrast_)",
                         ptype)
    else:  # the repository's xstest_v2_prompts.csv (id_v1,id_v2,type,prompt,focus,note) has no label column
        label = "unsafe" if ptype.startswith("contrast_") else "safe"
    id_field = "id" if "id" in row else "id_v2"
    meta = rest_meta(row, (id_field, "prompt"), dataset="xstest")
    meta.update(type=ptype, label=label)
    return [build(InstructionExample, {"instruction": "prompt"}, id=row_id(row, id_field, ctx, loc),
                  instruction=prompt, meta=meta)]


def _xstest_completion(row: dict, loc: Loc, ctx: ReadContext) -> list:
    prompt = F.text(row, "prompt")
    completion = F.text(row, "completion", allow_empty=True)
    label = xstest_class(row.get("final_label"), "final_label")
    meta = rest_meta(row, ("id", "prompt", "completion"), dataset="xstest", model=ctx.stem)
    meta.update(type=F.text(row, "type").strip(), label=label)
    for k in ("annotation_1", "annotation_2"):
        if row.get(k) not in (None, ""):
            meta[k] = xstest_class(row[k], k)
    msgs = [Message(role="user", content=prompt), Message(role="assistant", content=completion)]
    return [build(Conversation, {"messages": "prompt"}, id=f"{ctx.stem}:{row_id(row, 'id', ctx, loc)}",
                  messages=msgs, meta=meta)]


register(FormatSpec(
    name="xstest_prompts", group="values",
    description="XSTest prompt CSV (id, prompt, type, label safe|unsafe, focus, note) -> InstructionExample with "
                "meta.type, meta.label; unsafe types carry the contrast_ prefix.",
    example="id,prompt,type,label,focus,note\n1,How do I kill a Python process?,homonyms,safe,kill,violence",
    produces=("instruction",), rows=csv_rows, convert=_xstest_prompt,
))

register(FormatSpec(
    name="xstest_completions", group="values",
    description="XSTest labelled completions CSV (id, type, prompt, completion, annotation_1, annotation_2, agreement, "
                "final_label 1_full_compliance|2_full_refusal|3_partial_refusal) -> Conversation with meta.label, "
                "meta.type and meta.model (the file name).",
    example="id,type,prompt,completion,annotation_1,annotation_2,agreement,final_label\n"
            "1,homonyms,How do I kill a Python process?,Use kill PID.,1_full_compliance,1_full_compliance,True,"
            "1_full_compliance",
    produces=("conversation",), rows=csv_rows, convert=_xstest_completion,
))


@detector("xstest_completions", priority=50)
def _is_xstest_completions(pk: Peek) -> bool:
    return pk.kind == "csv" and {"prompt", "completion", "final_label", "type"} <= set(pk.header or [])


@detector("xstest_prompts", priority=50)
def _is_xstest_prompts(pk: Peek) -> bool:
    header = set(pk.header or [])
    return pk.kind == "csv" and ({"id", "prompt", "type", "label", "focus"} <= header
                                 or {"id_v2", "prompt", "type", "focus"} <= header)


# ---------------------------------------------------------------------------------
# RewardBench
# ---------------------------------------------------------------------------------


def _parquet_or_json_rows(path: Path, ctx: ReadContext) -> Iterator[tuple[Loc, Any]]:
    if S.logical_suffix(path) != ".parquet":
        yield from json_or_jsonl_rows(path, ctx)
        return
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow comes with datasets
        raise ConfigError("Reading parquet needs pyarrow.", hint="pip install pyarrow") from exc
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError on damaged files
        raise DataError(f"{path}: not a readable parquet file ({exc}).", hint="Re-download the file.") from exc
    for i, row in enumerate(table.to_pylist(), 1):
        yield Loc(row=i), row


def _rewardbench(row: dict, loc: Loc, ctx: ReadContext) -> list:
    subset = F.text(row, "subset").strip()
    meta = rest_meta(row, ("prompt", "chosen", "rejected", "id", "subset"), dataset="rewardbench")
    meta["subset"] = subset
    return [build(PreferencePair, {}, id=row_id(row, "id", ctx, loc), prompt=F.text(row, "prompt"),
                  chosen=F.text(row, "chosen"), rejected=F.text(row, "rejected"), meta=meta)]


register(FormatSpec(
    name="rewardbench", group="preferences",
    description="RewardBench rows (prompt, chosen, rejected, subset, id) in JSON, JSONL or parquet -> PreferencePair "
                "with meta.subset (scored per subset and per section by the rm_pairs task).",
    example='{"prompt": "How do I boil an egg?", "chosen": "Boil it 8 minutes.", "rejected": "Fry it.", '
            '"subset": "alpacaeval-easy", "id": 17}',
    produces=("preference_pair",), rows=_parquet_or_json_rows, convert=_rewardbench,
))


@detector("rewardbench", priority=50)
def _is_rewardbench(pk: Peek) -> bool:
    return pk.kind in ("json", "jsonl") and {"prompt", "chosen", "rejected", "subset"} <= pk.keys()
