"""Write ``report.json`` and ``report.html`` atomically into a run directory.

The HTML is rendered by jinja2 with autoescaping on, so model text in a report
can never inject markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from aligngoals.io import atomic_write_json, atomic_write_text
from aligngoals.report import charts as _charts
from aligngoals.report.charts import metric_bars_svg
from aligngoals.report.schema import validate_report


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def render_html(report: dict, examples: list[dict] | None = None) -> str:
    env = Environment(
        loader=PackageLoader("aligngoals.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
    )
    env.globals["fmt"] = _fmt
    template = env.get_template("report.html.j2")
    return template.render(report=report, chart=metric_bars_svg(report), examples=examples or [],
                           value_charts=value_charts(report))


def value_charts(report: dict) -> dict:
    """The value section's charts (inline SVG, None where a part is missing)."""
    v = (report.get("sections") or {}).get("values")
    if not isinstance(v, dict):
        return {}
    return {
        "radar": _charts.profile_radar_svg(v.get("questionnaire")),
        "norms": _charts.norm_levels_svg(v.get("norms")),
        "refusal": _charts.refusal_svg(v.get("safety")),
        "priorities": _charts.priorities_svg(v.get("dilemmas")),
        "value_priorities": {k: _charts.priorities_svg(d) for k, d in (v.get("value_priorities") or {}).items()},
    }


def write_report(report: dict, run_dir: str | Path, examples: list[dict] | None = None) -> tuple[Path, Path]:
    """Validate ``report`` against the typed schema, then write report.json and report.html atomically."""
    run_dir = Path(run_dir)
    validate_report(report, source=str(run_dir / "report.json"))
    j = atomic_write_json(run_dir / "report.json", report)
    h = atomic_write_text(run_dir / "report.html", render_html(report, examples))
    return j, h
