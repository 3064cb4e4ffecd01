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

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from aligngoals.data.sources import read_jsonl_objects
from aligngoals.errors import AligngoalsError, ConfigError, DataError
from aligngoals.evaluate.run import Run
from aligngoals.io import atomic_write_json, stable_hash
from aligngoals.judges import ratings as R
from aligngoals.judges.judge import default_judge_settings
from aligngoals.judges.modes import JUDGE_MODES, JudgeMode, rate
from aligngoals.judges.rubric import Rubric
from aligngoals.judges.templates import TemplateSet, default_templates
from aligngoals.models.base import Model
from aligngoals.store import RunStore

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
    judge_mode = JUDGE_MODES.get(mode)  # fails with the known modes when ``mode`` is unknown
    templates = templates or default_templates()
    rubric = Rubric.from_goal(goal) if goal is not None else Rubric.default()
    settings = default_judge_settings(max_tokens, seed)
    labels = [r.label for r in runs]
    pairs = judge_mode.pairs(labels, baseline)
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
    with Run(out_dir, kind="judge_fingerprint", fingerprint=fingerprint, command=command, progress=progress,
             describe=lambda previous: (
                 f"Judge run directory {out_dir} holds a different judging (another judge, runs, mode, goal, "
                 "template or generation setting).")) as run:
        store = run.store
        assert store is not None
        store.set_meta("judge", config)
        store.set_meta("command", command)
        cached = run.cached(judge_model)
        store.put_items(mode, judge_mode.run(cached, items, labels, pairs, templates=templates, rubric=rubric,
                                             settings=settings, run=run))
        summary = summarize_judge_run(store, config)
        summary["selection"] = match_stats
        summary["requests"] = dict(cached.stats)
        store.set_meta("judge_summary", summary)
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


def summarize_records(config: dict, records: Sequence[dict]) -> dict:
    """Per-judge accounting: parse failures, order inconsistency, position preference, principles cited."""
    mode = JUDGE_MODES.get(config["mode"])
    judgments = [j for r in records for j in mode.judgments(r)]
    parsed = [j for j in judgments if j["verdict"]["error"] is None]
    errors = Counter(j["verdict"]["error"].split(":")[0] for j in judgments if j["verdict"]["error"] is not None)
    methods = Counter(j["verdict"]["method"] for j in parsed)
    statuses = Counter(r["status"] for r in records)
    out: dict = {
        "mode": config["mode"],
        "judge": config.get("judge"),
        "goal": config.get("goal"),
        "runs": [r["label"] for r in config.get("runs", [])],
        "baseline": config.get("baseline"),
        "n_records": len(records),
        "judgments": {
            "n": len(judgments),
            "parsed": len(parsed),
            "parse_failures": len(judgments) - len(parsed),
            "parse_failure_rate": rate(len(judgments) - len(parsed), len(judgments)),
            "failure_kinds": dict(errors),
            "methods": dict(methods),
            "too_long": statuses.get("too_long", 0),
            "truncated": sum(1 for r in records if r.get("truncated")),
        },
        "status": dict(statuses),
    }
    judge_ident = config.get("judge") or {}
    out["self_preference_risk"] = [r["label"] for r in config.get("runs", []) if same_model(judge_ident, r.get("model") or {})]
    mode.summarize(out, records, statuses, parsed)
    ids = config.get("rubric", {}).get("principle_ids") or []
    if ids:
        out["principles"] = _principles_summary(ids, mode, records, judgments, parsed)
    return out


def _principles_summary(ids: list[str], mode: JudgeMode, records: Sequence[dict], judgments: list[dict],
                        parsed: list[dict]) -> dict:
    cited = Counter(p for j in parsed for p in j["verdict"]["principles"])
    unknown = Counter(p for j in judgments for p in j["verdict"]["unknown_principles"])
    against: dict[str, Counter] = {}
    for r in records:
        for who, principles in mode.verdicts_against(r):
            against.setdefault(who, Counter()).update(principles)
    return {
        "ids": ids,
        "cited": {p: cited.get(p, 0) for p in ids},
        # The principles verdicts rest on most often, most cited first (ties in priority order).
        "most_cited": [{"id": p, "n": n} for p, n in sorted(cited.items(), key=lambda x: (-x[1], ids.index(x[0])))],
        "cite_rate": rate(sum(1 for j in parsed if j["verdict"]["principles"]), len(parsed)),
        "unknown_named": dict(unknown.most_common(10)),
        # pairwise: principles cited in verdicts the model lost; single: cited in the model's grades.
        "by_model": {m: dict(c.most_common()) for m, c in sorted(against.items())},
    }


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
    pairs = JUDGE_MODES.get("pairwise").pairs(labels, config.get("baseline"))
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
