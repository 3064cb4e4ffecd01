"""Write ``report.json`` and ``report.html`` atomically into a run directory.

The HTML is rendered by jinja2 with autoescaping on, so model text in a report
can never inject markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from ..io import atomic_write_json, atomic_write_text
from .charts import metric_bars_svg


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
    return template.render(report=report, chart=metric_bars_svg(report), examples=examples or [])


def write_report(report: dict, run_dir: str | Path, examples: list[dict] | None = None) -> tuple[Path, Path]:
    run_dir = Path(run_dir)
    j = atomic_write_json(run_dir / "report.json", report)
    h = atomic_write_text(run_dir / "report.html", render_html(report, examples))
    return j, h
