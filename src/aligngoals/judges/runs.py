"""Judge the generations of earlier runs, store every verdict, and turn stored verdicts into ratings.

Why through run stores: the answers being compared already live in each run's
``items`` table (``{"prompt", "output", "reference", ...}`` per generation item),
and the judge's own calls go through a :class:`CachedModel` into the judge run's
store, so an interrupted judging resumes where it stopped and a re-run is free.
Items are matched across runs by ``(task, item_id)``; an item whose prompt
differs between runs is not comparable and is left out (and counted).

The judge run stores one item per compared pair (``pairwise``) or graded answer
(``single``) with the raw judge texts, the parsed verdicts, the principles cited
and the outcome; :func:`summarize_records` and :func:`judge_leaderboard` read
only those, so the leaderboard can be rebuilt at any time from the stores.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from aligngoals.data.sources import read_jsonl_objects
from aligngoals.errors import AligngoalsError, ConfigError, DataError
from aligngoals.evaluate.cached import CachedModel
from aligngoals.evaluate.metrics import summarize
from aligngoals.io import atomic_write_json, stable_hash
from aligngoals.judges import ratings as R
from aligngoals.judges.judge import PairInput, PairwiseJudge, SingleInput, SingleJudge, default_judge_settings
from aligngoals.judges.rubric import Rubric
from aligngoals.judges.templates import TemplateSet, default_templates
from aligngoals.models.base import Model
from aligngoals.store import RunStore

MODES = ("pairwise", "single")
SUMMARY_FILE = "judge.json"
ProgressFactory = Callable[[str, int], Any]


# --------------------------------------------------------------------------------------------
# the runs being judged
# --------------------------------------------------------------------------------------------
@dataclass
class RunRef:
    """One run whose generations are judged; ``label`` names it in verdicts and leaderboards."""

    label: str
    path: Path
    model: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"label": self.label, "path": str(self.path), "model": self.model}


def _run_model(store: RunStore) -> dict:
    report = store.get_meta("report")
    if not isinstance(report, dict):
        path = Path(store.run_dir) / "report.json"
        try:
            report = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        except (OSError, json.JSONDecodeError):
            report = None  # the model description is informative only (self-preference check)
    if isinstance(report, dict) and isinstance(report.get("model"), dict):
        return report["model"]
    for key in ("fingerprint", "model"):
        v = store.get_meta(key)
        if isinstance(v, dict):
            return v.get("model", v) if key == "fingerprint" else v
    return {}


def open_runs(specs: Sequence[str | Path]) -> list[RunRef]:
    """Runs from ``PATH`` or ``LABEL=PATH`` strings; labels default to the directory name."""
    runs: list[RunRef] = []
    for spec in specs:
        s = str(spec)
        label, _, path = s.partition("=") if "=" in s and not Path(s).exists() else ("", "", s)
        p = Path(path).expanduser()
        label = label or p.resolve().name
        if not re.match(r"^[^\s=]+$", label):
            raise ConfigError(f"Run label {label!r} must be one word without '='.", hint="Write LABEL=PATH.")
        with RunStore(p, readonly=True) as store:
            model = _run_model(store)
        runs.append(RunRef(label, p, model))
    labels = [r.label for r in runs]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise ConfigError(f"Two runs are both labelled {', '.join(dup)}.",
                          hint="Name them apart with LABEL=PATH, e.g. --runs base=runs/a --runs tuned=runs/b.")
    if len(runs) < 2:
        raise ConfigError("A comparison needs at least two runs.", hint="Pass --runs RUN_A RUN_B.")
    return runs


@dataclass
class MatchedItem:
    task: str
    item_id: str
    prompt: str
    reference: Optional[str]
    outputs: dict[str, str]


def reference_text(ref: Any) -> Optional[str]:
    """A reference as the judge reads it: text, several acceptable answers, or TruthfulQA's true answers."""
    if ref is None:
        return None
    if isinstance(ref, str):
        return ref if ref.strip() else None
    if isinstance(ref, dict):
        return reference_text(ref.get("true"))
    if isinstance(ref, (list, tuple)):
        refs = [str(r) for r in ref if r is not None and str(r).strip()]
        if not refs:
            return None
        return refs[0] if len(refs) == 1 else "Any of these is correct:\n" + "\n".join(f"- {r}" for r in refs)
    return str(ref)


