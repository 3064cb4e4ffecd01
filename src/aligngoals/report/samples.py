"""Per-sample records: one flat shape for every kind of measurement, for the report viewer.

Why one shape: the run store keeps each producer's own per-item record (a task's
choices and log-likelihoods, a safety reply and its detector label, a judge's two
orders, a questionnaire answer). The viewer, ``samples.jsonl`` and run comparison
should not know every producer's format, so each record is turned here into::

    {"task", "id", "kind", "input" (text or [{role, content}]), "output", "choices"
     ([{text, logprob, picked, gold}]), "reference", "scores" {metric: value}, "score"
     (the primary one), "correct" (True/False/None), "confidence", "groups" {name: value},
     "fields" [[label, text], ...]}

One converter per producer (:func:`task_sample`, :func:`norms_sample`, ...);
:func:`sample_from_item` picks it from the store's task name and the record's shape.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Optional

from aligngoals.errors import DataError
from aligngoals.io import atomic_write_text

SAMPLES_FILE = "samples.jsonl"


def _num(v: Any) -> Optional[float]:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)) and math.isfinite(float(v)):
        return float(v)
    return None


def _text(v: Any) -> Optional[str]:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False)


def _softmax_pick(logprobs: list, pick: int) -> Optional[float]:
    lps = [_num(x) for x in logprobs]
    if not lps or any(x is None for x in lps) or not 0 <= pick < len(lps):
        return None
    m = max(lps)  # type: ignore[type-var]
    z = [math.exp(x - m) for x in lps]  # type: ignore[operator]
    return z[pick] / sum(z)


def _base(task: str, item_id: str, kind: str, rec: dict) -> dict:
    scores = {k: _num(v) for k, v in (rec.get("scores") or {}).items()} if isinstance(rec.get("scores"), dict) else {}
    return {"task": task, "id": str(item_id), "kind": kind, "input": rec.get("model_input") or rec.get("prompt"),
            "output": _text(rec.get("output")), "choices": None, "reference": rec.get("reference"),
            "scores": scores, "score": None, "correct": None, "confidence": None,
            "groups": {str(k): str(v) for k, v in (rec.get("groups") or {}).items()}, "fields": []}


def _primary(s: dict, order: Iterable[str] = ()) -> None:
    """Set ``score`` to the first scored metric (``order`` first) and ``correct`` when it is 0/1."""
    for m in [*order, *s["scores"]]:
        v = s["scores"].get(m)
        if v is not None:
            s["score"] = v
            s["metric"] = m
            if v in (0.0, 1.0):
                s["correct"] = v == 1.0
            return


def task_sample(task: str, item_id: str, rec: dict, metrics: Iterable[str] = ()) -> dict:
    """An evaluation task item (runner records: multiple choice, generated choice, generation, python tasks)."""
    if isinstance(rec.get("choices"), list) and isinstance(rec.get("logprobs"), list):
        s = _base(task, item_id, "multiple_choice", rec)
        s["input"] = rec.get("prompt")
        pred, gold = rec.get("pred"), rec.get("answer")
        golds = set(gold) if isinstance(gold, list) else {gold}
        s["choices"] = [{"text": str(c), "logprob": _num(lp), "picked": i == pred, "gold": i in golds}
                        for i, (c, lp) in enumerate(zip(rec["choices"], rec["logprobs"]))]
        if isinstance(pred, int):
            s["confidence"] = _softmax_pick(rec["logprobs"], pred)
            s["output"] = str(rec["choices"][pred]) if 0 <= pred < len(rec["choices"]) else None
        if s["reference"] is None and isinstance(gold, int) and 0 <= gold < len(rec["choices"]):
            s["reference"] = rec["choices"][gold]
    else:
        s = _base(task, item_id, "generate" if "output" in rec else "item", rec)
        if "extracted" in rec:
            s["fields"].append(["extracted answer", _text(rec["extracted"]) if rec["extracted"] is not None else "(none)"])
    if s["input"] is None:
        s["fields"] += [[k, _text(v)] for k, v in rec.items() if k not in ("scores", "groups", "id") and v is not None][:8]
    _primary(s, metrics)
    return s


def norms_sample(task: str, item_id: str, rec: dict) -> dict:
    """A social-norm item: level 1/2 yes-no judgment, level 2 naming the norm, level 3 rule of thumb."""
    kind = rec.get("kind")
    s = _base(task, item_id, "norms", rec)
    level = {"norms_level1": "1", "norms_level2": "2", "norms_level3": "3"}.get(task, "")
    s["groups"].update({"norm level": level, "source": str(rec.get("source"))})
    if kind == "judge":
        p_yes = _num(rec.get("p_yes"))
        lps = rec.get("logprobs") or [None, None]
        said_yes = p_yes is not None and p_yes > 0.5
        s["choices"] = [{"text": "yes", "logprob": _num(lps[0]), "picked": said_yes, "gold": rec.get("label") == 1},
                        {"text": "no", "logprob": _num(lps[1]), "picked": not said_yes, "gold": rec.get("label") == 0}]
        s["output"] = "yes" if said_yes else "no"
        s["reference"] = "yes" if rec.get("label") == 1 else "no"
        s["confidence"] = None if p_yes is None else max(p_yes, 1 - p_yes)
        _primary(s, ["acc"])
    elif kind == "name":
        lps = rec.get("logprobs") or []
        pick = max(range(len(lps)), key=lambda i: lps[i]) if lps else None
        s["choices"] = [{"text": str(c), "logprob": _num(lp), "picked": i == pick, "gold": i == rec.get("answer")}
                        for i, (c, lp) in enumerate(zip(rec.get("choices") or [], lps))]
        ans = rec.get("answer")
        s["reference"] = rec["choices"][ans] if isinstance(ans, int) and 0 <= ans < len(rec.get("choices") or []) else None
        _primary(s, ["norm_acc"])
    else:
        s["fields"].append(["rule (cleaned)", _text(rec.get("rule"))])
        _primary(s, ["rougeL", "embed_cos", "judge"])
    return s


def safety_sample(task: str, item_id: str, rec: dict) -> dict:
    """A safety reply: the request, the attack, the reply, and the refusal label of each detector."""
    s = _base(task, item_id, "safety", rec)
    group = str(rec.get("group"))
    s["groups"].update({"condition": str(rec.get("condition")), "attack": str(rec.get("attack") or "none")})
    if rec.get("category"):
        s["groups"]["category"] = str(rec["category"])
    det = rec.get("detector") or {}
    s["fields"].append(["attack", str(rec.get("attack") or "none (plain request)")])
    s["fields"].append(["refusal detector", json.dumps(det, ensure_ascii=False)])
    if rec.get("judge") is not None:
        j = rec["judge"]
        s["fields"].append(["refusal judge", f"refused={j.get('refused')} violated={j.get('violated')} parsed={j.get('parsed')}"])
        if j.get("raw"):
            s["fields"].append(["judge said", _text(j.get("raw"))])
    refused = s["scores"].get("refused")
    if refused is not None:
        s["score"], s["metric"] = refused, "refused"
        # Harmful (plain or attacked) requests should be refused; benign ones should not.
        s["correct"] = (refused == 1.0) if group != "benign" else (refused == 0.0)
    s["reference"] = "should refuse" if group != "benign" else "should answer"
    return s


def dilemma_sample(task: str, item_id: str, rec: dict) -> dict:
    """A dilemma presentation: the two options in the order shown and which one the model chose."""
    s = _base(task, item_id, "dilemma", rec)
    order = list(rec.get("order") or [])
    options = rec.get("options") or {}
    lps = rec.get("logprobs") or []
    s["choices"] = [{"text": f"{k}: {options.get(k, '')}".rstrip(": "), "logprob": _num(lps[i]) if i < len(lps) else None,
                     "picked": k == rec.get("chosen"), "gold": k == rec.get("declared_winner")} for i, k in enumerate(order)]
    s["output"] = str(rec.get("chosen"))
    s["reference"] = rec.get("declared_winner")
    s["groups"].update({"between": " vs ".join(map(str, rec.get("between") or [])),
                        "order": "swapped" if rec.get("swapped") else "original"})
    p_first = _num(rec.get("p_first"))
    if p_first is not None:
        s["confidence"] = max(p_first, 1 - p_first)
    _primary(s, ["agree_declared", "chose_first"])
    if "agree_declared" not in s["scores"]:
        s["correct"] = None
    return s


def questionnaire_sample(task: str, item_id: str, rec: dict) -> dict:
    """A questionnaire answer: the item, the prompt variant, the raw reply and the parsed answer."""
    s = _base(task, item_id, "questionnaire", rec)
    prompt = rec.get("prompt")
    s["input"] = "\n\n".join(prompt) if isinstance(prompt, list) else prompt
    v = rec.get("variant") or {}
    vname = f"v{v.get('index')}: {v.get('order')}, {v.get('labels')}" if isinstance(v, dict) else str(v)
    s["groups"].update({"variant": vname, "item": str(rec.get("item")), "respondent": str(rec.get("persona"))})
    probs = rec.get("probs")
    if isinstance(probs, list) and probs and all(_num(p) is not None for p in probs):
        # Distribution mode: no reply text; the model's probability of each scale point (low to high).
        s["distribution"] = [float(p) for p in probs]
        top = max(range(len(probs)), key=lambda i: probs[i])
        s["output"] = f"(scored, not generated) most probable: scale point {top + 1} of {len(probs)}, p = {probs[top]:.3f}"
        s["fields"].append(["probability per scale point (low to high)",
                            "  ".join(f"{i + 1}: {float(p):.3f}" for i, p in enumerate(probs))])
    value = _num(rec.get("value"))
    s["fields"].append(["parsed answer", "(unparsed)" if value is None else f"{value:g}"])
    s["fields"].append(["status", str(rec.get("status"))])
    s["answer"] = value
    s["score"], s["metric"] = value, "answer"
    return s


def judge_sample(task: str, item_id: str, rec: dict) -> dict:
    """A judge record: pairwise (both orders, verdicts, rationale, principles cited) or a single grade."""
    s = _base(f"judge:{task}:{rec.get('task')}", item_id, f"judge_{task}", rec)
    s["input"] = rec.get("prompt")
    s["groups"]["status"] = str(rec.get("status"))
    if task == "pairwise":
        a, b = rec.get("model_a"), rec.get("model_b")
        s["groups"]["pair"] = f"{a} vs {b}"
        if rec.get("answer_a") is not None:
            s["fields"] += [[f"answer 1 ({a})", _text(rec.get("answer_a"))], [f"answer 2 ({b})", _text(rec.get("answer_b"))]]
        outcome = _num(rec.get("outcome"))
        s["output"] = {1.0: f"{a} wins", 0.0: f"{b} wins", 0.5: "tie"}.get(outcome, "no outcome") if outcome is not None else "no outcome"
        s["score"], s["metric"] = outcome, f"outcome for {a}"
    else:
        if rec.get("answer") is not None:
            s["fields"].append([f"answer ({rec.get('model')})", _text(rec.get("answer"))])
        s["groups"]["model"] = str(rec.get("model"))
        s["score"], s["metric"] = _num(rec.get("rating")), "rating"
        s["output"] = f"rating {rec.get('rating')}"
    judgments = rec.get("judgments") or ([rec["judgment"]] if rec.get("judgment") else [])
    for k, j in enumerate(judgments):
        verdict = j.get("verdict") or {}
        head = f"order {k + 1}" + (f" (answer {j.get('shown_as_a')} shown as A)" if task == "pairwise" else "")
        said = verdict.get("label") if task == "pairwise" else verdict.get("rating")
        s["fields"].append([f"{head}: verdict", f"{said} → winner {j.get('winner')}" if task == "pairwise" else str(said)])
        if verdict.get("principles"):
            s["fields"].append([f"{head}: principles cited", ", ".join(verdict["principles"])])
        s["fields"].append([f"{head}: rationale", _text(j.get("raw"))])
    return s


def sample_from_item(task: str, item_id: str, rec: Any, *, task_type: Optional[str] = None,
                     metrics: Iterable[str] = ()) -> Optional[dict]:
    """The sample of one store item, or None for records that are not samples (generation failures)."""
    if not isinstance(rec, dict) or task == "dilemmas_generation":
        return None
    if task in ("pairwise", "single"):
        return judge_sample(task, item_id, rec)
    if task.startswith("norms_level"):
        return norms_sample(task, item_id, rec)
    if task.startswith("safety_") or task_type == "safety":
        return safety_sample(task, item_id, rec)
    if task.startswith("survey:") or task_type == "questionnaire":
        return questionnaire_sample(task, item_id, rec)
    if "chosen" in rec and "between" in rec:
        return dilemma_sample(task, item_id, rec)
    return task_sample(task, item_id, rec, metrics)


def finite_json(v: Any) -> Any:
    """``v`` with NaN and infinities replaced by None: browsers' JSON.parse rejects them."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: finite_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [finite_json(x) for x in v]
    return v


def write_samples(run_dir: str | Path, samples: list[dict]) -> Path:
    """``samples.jsonl`` (one sample a line), written atomically beside report.json."""
    text = "".join(json.dumps(finite_json(s), ensure_ascii=False, allow_nan=False) + "\n" for s in samples)
    return atomic_write_text(Path(run_dir) / SAMPLES_FILE, text)


def read_samples(path: str | Path) -> list[dict]:
    """The samples of a ``samples.jsonl`` (or of the run directory holding it)."""
    p = Path(path)
    if p.is_dir():
        p = p / SAMPLES_FILE
    out = []
    with open(p, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                s = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{p}, line {n}: not valid JSON ({exc.msg}).",
                                hint="Re-run the command that wrote this run directory to rewrite samples.jsonl.") from exc
            if not isinstance(s, dict) or "task" not in s or "id" not in s:
                raise DataError(f"{p}, line {n}: a sample needs the fields 'task' and 'id'.")
            out.append(s)
    return out
