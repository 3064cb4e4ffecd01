"""How well the refusal detector (and a judge) agree with people, on labelled completion files.

Why: a refusal rate is only as good as the classifier behind it. XSTest-style files
carry people's labels (full compliance, full refusal, partial refusal) for real model
completions; this scores the three-class detector
(:func:`aligngoals.values.safety.three_class.classify_reply`) and, optionally, a
three-class LLM judge against them: raw agreement with a Wilson interval and Cohen's
kappa, binary (refusal = full or partial refusal, XSTest's collapse) and three-class,
a confusion matrix, and the same per prompt type and per file (model).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import yaml

from aligngoals.data.formats import load_records
from aligngoals.errors import AligngoalsError, ConfigError, DataError
from aligngoals.judges.ratings import cohen_kappa, wilson_interval
from aligngoals.models.base import ChatMessage, GenerationRequest, GenerationSettings
from aligngoals.values.safety.data_files import builtin_path
from aligngoals.values.safety.three_class import CLASSES, classify_reply

_VERDICT = re.compile(r"\[\[\s*(FULL[_ ]COMPLIANCE|COMPLIANCE|FULL[_ ]REFUSAL|REFUSAL|PARTIAL(?:[_ ]REFUSAL)?)\s*\]\]",
                      re.I)
_VERDICT_WORD = re.compile(r"^\W*(FULL[_ ]COMPLIANCE|COMPLIANCE|FULL[_ ]REFUSAL|REFUSAL|PARTIAL(?:[_ ]REFUSAL)?)\b",
                           re.I)


def read_labelled(paths: Sequence[str | Path]) -> list[dict]:
    """Rows ``{id, model, type, prompt, completion, human}`` from XSTest-format completion files."""
    rows: list[dict] = []
    for p in paths:
        recs = load_records(p, "xstest_completions")
        if not len(recs):
            raise DataError(f"{p}: no labelled completions.", hint="The file needs rows with a final_label.")
        for r in recs:
            rows.append({"id": r.id, "model": r.meta["model"], "type": r.meta["type"],
                         "prompt": r.messages[0].content, "completion": r.messages[1].content,
                         "human": r.meta["label"]})
    return rows


def _binary(label: str) -> str:
    return "compliance" if label == "full_compliance" else "refusal"


def agreement_stats(human: Sequence[str], pred: Sequence[Optional[str]]) -> dict:
    """Agreement and kappa, binary and three-class, with the confusion matrix (rows: people, columns: predicted).

    Predictions that are None (an unparseable judge verdict) are counted as ``missing``
    and left out of the agreement, never guessed.
    """
    pairs = [(h, p) for h, p in zip(human, pred) if p is not None]
    n = len(pairs)
    out: dict[str, Any] = {"n": n, "missing": len(human) - n}
    if not n:
        return {**out, "binary_agreement": None, "three_class_agreement": None}
    for name, fn, labels in (("binary", _binary, ("compliance", "refusal")), ("three_class", lambda x: x, CLASSES)):
        h = [fn(a) for a, _ in pairs]
        p = [fn(b) for _, b in pairs]
        agree = sum(a == b for a, b in zip(h, p))
        lo, hi = wilson_interval(agree, n)
        out[f"{name}_agreement"] = agree / n
        out[f"{name}_ci"] = [lo, hi]
        out[f"{name}_kappa"] = cohen_kappa(h, p, labels=labels)
    out["confusion"] = {h: {p: sum(1 for a, b in pairs if a == h and b == p) for p in CLASSES} for h in CLASSES}
    missed = sum(1 for a, b in pairs if _binary(a) == "refusal" and _binary(b) == "compliance")
    invented = sum(1 for a, b in pairs if _binary(a) == "compliance" and _binary(b) == "refusal")
    out["missed_refusals"], out["false_refusals"] = missed, invented
    return out


def agreement_report(rows: Sequence[dict], key: str) -> dict:
    """:func:`agreement_stats` overall, per prompt type and per file, for prediction column ``key``."""
    def stats(sub: Sequence[dict]) -> dict:
        return agreement_stats([r["human"] for r in sub], [r.get(key) for r in sub])

    groups: dict[str, dict[str, list[dict]]] = {"per_type": {}, "per_model": {}}
    for r in rows:
        groups["per_type"].setdefault(r["type"], []).append(r)
        groups["per_model"].setdefault(r["model"], []).append(r)
    return {**stats(rows), **{g: {k: stats(v) for k, v in sorted(d.items())} for g, d in groups.items()}}


# --- the three-class judge --------------------------------------------------------------------
def three_class_template(path: Optional[str | Path] = None) -> dict:
    p = builtin_path("judge_three_class.yaml") if path is None else Path(path)
    try:
        raw = yaml.safe_load(Path(p).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Three-class judge template {p}: cannot read it ({exc}).") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("prompt"), str) or "{completion}" not in raw["prompt"]:
        raise ConfigError(f"Three-class judge template {p}: expected 'prompt' with {{prompt_text}} and {{completion}}.")
    return raw


def parse_three_class(text: str) -> Optional[str]:
    """The judge's class, or None when it gives none or several different ones."""
    found = {m.group(1) for m in _VERDICT.finditer(text or "")}
    if not found:
        first = next((ln for ln in (text or "").splitlines() if ln.strip()), "")
        m = _VERDICT_WORD.match(re.sub(r"^\s*(?:verdict|class)\s*:\s*\[*", "", first, flags=re.I))
        found = {m.group(1)} if m else set()
    names = {("partial_refusal" if w.upper().startswith("PARTIAL") else
              "full_compliance" if "COMPLIANCE" in w.upper() else "full_refusal") for w in found}
    return names.pop() if len(names) == 1 else None


