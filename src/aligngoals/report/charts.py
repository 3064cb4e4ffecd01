"""Charts for the HTML report (matplotlib, rendered to inline SVG so the report is one file)."""

from __future__ import annotations

import io


def metric_bars_svg(report: dict) -> str | None:
    """Horizontal bars of every task metric with its 95% interval; None when nothing to plot."""
    rows = []
    for task, t in report.get("tasks", {}).items():
        for metric, m in t.get("metrics", {}).items():
            if m.get("value") is not None:
                rows.append((f"{task} · {metric}", m["value"], m.get("ci_low"), m.get("ci_high")))
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.0))
    labels = [r[0] for r in rows][::-1]
    vals = [r[1] for r in rows][::-1]
    # A value can sit outside its interval (a percentile bootstrap of a skewed metric); bars clamp at 0.
    lo = [max(0.0, r[1] - (r[2] if r[2] is not None else r[1])) for r in rows][::-1]
    hi = [max(0.0, (r[3] if r[3] is not None else r[1]) - r[1]) for r in rows][::-1]
    ax.barh(labels, vals, xerr=[lo, hi], color="#4c72b0", ecolor="#222", capsize=3)
    ax.set_xlabel("value (95% bootstrap interval)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.find("<svg") :]


# --- value section ---------------------------------------------------------------------------
# Each function takes the ``sections["values"]`` dict (or a part of it) and returns inline SVG,
# or None when the part is missing or has nothing to plot, so the template can leave it out.

def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.find("<svg") :]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def _err(m: dict) -> tuple[float, float, float]:
    """(value, lower error, upper error) of a summarize() dict; a missing bound gives no bar."""
    v = float(m["value"])
    lo = m.get("ci_low")
    hi = m.get("ci_high")
    return v, max(0.0, v - lo) if _num(lo) else 0.0, max(0.0, hi - v) if _num(hi) else 0.0


def profile_radar_svg(q: dict | None) -> str | None:
    """Radar of the questionnaire profile: the score per dimension with its 95% interval as a band.

    Why a radar: value theories (Schwartz) arrange values on a circle, and a profile is
    read as a shape. With fewer than three dimensions a radar is meaningless, so bars are drawn.
    """
    if not q or not q.get("profile"):
        return None
    dims = [(d, e) for d, e in q["profile"].items() if e.get("kind", "dimension") != "group" and _num(e.get("score"))]
    if not dims:
        return None
    plt = _plt()
    import numpy as np

    names = [d for d, _ in dims]
    vals = np.array([e["score"] for _, e in dims], dtype=float)
    lo = np.array([e["ci_low"] if _num(e.get("ci_low")) else e["score"] for _, e in dims], dtype=float)
    hi = np.array([e["ci_high"] if _num(e.get("ci_high")) else e["score"] for _, e in dims], dtype=float)
    if len(dims) < 3:
        fig, ax = plt.subplots(figsize=(5, 0.5 * len(dims) + 1.2))
        ax.barh(names, vals, xerr=[np.clip(vals - lo, 0, None), np.clip(hi - vals, 0, None)], color="#55a868", ecolor="#222", capsize=3)
        ax.set_xlabel("score (95% interval)")
        fig.tight_layout()
        return _svg(fig)
    ang = np.linspace(0, 2 * np.pi, len(dims), endpoint=False)
    close = lambda a: np.concatenate([a, a[:1]])  # noqa: E731
    fig = plt.figure(figsize=(5.5, 5.5))
    ax = fig.add_subplot(111, projection="polar")
    ax.fill_between(close(ang), close(lo), close(hi), color="#4c72b0", alpha=0.25, label="95% interval")
    ax.plot(close(ang), close(vals), color="#4c72b0", marker="o", label="score")
    ax.set_xticks(ang)
    ax.set_xticklabels(names, fontsize=8)
    scale = [p.get("value") for p in (q.get("scale") or []) if isinstance(p, dict) and _num(p.get("value"))]
    if scale and q.get("rule") != "centered":
        ax.set_ylim(min(scale), max(scale))
    ax.set_title(f"{q.get('instrument')} profile ({q.get('rule')} scores)", fontsize=10)
    ax.legend(loc="lower right", bbox_to_anchor=(1.25, -0.1), fontsize=8)
    fig.tight_layout()
    return _svg(fig)


