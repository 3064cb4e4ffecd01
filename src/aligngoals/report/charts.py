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
    lo = [r[1] - (r[2] if r[2] is not None else r[1]) for r in rows][::-1]
    hi = [(r[3] if r[3] is not None else r[1]) - r[1] for r in rows][::-1]
    ax.barh(labels, vals, xerr=[lo, hi], color="#4c72b0", ecolor="#222", capsize=3)
    ax.set_xlabel("value (95% bootstrap interval)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.find("<svg") :]
