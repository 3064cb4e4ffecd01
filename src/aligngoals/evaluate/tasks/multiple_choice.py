"""Multiple choice by log-likelihood: score every choice as a continuation of the prompt.

All choices of an item share the prompt, so the model computes it once
(shared-prefix reuse in the backends).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from jinja2 import StrictUndefined
from jinja2.exceptions import UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from ...data.records import MultipleChoiceItem
from ...errors import ConfigError, DataError
from ...models.base import LoglikelihoodRequest
from .. import metrics as M
from ..cached import CachedModel
from .spec import TaskSpec

_ENV = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)


def read_mc_jsonl(path: Path) -> list[MultipleChoiceItem]:
    """JSONL of ``{"question", "choices", "answer"}`` (+ optional id, context, meta).

    Why here: the foundation's multiple-choice format; errors name file, line and field.
    """
    if not path.is_file():
        raise DataError(f"Data file {path} does not exist.", hint="Check the task's data.path or pass --data-dir.")
    items = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}:{lineno}: not valid JSON ({exc.msg}).",
                    hint="Each line must be one JSON object with question, choices and answer.",
                ) from exc
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}.")
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
                        context=row.get("context"),
                        meta=row.get("meta", {}),
                    )
                )
            except ValueError as exc:
                raise DataError(f"{path}:{lineno}: {exc}".rstrip(".") + ".") from exc
    if not items:
        raise DataError(f"Data file {path} has no items.")
    return items


def render(template: str, fields: dict, *, where: str) -> str:
    try:
        return _ENV.from_string(template).render(**fields)
    except UndefinedError as exc:
        raise ConfigError(f"{where}: template uses an unknown field ({exc.message}).",
                          hint=f"Available fields: {', '.join(sorted(fields))}.") from exc


def build_requests(spec: TaskSpec, item: MultipleChoiceItem) -> list[LoglikelihoodRequest]:
    fields = {**item.model_dump(), "meta": item.meta}
    ctx = render(spec.prompt, fields, where=f"task {spec.name} prompt")
    return [
        LoglikelihoodRequest(ctx, render(spec.choice, {**fields, "choice": c, "index": i}, where=f"task {spec.name} choice"))
        for i, c in enumerate(item.choices)
    ]


def run_multiple_choice(
    spec: TaskSpec,
    items: list[MultipleChoiceItem],
    model: CachedModel,
    progress: Callable[[int], None] | None = None,
) -> list[dict]:
    """Score every item; returns per-item records (stored in the run store's items table)."""
    all_reqs = [build_requests(spec, it) for it in items]
    flat = [r for reqs in all_reqs for r in reqs]
    results = model.loglikelihood(flat, progress=progress)
    out, pos = [], 0
    for it, reqs in zip(items, all_reqs):
        res = results[pos : pos + len(reqs)]
        pos += len(reqs)
        lps = [r.logprob for r in res]
        conts = [r.continuation for r in reqs]
        scores = {}
        if "acc" in spec.metrics:
            scores["acc"] = M.mc_acc(lps, it.answer)
        if "acc_norm" in spec.metrics:
            scores["acc_norm"] = M.mc_acc_norm(lps, conts, it.answer)
        out.append({"id": it.id, "answer": it.answer, "logprobs": lps, "n_tokens": [r.n_tokens for r in res],
                    "scores": scores})
    return out


def request_count(items: list[MultipleChoiceItem]) -> int:
    return sum(len(it.choices) for it in items)