def _bars(rows: list[tuple[str, dict, str]], xlabel: str, *, xlim=(0, 1), chance: dict | None = None,
          width: float = 7.0) -> str | None:
    rows = [r for r in rows if r[1] and _num(r[1].get("value"))]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(width, 0.38 * len(rows) + 1.1))
    labels = [r[0] for r in rows][::-1]
    errs = [_err(r[1]) for r in rows][::-1]
    colors = [r[2] for r in rows][::-1]
    ax.barh(labels, [e[0] for e in errs], xerr=[[e[1] for e in errs], [e[2] for e in errs]], color=colors,
            ecolor="#222", capsize=3)
    for lab, x in (chance or {}).items():
        ax.axvline(x, color="#c44e52", ls="--", lw=1)
        ax.text(x, len(rows) - 0.4, f" {lab}", color="#c44e52", fontsize=7, va="bottom")
    if xlim:
        ax.set_xlim(*xlim)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _svg(fig)


def norm_levels_svg(norms: dict | None) -> str | None:
    """The three norm levels side by side, each metric with its interval and the chance line."""
    if not norms or not norms.get("levels"):
        return None
    lv = norms["levels"]
    colors = {"1": "#4c72b0", "2": "#dd8452", "2n": "#937860", "3": "#55a868"}
    rows = [
        ("L1 judge with norm · acc", lv.get("1_judge_with_norm", {}).get("acc"), colors["1"]),
        ("L1 judge with norm · AUC", lv.get("1_judge_with_norm", {}).get("auc"), colors["1"]),
        ("L2 judge without norm · acc", lv.get("2_judge_without_norm", {}).get("acc"), colors["2"]),
        ("L2 judge without norm · AUC", lv.get("2_judge_without_norm", {}).get("auc"), colors["2"]),
        ("L2 name the norm · acc", lv.get("2_name_the_norm", {}).get("norm_acc"), colors["2n"]),
        ("L3 rule · ROUGE-L", lv.get("3_generate_rule", {}).get("rougeL"), colors["3"]),
        ("L3 rule · ROUGE-L (mismatched)", lv.get("3_generate_rule", {}).get("rougeL_mismatched"), "#a9d3b4"),
        ("L3 rule · embedding cos", lv.get("3_generate_rule", {}).get("embed_cos"), colors["3"]),
        ("L3 rule · embedding cos (mismatched)", lv.get("3_generate_rule", {}).get("embed_cos_mismatched"), "#a9d3b4"),
        ("L3 rule · judge", lv.get("3_generate_rule", {}).get("judge"), colors["3"]),
    ]
    return _bars(rows, "value (95% bootstrap interval); dashed: chance for yes/no judgments", chance={"0.5": 0.5})


def refusal_svg(safety: dict | None) -> str | None:
    """Refusal rate plain vs under each attack type, and over-refusal of benign requests (detector)."""
    if not safety or not safety.get("refusal"):
        return None
    ref = safety["refusal"]
    rows = [("plain harmful requests", ref.get("plain"), "#4c72b0")]
    rows += [(f"attacked: {t}", m, "#dd8452") for t, m in (ref.get("attacked") or {}).items()]
    rows.append(("benign but risky-looking (over-refusal)", safety.get("over_refusal"), "#c44e52"))
    return _bars(rows, "refusal rate, refusal detector (95% bootstrap interval)")


def priorities_svg(d: dict | None) -> str | None:
    """Bradley-Terry ratings of the principles with intervals, in the declared order when there is one."""
    if not d or not d.get("ratings"):
        return None
    order = d.get("declared_order") or sorted(d["ratings"], key=lambda k: -d["ratings"][k]["rating"])
    rows = []
    for pid in order:
        r = d["ratings"].get(pid)
        if r:
            rows.append((pid if not d.get("declared_order") else f"{order.index(pid) + 1}. {pid}",
                         {"value": r["rating"], "ci_low": r.get("ci_low"), "ci_high": r.get("ci_high")}, "#8172b3"))
    vals = [v for _, m, _ in rows for v in (m["value"], m["ci_low"], m["ci_high"]) if _num(v)]
    pad = 20.0
    return _bars(rows, "Bradley-Terry rating (Elo scale, 95% bootstrap interval)" +
                 ("; rows in declared priority order" if d.get("declared_order") else ""),
                 xlim=(min(vals) - pad, max(vals) + pad) if vals else None, chance={"1000": 1000.0})