def read_generations(run: RunRef) -> dict[tuple[str, str], dict]:
    """The generations a run stored, ``{(task, item_id): {"prompt", "output", "reference", ...}}``.

    Why one function: the evaluation engine owns the ``items`` schema (generation
    tasks store ``prompt``, ``output`` and ``reference`` per item); this is the only
    place that reads it, so a schema change breaks here with a clear message
    instead of somewhere deep in judging. A run without any generation fails.
    """
    with RunStore(run.path, readonly=True) as store:
        rows = store.items()
    gen: dict[tuple[str, str], dict] = {}
    other: Counter = Counter()
    for task, item_id, data in rows:
        if isinstance(data, dict) and isinstance(data.get("output"), str) and isinstance(data.get("prompt"), str):
            gen[(task, str(item_id))] = data
        else:
            other[task] += 1
    if not gen:
        held = ", ".join(f"{t} ({n} items)" for t, n in other.items()) or "no items at all"
        raise DataError(
            f"Run {run.label} ({run.path}) has no stored generations to judge: its items table holds {held}, "
            "none with a 'prompt' and an 'output' text.",
            hint="Judge runs of generation tasks (type generate), e.g. "
                 "'aligngoals eval --model smollm2 --tasks instr_mt_bench --limit 10 --out runs/a'.",
        )
    return gen


def match_items(runs: Sequence[RunRef], *, tasks: Optional[Sequence[str]] = None,
                limit: Optional[int] = None) -> tuple[list[MatchedItem], dict]:
    """Generation items present in every run, in the first run's order; ``limit`` applies per task.

    Returns the items and counts: per run the generation items it holds, how many
    items all runs share, and how many shared items were dropped because their
    prompts differ.
    """
    per_run: list[dict[tuple[str, str], dict]] = []
    counts: dict[str, int] = {}
    for run in runs:
        gen = {k: v for k, v in read_generations(run).items() if not tasks or k[0] in tasks}
        per_run.append(gen)
        counts[run.label] = len(gen)
    if tasks:
        present = {t for gen in per_run for t, _ in gen}
        missing = [t for t in tasks if t not in present]
        if missing:
            raise DataError(f"No run has generation items of task(s) {', '.join(missing)}.",
                            hint="Check the task names in the runs' report.json ('tasks').")
    shared = [k for k in per_run[0] if all(k in gen for gen in per_run[1:])]
    mismatched = 0
    taken: Counter = Counter()
    items: list[MatchedItem] = []
    for key in shared:
        rows_k = [gen[key] for gen in per_run]
        prompt = rows_k[0]["prompt"]
        if any(r["prompt"] != prompt for r in rows_k[1:]):
            mismatched += 1
            continue
        if limit is not None and taken[key[0]] >= limit:
            continue
        taken[key[0]] += 1
        items.append(MatchedItem(key[0], key[1], prompt, reference_text(rows_k[0].get("reference")),
                                 {run.label: r["output"] for run, r in zip(runs, rows_k)}))
    stats = {"generation_items": counts, "shared": len(shared), "prompt_mismatch": mismatched,
             "selected": len(items), "tasks": dict(taken)}
    if not items:
        raise DataError(
            "The runs share no comparable generation items "
            f"(generation items per run: {', '.join(f'{k} {v}' for k, v in counts.items())}; "
            f"shared {len(shared)}, prompts differ on {mismatched}).",
            hint="Judge runs of the same generation tasks (e.g. aligngoals eval --tasks instr_mt_bench) on the same data.",
        )
    return items, stats


