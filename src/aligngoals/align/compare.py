"""``aligngoals compare RUN_BEFORE RUN_AFTER``: how much did each metric change, and how sure are we?

Why paired when possible: before and after are usually measured on the same
items, and an item that is hard stays hard, so the per-item differences vary
far less than the two scores do; their bootstrap interval is much tighter than
one computed from two independent intervals. When both run stores hold
per-item scores for a metric (the ``items`` table, ``data["scores"][metric]``)
the interval is a paired bootstrap over the items the two runs share. Otherwise
(corpus metrics, or reports without a store) it is the normal approximation
``diff +- 1.96 * sqrt(se_before^2 + se_after^2)`` with each standard error read
off that run's 95% interval (``(ci_high - ci_low) / 3.92``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aligngoals.errors import AligngoalsError

Z95 = 1.959963984540054


@dataclass
class MetricDiff:
    task: str
    metric: str
    before: float | None
    after: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    n_before: int
    n_after: int
    n_paired: int
    method: str  # "paired_bootstrap" | "normal" | "missing"

    @property
    def significant(self) -> bool:
        return self.ci_low is not None and self.ci_high is not None and (self.ci_low > 0 or self.ci_high < 0)

    def to_dict(self) -> dict:
        return {**asdict(self), "significant": self.significant}


def resolve_run_dirs(before: str | Path, after: str | Path | None) -> tuple[Path, Path]:
    """Two run directories; an ``aligngoals align`` output alone means its ``eval/before`` and ``eval/after``."""
    b = Path(before)
    if after is None:
        if (b / "eval" / "before" / "report.json").is_file() and (b / "eval" / "after" / "report.json").is_file():
            return b / "eval" / "before", b / "eval" / "after"
        raise AligngoalsError(
            f"{b} is not an alignment run with eval/before and eval/after, and no second run was given.",
            hint="Pass two run directories (aligngoals compare RUN_BEFORE RUN_AFTER) or an 'aligngoals align' --out directory.",
        )
    return b, Path(after)


def load_report(run_dir: Path) -> dict:
    path = run_dir / "report.json" if run_dir.is_dir() else run_dir
    if not path.is_file():
        raise AligngoalsError(f"{run_dir} has no report.json.",
                              hint="Pass a directory written by 'aligngoals eval --out DIR' (or an align run's eval/<phase>).")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise AligngoalsError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}).",
                              hint="The run may have been interrupted; re-run it to rewrite its report.") from exc
    if not isinstance(report.get("tasks"), dict):
        raise AligngoalsError(f"{path} has no 'tasks' mapping, so it is not an aligngoals report.",
                              hint="Pass directories written by 'aligngoals eval'.")
    return report


def _item_scores(run_dir: Path, task: str, metric: str) -> dict[str, float] | None:
    from aligngoals.store.run_store import STORE_FILENAME, RunStore

    if not (run_dir / STORE_FILENAME).is_file():
        return None
    with RunStore(run_dir, readonly=True) as store:
        rows = store.items(task)
    out: dict[str, float] = {}
    for _, item_id, data in rows:
        v = (data.get("scores") or {}).get(metric) if isinstance(data, dict) else None
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(float(v)):
            out[item_id] = float(v)
    return out or None


def paired_bootstrap(before: np.ndarray, after: np.ndarray, *, n_boot: int = 2000, seed: int = 0,
                     alpha: float = 0.05) -> tuple[float, float, float]:
    """Mean of ``after - before`` and its percentile-bootstrap interval (items resampled together)."""
    d = after - before
    if d.size == 1:
        return float(d[0]), float(d[0]), float(d[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_boot, d.size))
    stats = d[idx].mean(axis=1)
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(d.mean()), float(lo), float(hi)


def _se(m: dict) -> float | None:
    if m.get("ci_low") is None or m.get("ci_high") is None:
        return None
    return (float(m["ci_high"]) - float(m["ci_low"])) / (2 * Z95)


def compare_runs(before: str | Path, after: str | Path | None = None, *, n_boot: int = 2000,
                 seed: int = 0) -> tuple[Path, Path, list[MetricDiff]]:
    """Differences (after - before) of every metric of every task the two runs share."""
    b_dir, a_dir = resolve_run_dirs(before, after)
    rb, ra = load_report(b_dir), load_report(a_dir)
    rows: list[MetricDiff] = []
    for task in sorted(set(rb["tasks"]) | set(ra["tasks"])):
        tb, ta = rb["tasks"].get(task), ra["tasks"].get(task)
        metrics = sorted(set((tb or {}).get("metrics", {})) | set((ta or {}).get("metrics", {})))
        for metric in metrics:
            mb = (tb or {}).get("metrics", {}).get(metric)
            ma = (ta or {}).get("metrics", {}).get(metric)
            if mb is None or ma is None or mb.get("value") is None or ma.get("value") is None:
                rows.append(MetricDiff(task, metric, (mb or {}).get("value"), (ma or {}).get("value"), None, None, None,
                                       int((mb or {}).get("n") or 0), int((ma or {}).get("n") or 0), 0, "missing"))
                continue
            sb, sa = _item_scores(b_dir, task, metric), _item_scores(a_dir, task, metric)
            common = sorted(set(sb) & set(sa)) if sb and sa else []
            if len(common) >= 2:
                xb = np.array([sb[i] for i in common])  # type: ignore[index]
                xa = np.array([sa[i] for i in common])  # type: ignore[index]
                diff, lo, hi = paired_bootstrap(xb, xa, n_boot=n_boot, seed=seed)
                rows.append(MetricDiff(task, metric, float(xb.mean()), float(xa.mean()), diff, lo, hi,
                                       int(mb["n"]), int(ma["n"]), len(common), "paired_bootstrap"))
                continue
            diff = float(ma["value"]) - float(mb["value"])
            se_b, se_a = _se(mb), _se(ma)
            if se_b is None or se_a is None:
                lo = hi = None
            else:
                half = Z95 * math.sqrt(se_b ** 2 + se_a ** 2)
                lo, hi = diff - half, diff + half
            rows.append(MetricDiff(task, metric, float(mb["value"]), float(ma["value"]), diff, lo, hi,
                                   int(mb["n"]), int(ma["n"]), 0, "normal"))
    if not rows:
        raise AligngoalsError(f"{b_dir} and {a_dir} have no metrics to compare.",
                              hint="Run the same tasks in both (aligngoals eval --tasks ...).")
    return b_dir, a_dir, rows


def describe(rows: list[MetricDiff]) -> list[dict[str, Any]]:
    return [r.to_dict() for r in rows]


# --------------------------------------------------------------------------------------------
# comparing runs item by item (the comparison page)
# --------------------------------------------------------------------------------------------
def _labels(dirs: list[Path]) -> list[str]:
    """Short, distinct names for the runs: the directory names, numbered where they repeat."""
    names = [d.name or str(d) for d in dirs]
    return [n if names.count(n) == 1 else f"{n} ({i + 1})" for i, n in enumerate(names)]


def changed_items(a: list[dict], b: list[dict]) -> list[dict]:
    """Items both runs measured whose outcome changed: right in one and wrong in the other, or
    (for items without a right/wrong outcome) a different primary score. A-right-B-wrong first."""
    by_key = {(s["task"], s["id"]): s for s in a}
    out = []
    for sb in b:
        sa = by_key.get((sb["task"], sb["id"]))
        if sa is None:
            continue
        ca, cb = sa.get("correct"), sb.get("correct")
        if isinstance(ca, bool) and isinstance(cb, bool):
            if ca == cb:
                continue
            change = "a_only" if ca else "b_only"
        else:
            va, vb = sa.get("score"), sb.get("score")
            if not (isinstance(va, (int, float)) and isinstance(vb, (int, float))) or abs(vb - va) <= 1e-9:
                continue
            change = "score"
        out.append({"task": sb["task"], "id": sb["id"], "change": change, "a": sa, "b": sb})
    rank = {"a_only": 0, "b_only": 1, "score": 2}
    out.sort(key=lambda r: (rank[r["change"]], r["task"]))
    return out


def build_comparison(runs: list[str | Path], *, n_boot: int = 2000, seed: int = 0) -> dict:
    """Every run against the first: metrics side by side with paired differences, and the items
    whose outcome changed between the first two runs. One run alone must be an ``aligngoals align``
    output, whose eval/before and eval/after are compared."""
    from aligngoals.evaluate.samples import load_samples

    if not runs:
        raise AligngoalsError("No runs to compare.", hint="aligngoals compare RUN_A RUN_B [...] --out DIR")
    dirs = list(resolve_run_dirs(runs[0], None)) if len(runs) == 1 else [Path(r) for r in runs]
    labels = _labels(dirs)
    reports = [load_report(d) for d in dirs]
    metrics: dict[tuple[str, str], dict] = {}
    for k in range(1, len(dirs)):
        _, _, rows = compare_runs(dirs[0], dirs[k], n_boot=n_boot, seed=seed)
        for r in rows:
            entry = metrics.setdefault((r.task, r.metric), {"task": r.task, "metric": r.metric, "diffs": []})
            entry["diffs"].append({"vs": labels[k], **r.to_dict()})
    for entry in metrics.values():
        entry["values"] = [((rep["tasks"].get(entry["task"]) or {}).get("metrics", {}).get(entry["metric"]) or {}).get("value")
                           for rep in reports]
    samples = [load_samples(d) for d in dirs[:2]]
    return {
        "labels": labels,
        "dirs": [str(d) for d in dirs],
        "models": [(rep.get("model") or {}).get("name") for rep in reports],
        "metrics": [metrics[k] for k in sorted(metrics)],
        "changed": changed_items(samples[0], samples[1]),
        "n_samples": [len(s) for s in samples],
    }