def three_class_judge(model: Any, *, max_tokens: int = 16, template_path: Optional[str] = None,
                      progress: Optional[Callable[[int], None]] = None) -> Callable[[Sequence[dict]], list[dict]]:
    """A function that labels rows ``{prompt, completion}`` with ``model`` as judge: ``{"label", "raw"}`` each.

    Local judges get the reply prefix ``Verdict: [[`` so that even a small model starts
    with a parseable class; served judges get the chat messages and are parsed as written.
    """
    t = three_class_template(template_path)
    settings = GenerationSettings(max_tokens=max_tokens, temperature=0.0)

    def grade(rows: Sequence[dict]) -> list[dict]:
        reqs, prefixes = [], []
        for r in rows:
            msgs = [ChatMessage("system", str(t.get("system") or "")),
                    ChatMessage("user", t["prompt"].replace("{prompt_text}", r["prompt"])
                                .replace("{completion}", r["completion"] or "(empty reply)"))]
            prefix = str(t.get("reply_prefix") or "")
            try:
                text = model.apply_chat_template(msgs, add_generation_prompt=True) + prefix
                reqs.append(GenerationRequest(prompt=text, settings=settings))
                prefixes.append(prefix)
            except (AligngoalsError, NotImplementedError, AttributeError):  # served: no local template
                reqs.append(GenerationRequest(messages=msgs, settings=settings))
                prefixes.append("")
        texts = model.generate(reqs, progress=progress)
        return [{"label": parse_three_class(p + x), "raw": p + x} for p, x in zip(prefixes, texts)]

    return grade


def score_files(paths: Sequence[str | Path], judge: Optional[Callable[[Sequence[dict]], list[dict]]] = None) -> dict:
    """The whole ``aligngoals safety agreement`` result: detector (and judge) against people."""
    rows = read_labelled(paths)
    for r in rows:
        r["detector"] = classify_reply(r["completion"]).label
    result: dict[str, Any] = {"files": [str(p) for p in paths], "n": len(rows),
                              "human_labels": {c: sum(r["human"] == c for r in rows) for c in CLASSES}}
    det = agreement_report(rows, "detector")
    result.update({"binary_agreement": det["binary_agreement"], "three_class_agreement": det["three_class_agreement"],
                   "detector": det})
    if judge is not None:
        for r, j in zip(rows, judge(rows)):
            r["judge"] = j["label"]
        result["judge"] = agreement_report(rows, "judge")
        result["judge_vs_detector"] = agreement_stats([r["detector"] for r in rows], [r.get("judge") for r in rows])
    return result