def same_model(a: dict, b: dict) -> bool:
    """True when two model descriptions name the same weights (identity keys agree)."""
    keys = [k for k in ("backend", "name", "file_sha256", "source", "repo", "revision", "path") if k in a and k in b]
    if not keys:
        return False
    if "file_sha256" in a and "file_sha256" in b:
        return a["file_sha256"] == b["file_sha256"]
    return all(a[k] == b[k] for k in keys)


# --------------------------------------------------------------------------------------------
# judging
# --------------------------------------------------------------------------------------------
def _pairs(labels: Sequence[str], baseline: Optional[str]) -> list[tuple[str, str]]:
    if baseline is None:
        return list(itertools.combinations(labels, 2))
    if baseline not in labels:
        raise ConfigError(f"Baseline {baseline!r} is not one of the runs ({', '.join(labels)}).")
    return [(baseline, x) for x in labels if x != baseline]


def judge_runs(
    runs: Sequence[RunRef],
    judge_model: Model,
    out_dir: str | Path,
    *,
    mode: str = "pairwise",
    goal: Any = None,
    templates: Optional[TemplateSet] = None,
    baseline: Optional[str] = None,
    tasks: Optional[Sequence[str]] = None,
    limit: Optional[int] = None,
    max_tokens: int = 256,
    seed: int = 0,
    progress: Optional[ProgressFactory] = None,
    command: Optional[str] = None,
) -> dict:
    """Judge the shared generation items of ``runs`` with ``judge_model``; store and summarize.

    ``mode="pairwise"`` compares every pair of runs (or each run with ``baseline``)
    in both orders; ``mode="single"`` grades every answer 1-10. ``goal`` (a
    :class:`~aligngoals.goals.Goal`) replaces the generic rubric by the goal's
    principles. Returns the summary (also written to ``<out_dir>/judge.json``).
    """
    if mode not in MODES:
        raise ConfigError(f"Unknown judge mode {mode!r}.", hint="Use pairwise or single.")
    templates = templates or default_templates()
    rubric = Rubric.from_goal(goal) if goal is not None else Rubric.default()
    settings = default_judge_settings(max_tokens, seed)
    labels = [r.label for r in runs]
    pairs = _pairs(labels, baseline) if mode == "pairwise" else []
    items, match_stats = match_items(runs, tasks=tasks, limit=limit)

    config = {
        "mode": mode,
        "judge": judge_model.identity,
        "runs": [r.to_dict() for r in runs],
        "baseline": baseline,
        "pairs": [list(p) for p in pairs],
        "goal": rubric.goal,
        "rubric": rubric.to_dict(),
        "templates": templates.fingerprint(),
        "template_sources": {k: v["source"] for k, v in templates.to_dict().items()},
        "settings": settings.to_dict(),
    }
    fingerprint = {k: config[k] for k in ("mode", "judge", "baseline", "pairs", "rubric", "templates", "settings")}
    fingerprint["runs"] = [{"label": r.label, "path": str(Path(r.path).resolve())} for r in runs]
    out_dir = Path(out_dir)
    store = RunStore(out_dir)
    try:
        store.claim("judge_fingerprint", fingerprint, lambda previous: (
            f"Judge run directory {out_dir} holds a different judging (another judge, runs, mode, goal, "
            "template or generation setting)."))
        store.set_meta("judge", config)
        store.set_meta("command", command)
        cached = CachedModel(judge_model, store)
        if mode == "pairwise":
            judge = PairwiseJudge(cached, templates=templates, rubric=rubric, settings=settings)
            inputs, keys = [], []
            for it in items:
                for a, b in pairs:
                    inputs.append(PairInput(it.prompt, it.outputs[a], it.outputs[b], it.reference))
                    keys.append((it, a, b))
            total = 2 * sum(1 for p in inputs if p.answer_1.strip() != p.answer_2.strip())
            bar = progress(f"Judging {len(inputs)} pairs in both orders", total) if progress else None
            results = judge.judge(inputs, progress=bar.advance if bar is not None else None)
            rows = []
            for (it, a, b), res in zip(keys, results):
                rec = {"task": it.task, "item_id": it.item_id, "prompt": it.prompt, "reference": it.reference,
                       "model_a": a, "model_b": b, "answer_a": it.outputs[a], "answer_b": it.outputs[b],
                       "len_a": len(it.outputs[a]), "len_b": len(it.outputs[b]), **res.to_dict()}
                rows.append((f"{it.task}::{it.item_id}::{a}::{b}", rec))
            store.put_items("pairwise", rows)
        else:
            judge = SingleJudge(cached, templates=templates, rubric=rubric, settings=settings)
            inputs, keys = [], []
            for it in items:
                for lab in labels:
                    inputs.append(SingleInput(it.prompt, it.outputs[lab], it.reference))
                    keys.append((it, lab))
            bar = progress(f"Grading {len(inputs)} answers", len(inputs)) if progress else None
            results = judge.grade(inputs, progress=bar.advance if bar is not None else None)
            rows = []
            for (it, lab), res in zip(keys, results):
                rec = {"task": it.task, "item_id": it.item_id, "prompt": it.prompt, "reference": it.reference,
                       "model": lab, "len": len(it.outputs[lab]), "answer": it.outputs[lab], **res.to_dict()}
                rows.append((f"{it.task}::{it.item_id}::{lab}", rec))
            store.put_items("single", rows)
        summary = summarize_judge_run(store, config)
        summary["selection"] = match_stats
        summary["requests"] = dict(cached.stats)
        store.set_meta("judge_summary", summary)
    finally:
        store.close()
    atomic_write_json(out_dir / SUMMARY_FILE, summary)
    return summary