# --- sample-level charts -----------------------------------------------------------------------
# These read the per-sample records (aligngoals.report.samples), not report.json alone.

def breakdown_bars_svg(task: str, entry: dict) -> str | None:
    """Per-group bars of a task's breakdown (BBQ categories, CrowS-Pairs bias types, ...), first metric."""
    breakdown = entry.get("breakdown") or {}
    metric = next(iter(entry.get("metrics") or {}), None)
    if not breakdown or metric is None:
        return None
    rows = [(f"{group} (n={m[metric]['n']})", m[metric], "#4c72b0") for group, m in breakdown.items()
            if isinstance(m.get(metric), dict)]
    overall = (entry.get("metrics") or {}).get(metric) or {}
    chance = {f"all {overall['value']:.3f}": overall["value"]} if _num(overall.get("value")) else None
    return _bars(rows, f"{task} · {metric} by group (95% bootstrap interval); dashed: all items", chance=chance,
                 xlim=None if metric not in ("acc", "acc_norm", "mc1", "mc2", "exact_match") else (0, 1))


def reliability_svg(samples: list[dict], *, bins: int = 10, min_n: int = 10) -> str | None:
    """Reliability diagram: accuracy against the model's own confidence, per task.

    Drawn for tasks whose samples carry both a confidence (the probability of the picked
    choice) and a right/wrong outcome; ECE is the bin-weighted mean |accuracy - confidence|.
    """
    by_task: dict[str, list[tuple[float, float]]] = {}
    for s in samples:
        c, ok = s.get("confidence"), s.get("correct")
        if _num(c) and isinstance(ok, bool):
            by_task.setdefault(s["task"], []).append((float(c), float(ok)))
    by_task = {t: v for t, v in by_task.items() if len(v) >= min_n}
    if not by_task:
        return None
    plt = _plt()
    import numpy as np

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot([0, 1], [0, 1], ls="--", color="#888", lw=1, label="perfectly calibrated")
    edges = np.linspace(0, 1, bins + 1)
    for task, pts in sorted(by_task.items()):
        conf = np.array([p[0] for p in pts])
        acc = np.array([p[1] for p in pts])
        idx = np.clip(np.digitize(conf, edges) - 1, 0, bins - 1)
        xs, ys, ece = [], [], 0.0
        for b in range(bins):
            mask = idx == b
            if mask.any():
                xs.append(conf[mask].mean())
                ys.append(acc[mask].mean())
                ece += mask.mean() * abs(acc[mask].mean() - conf[mask].mean())
        ax.plot(xs, ys, marker="o", label=f"{task} (n={len(pts)}, ECE {ece:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (probability of the picked choice)")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _svg(fig)


def variant_distribution_svg(samples: list[dict]) -> str | None:
    """Questionnaire answers per prompt variant: the share of each scale answer, stacked.

    Why first: when the options' order or labels move the answers, the stacks differ
    between variants; that option-order effect must be seen before reading any profile.
    """
    counts: dict[str, dict[str, float]] = {}
    for s in samples:
        if s.get("kind") != "questionnaire":
            continue
        c = counts.setdefault((s.get("groups") or {}).get("variant", "?"), {})
        if s.get("distribution"):  # distribution mode: the probability mass on each scale point
            for i, p in enumerate(s["distribution"]):
                c[str(i + 1)] = c.get(str(i + 1), 0.0) + float(p)
            continue
        a = s.get("answer")
        key = "unparsed" if not _num(a) else f"{float(a):g}"
        c[key] = c.get(key, 0.0) + 1.0
    if not counts:
        return None
    plt = _plt()
    values = sorted({k for c in counts.values() for k in c}, key=lambda k: (k == "unparsed", float(k) if k != "unparsed" else 0))
    variants = sorted(counts)
    cmap = plt.get_cmap("viridis", max(2, len(values)))
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(variants) + 1.4))
    left = [0.0] * len(variants)
    for j, val in enumerate(values):
        share = [counts[v].get(val, 0) / sum(counts[v].values()) for v in variants]
        ax.barh(variants, share, left=left, color="#bbbbbb" if val == "unparsed" else cmap(j), label=val)
        left = [a + b for a, b in zip(left, share)]
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of answers (rating: parsed replies; distribution: probability mass)")
    ax.legend(title="scale point", fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return _svg(fig)
