"""Judge modes: how a judging run turns matched answers into judge calls and summary figures.

Why a registry: a mode (pairwise in both orders, single 1-10 grades, or one a
plug-in adds through the ``aligngoals.judge_modes`` entry point) decides three
things: which judge calls to make, what one stored record holds, and which
mode-specific figures the summary gets. Keeping the three together in one class
replaces the if/else chains that used to spread a mode over several functions.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any, Iterator, Optional, Protocol, Sequence

from aligngoals.errors import ConfigError
from aligngoals.evaluate.metrics import summarize
from aligngoals.judges.judge import PairInput, PairwiseJudge, SingleInput, SingleJudge
from aligngoals.plugins import GROUPS, Registry


def rate(k: int, n: int) -> Optional[float]:
    return k / n if n else None


class JudgeMode(Protocol):
    name: str

    def pairs(self, labels: Sequence[str], baseline: Optional[str]) -> list[tuple[str, str]]: ...

    def run(self, model: Any, items: Sequence[Any], labels: Sequence[str], pairs: Sequence[tuple[str, str]], *,
            templates: Any, rubric: Any, settings: Any, run: Any) -> list[tuple[str, dict]]: ...

    def judgments(self, record: dict) -> list[dict]: ...

    def verdicts_against(self, record: dict) -> Iterator[tuple[str, list[str]]]: ...

    def summarize(self, out: dict, records: Sequence[dict], statuses: Counter, parsed: list[dict]) -> None: ...


class PairwiseMode:
    """Every pair of runs (or each run against a baseline), judged in both orders."""

    name = "pairwise"

    def pairs(self, labels: Sequence[str], baseline: Optional[str]) -> list[tuple[str, str]]:
        if baseline is None:
            return list(itertools.combinations(labels, 2))
        if baseline not in labels:
            raise ConfigError(f"Baseline {baseline!r} is not one of the runs ({', '.join(labels)}).")
        return [(baseline, x) for x in labels if x != baseline]

    def run(self, model, items, labels, pairs, *, templates, rubric, settings, run):
        judge = PairwiseJudge(model, templates=templates, rubric=rubric, settings=settings)
        inputs, keys = [], []
        for it in items:
            for a, b in pairs:
                inputs.append(PairInput(it.prompt, it.outputs[a], it.outputs[b], it.reference))
                keys.append((it, a, b))
        total = 2 * sum(1 for p in inputs if p.answer_1.strip() != p.answer_2.strip())
        bar = run.bar(f"Judging {len(inputs)} pairs in both orders", total)
        results = judge.judge(inputs, progress=bar.advance)
        bar.close()
        rows = []
        for (it, a, b), res in zip(keys, results):
            rec = {"task": it.task, "item_id": it.item_id, "prompt": it.prompt, "reference": it.reference,
                   "model_a": a, "model_b": b, "answer_a": it.outputs[a], "answer_b": it.outputs[b],
                   "len_a": len(it.outputs[a]), "len_b": len(it.outputs[b]), **res.to_dict()}
            rows.append((f"{it.task}::{it.item_id}::{a}::{b}", rec))
        return rows

    def judgments(self, record: dict) -> list[dict]:
        return list(record.get("judgments") or [])

    def verdicts_against(self, record: dict) -> Iterator[tuple[str, list[str]]]:
        """(loser, principles cited) of each parsed decisive verdict."""
        names = {"1": record["model_a"], "2": record["model_b"]}
        for j in record.get("judgments") or []:
            if j["verdict"]["error"] is None and j.get("winner") in ("1", "2"):
                yield names["2" if j["winner"] == "1" else "1"], j["verdict"]["principles"]

    def summarize(self, out: dict, records: Sequence[dict], statuses: Counter, parsed: list[dict]) -> None:
        labels = Counter(j["verdict"]["label"] for j in parsed)
        decided = statuses.get("consistent", 0) + statuses.get("inconsistent", 0)
        flips = sum(1 for r in records if r.get("flip"))
        out["pairs"] = {
            "n": len(records),
            "consistent": statuses.get("consistent", 0),
            "inconsistent": statuses.get("inconsistent", 0),
            "flips": flips,
            "identical": statuses.get("identical", 0),
            "parse_failures": statuses.get("parse_failure", 0),
            "too_long": statuses.get("too_long", 0),
            "inconsistency_rate": rate(statuses.get("inconsistent", 0), decided),
            "flip_rate": rate(flips, decided),
            "parse_failure_rate": rate(statuses.get("parse_failure", 0), len(records) - statuses.get("identical", 0)),
        }
        out["position"] = {
            "A": labels.get("A", 0), "B": labels.get("B", 0), "tie": labels.get("tie", 0),
            # 0.5 for a judge without position preference; 1.0 always picks the first answer shown.
            "first_position_rate": rate(labels.get("A", 0), labels.get("A", 0) + labels.get("B", 0)),
        }


class SingleMode:
    """Every answer of every run graded 1-10 on its own."""

    name = "single"

    def pairs(self, labels: Sequence[str], baseline: Optional[str]) -> list[tuple[str, str]]:
        return []

    def run(self, model, items, labels, pairs, *, templates, rubric, settings, run):
        judge = SingleJudge(model, templates=templates, rubric=rubric, settings=settings)
        inputs, keys = [], []
        for it in items:
            for lab in labels:
                inputs.append(SingleInput(it.prompt, it.outputs[lab], it.reference))
                keys.append((it, lab))
        bar = run.bar(f"Grading {len(inputs)} answers", len(inputs))
        results = judge.grade(inputs, progress=bar.advance)
        bar.close()
        rows = []
        for (it, lab), res in zip(keys, results):
            rec = {"task": it.task, "item_id": it.item_id, "prompt": it.prompt, "reference": it.reference,
                   "model": lab, "len": len(it.outputs[lab]), "answer": it.outputs[lab], **res.to_dict()}
            rows.append((f"{it.task}::{it.item_id}::{lab}", rec))
        return rows

    def judgments(self, record: dict) -> list[dict]:
        return [record["judgment"]] if record.get("judgment") else []

    def verdicts_against(self, record: dict) -> Iterator[tuple[str, list[str]]]:
        """(graded model, principles cited in its grade)."""
        if record.get("judgment") and record["judgment"]["verdict"]["error"] is None:
            yield record["model"], record["judgment"]["verdict"]["principles"]

    def summarize(self, out: dict, records: Sequence[dict], statuses: Counter, parsed: list[dict]) -> None:
        by_model: dict[str, list[float]] = {}
        for r in records:
            by_model.setdefault(r["model"], [])
            if r.get("rating") is not None:
                by_model[r["model"]].append(float(r["rating"]))
        n_by_model = Counter(r["model"] for r in records)
        out["ratings"] = {m: {**summarize(v), "n_graded": n_by_model[m],
                              "parse_failures": n_by_model[m] - len(v)} for m, v in by_model.items()}


JUDGE_MODES: Registry[JudgeMode] = Registry("judge mode", GROUPS["judge_modes"])
JUDGE_MODES.add("pairwise", PairwiseMode())
JUDGE_MODES.add("single", SingleMode())