# --------------------------------------------------------------------------------------------
# reading judge runs back
# --------------------------------------------------------------------------------------------
def load_judge_run(path: str | Path) -> tuple[dict, list[dict]]:
    """``(config, records)`` of a judge run directory."""
    with RunStore(path, readonly=True) as store:
        config = store.get_meta("judge")
        if not isinstance(config, dict):
            raise AligngoalsError(f"{path} is a run directory but not a judge run (no judge settings stored).",
                                  hint="Pass directories written by 'aligngoals judge --out DIR'.")
        records = [d for _, _, d in store.items(config["mode"])]
    return config, records


def _rate(k: int, n: int) -> Optional[float]:
    return k / n if n else None


def summarize_records(config: dict, records: Sequence[dict]) -> dict:
    """Per-judge accounting: parse failures, order inconsistency, position preference, principles cited."""
    mode = config["mode"]
    ids = config.get("rubric", {}).get("principle_ids") or []
    judgments = []
    for r in records:
        if mode == "pairwise":
            judgments.extend(r.get("judgments") or [])
        elif r.get("judgment"):
            judgments.append(r["judgment"])
    parsed = [j for j in judgments if j["verdict"]["error"] is None]
    errors = Counter(j["verdict"]["error"].split(":")[0] for j in judgments if j["verdict"]["error"] is not None)
    methods = Counter(j["verdict"]["method"] for j in parsed)
    statuses = Counter(r["status"] for r in records)
    too_long = statuses.get("too_long", 0)
    out: dict = {
        "mode": mode,
        "judge": config.get("judge"),
        "goal": config.get("goal"),
        "runs": [r["label"] for r in config.get("runs", [])],
        "baseline": config.get("baseline"),
        "n_records": len(records),
        "judgments": {
            "n": len(judgments),
            "parsed": len(parsed),
            "parse_failures": len(judgments) - len(parsed),
            "parse_failure_rate": _rate(len(judgments) - len(parsed), len(judgments)),
            "failure_kinds": dict(errors),
            "methods": dict(methods),
            "too_long": too_long,
            "truncated": sum(1 for r in records if r.get("truncated")),
        },
        "status": dict(statuses),
    }
    judge_ident = config.get("judge") or {}
    out["self_preference_risk"] = [r["label"] for r in config.get("runs", []) if same_model(judge_ident, r.get("model") or {})]

    if mode == "pairwise":
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
            "too_long": too_long,
            "inconsistency_rate": _rate(statuses.get("inconsistent", 0), decided),
            "flip_rate": _rate(flips, decided),
            "parse_failure_rate": _rate(statuses.get("parse_failure", 0), len(records) - statuses.get("identical", 0)),
        }
        out["position"] = {
            "A": labels.get("A", 0), "B": labels.get("B", 0), "tie": labels.get("tie", 0),
            # 0.5 for a judge without position preference; 1.0 always picks the first answer shown.
            "first_position_rate": _rate(labels.get("A", 0), labels.get("A", 0) + labels.get("B", 0)),
        }
    else:
        by_model: dict[str, list[float]] = {}
        for r in records:
            by_model.setdefault(r["model"], [])
            if r.get("rating") is not None:
                by_model[r["model"]].append(float(r["rating"]))
        n_by_model = Counter(r["model"] for r in records)
        out["ratings"] = {m: {**summarize(v), "n_graded": n_by_model[m],
                              "parse_failures": n_by_model[m] - len(v)} for m, v in by_model.items()}

    if ids:
        cited = Counter(p for j in parsed for p in j["verdict"]["principles"])
        unknown = Counter(p for j in judgments for p in j["verdict"]["unknown_principles"])
        against: dict[str, Counter] = {}
        for r in records:
            if mode == "pairwise":
                names = {"1": r["model_a"], "2": r["model_b"]}
                for j in r.get("judgments") or []:
                    if j["verdict"]["error"] is None and j.get("winner") in ("1", "2"):
                        loser = names["2" if j["winner"] == "1" else "1"]
                        against.setdefault(loser, Counter()).update(j["verdict"]["principles"])
            elif r.get("judgment") and r["judgment"]["verdict"]["error"] is None:
                against.setdefault(r["model"], Counter()).update(r["judgment"]["verdict"]["principles"])
        out["principles"] = {
            "ids": ids,
            "cited": {p: cited.get(p, 0) for p in ids},
            # The principles verdicts rest on most often, most cited first (ties in priority order).
            "most_cited": [{"id": p, "n": n} for p, n in sorted(cited.items(), key=lambda x: (-x[1], ids.index(x[0])))],
            "cite_rate": _rate(sum(1 for j in parsed if j["verdict"]["principles"]), len(parsed)),
            "unknown_named": dict(unknown.most_common(10)),
            # pairwise: principles cited in verdicts the model lost; single: cited in the model's grades.
            "by_model": {m: dict(c.most_common()) for m, c in sorted(against.items())},
        }
    return out


def summarize_judge_run(store: RunStore, config: dict) -> dict:
    return summarize_records(config, [d for _, _, d in store.items(config["mode"])])


def battles_from_records(config: dict, records: Sequence[dict]) -> list[R.Battle]:
    """Battles for ratings: pairwise outcomes, or single grades compared per item (higher grade wins).

    Parse failures and prompts too long for the judge yield no battle; identical
    answers are ties.
    """
    battles: list[R.Battle] = []
    if config["mode"] == "pairwise":
        for r in records:
            if r.get("outcome") is None:
                continue
            battles.append(R.Battle(r["model_a"], r["model_b"], r["outcome"], r["len_a"], r["len_b"],
                                    f"{r['task']}::{r['item_id']}"))
        return battles
    by_item: dict[tuple[str, str], dict[str, dict]] = {}
    for r in records:
        if r.get("rating") is not None:
            by_item.setdefault((r["task"], r["item_id"]), {})[r["model"]] = r
    labels = [x["label"] for x in config.get("runs", [])]
    pairs = _pairs(labels, config.get("baseline"))
    for (task, item_id), graded in by_item.items():
        for a, b in pairs:
            if a in graded and b in graded:
                ra, rb = graded[a]["rating"], graded[b]["rating"]
                outcome = 1.0 if ra > rb else 0.0 if ra < rb else 0.5
                battles.append(R.Battle(a, b, outcome, graded[a]["len"], graded[b]["len"], f"{task}::{item_id}"))
    return battles


def read_human_labels(path: str | Path) -> list[dict]:
    """Human pairwise labels, JSONL rows ``{"task", "item_id", "model_a", "model_b", "winner"}``.

    ``model_a`` / ``model_b`` are run labels and ``winner`` is ``model_a``,
    ``model_b`` or ``tie`` (also ``A``/``B``/``C``).
    """

    p = Path(path)
    if not p.is_file():
        raise DataError(f"Human label file {p} does not exist.")
    rows = []
    for lineno, row in read_jsonl_objects(p):
        for k in ("task", "item_id", "model_a", "model_b", "winner"):
            if k not in row:
                raise DataError(f"{p}:{lineno}: field {k!r} is missing.",
                                hint="Each line needs task, item_id, model_a, model_b and winner.")
        if R._norm_label(row["winner"]) is None:
            raise DataError(f"{p}:{lineno}: field 'winner' is {row['winner']!r}.",
                            hint="Use model_a, model_b or tie.")
        rows.append(row)
    return rows


def human_agreement(records: Sequence[dict], human: Sequence[dict]) -> dict:
    """Agreement of the judge's combined (both-order) verdicts with human labels on the same pairs.

    Judge parse failures count as missing; human labels for pairs the judge never
    saw are counted in ``n_unmatched``.
    """
    index: dict[tuple[str, str, frozenset], dict] = {}
    for r in records:
        if "model_a" in r:
            index[(r["task"], str(r["item_id"]), frozenset((r["model_a"], r["model_b"])))] = r
    judge_labels, human_labels = [], []
    unmatched = 0
    for h in human:
        r = index.get((h["task"], str(h["item_id"]), frozenset((h["model_a"], h["model_b"]))))
        if r is None:
            unmatched += 1
            continue
        hl = R._norm_label(h["winner"])
        if h["model_a"] != r["model_a"] and hl in ("A", "B"):
            hl = "B" if hl == "A" else "A"
        judge_labels.append(None if r.get("outcome") is None else {1.0: "A", 0.0: "B", 0.5: "tie"}[r["outcome"]])
        human_labels.append(hl)
    out = R.agreement(judge_labels, human_labels)
    out["n_unmatched"] = unmatched
    return out


def judge_leaderboard(
    paths: Sequence[str | Path],
    *,
    baseline: Optional[str] = None,
    ties: R.TieModel = "half",
    elo_k: float = 16.0,
    n_boot: int = 1000,
    seed: int = 0,
    human: Optional[Sequence[dict]] = None,
) -> dict:
    """Ratings from one or more judge runs (their battles pooled) with each judge's accounting."""
    if not paths:
        raise ConfigError("No judge run given.", hint="Pass the --out directory of 'aligngoals judge'.")
    all_battles: list[R.Battle] = []
    judges = []
    all_records: list[dict] = []
    baselines = set()
    for p in paths:
        config, records = load_judge_run(p)
        s = summarize_records(config, records)
        s["path"] = str(p)
        judges.append(s)
        all_battles.extend(battles_from_records(config, records))
        all_records.extend(records)
        if config.get("baseline"):
            baselines.add(config["baseline"])
    if baseline is None and len(baselines) == 1:
        baseline = next(iter(baselines))
    board = R.leaderboard(all_battles, baseline=baseline, ties=ties, elo_k=elo_k, n_boot=n_boot, seed=seed)
    out = {"leaderboard": board.to_dict(), "judges": judges}
    if human is not None:
        out["human_agreement"] = human_agreement(all_records, human)
    return out


def default_judge_dir(runs: Sequence[RunRef], judge_model: Model, mode: str, goal: Optional[str]) -> Path:
    """Deterministic judge run directory, so the same command resumes the same judging."""
    h = stable_hash({"runs": [str(Path(r.path).resolve()) for r in runs], "judge": judge_model.identity,
                     "mode": mode, "goal": goal})[:8]
    return Path("runs") / f"judge-{mode}-{judge_model.name}-{h}"
