"""Write ``report.json``, ``samples.jsonl`` and ``report.html`` atomically into a run directory.

The HTML is rendered by jinja2 with autoescaping on, so model text in the server-rendered
parts can never inject markup. Samples travel as gzip-compressed, base64-encoded JSON
inside a non-executed ``<script type="application/json">`` (base64 has no ``<``, so no
text can close that element), and the viewer script writes them with ``textContent`` only.
A Content-Security-Policy meta tag allows exactly one script: the viewer, by its hash.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from aligngoals.io import atomic_write_json, atomic_write_text
from aligngoals.report import charts as _charts
from aligngoals.report.charts import metric_bars_svg
from aligngoals.report.samples import finite_json, write_samples
from aligngoals.report.schema import validate_report


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("aligngoals.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
    )
    env.globals["fmt"] = _fmt
    return env


@lru_cache(maxsize=1)
def viewer_script() -> tuple[str, str]:
    """The viewer's JavaScript and its CSP source (``'sha256-...'``)."""
    js = (Path(__file__).parent / "templates" / "viewer.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii")
    return js, f"'sha256-{digest}'"


def embed(payload: dict) -> str:
    """gzip + base64 of the JSON payload, for the page's data element."""
    raw = json.dumps(finite_json(payload), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


def page_context(payload: dict | None) -> dict:
    """Template variables every page shares: the CSP, the viewer script and its data."""
    js, source = viewer_script()
    script_src = source if payload is not None else "'none'"
    csp = (f"default-src 'none'; script-src {script_src}; style-src 'unsafe-inline'; img-src data:; "
           "base-uri 'none'; form-action 'none'")
    return {"csp": csp, "viewer_js": js if payload is not None else None,
            "viewer_data": embed(payload) if payload is not None else None}


def sample_charts(report: dict, samples: list[dict]) -> dict:
    """Breakdown bars per task, the reliability diagram and the questionnaire variant distribution."""
    return {
        "breakdowns": {t: svg for t, e in (report.get("tasks") or {}).items()
                       if (svg := _charts.breakdown_bars_svg(t, e)) is not None},
        "reliability": _charts.reliability_svg(samples),
        "variants": _charts.variant_distribution_svg(samples),
    }


def render_html(report: dict, examples: list[dict] | None = None, samples: list[dict] | None = None) -> str:
    samples = samples or []
    template = _env().get_template("report.html.j2")
    return template.render(report=report, chart=metric_bars_svg(report), examples=examples or [],
                           value_charts=value_charts(report), sample_charts=sample_charts(report, samples),
                           n_samples=len(samples),
                           **page_context({"mode": "report", "samples": samples} if samples else None))


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


def write_report(report: dict, run_dir: str | Path, examples: list[dict] | None = None,
                 samples: list[dict] | None = None, *, write_json: bool = True) -> tuple[Path, Path]:
    """Validate ``report`` against the typed schema, then write report.json, samples.jsonl (when
    samples are given) and report.html atomically.

    ``write_json=False`` leaves report.json out (and the schema check with it): survey and judge
    runs keep their own summary files, and a report.json there would pass them off as evaluation runs.
    """
    run_dir = Path(run_dir)
    j = run_dir / "report.json"
    if write_json:
        validate_report(report, source=str(j))
        atomic_write_json(j, report)
    if samples is not None:
        write_samples(run_dir, samples)
    h = atomic_write_text(run_dir / "report.html", render_html(report, examples, samples))
    return j, h


def render_compare_html(comparison: dict) -> str:
    """The comparison page: metrics side by side with paired differences, and the changed items."""
    template = _env().get_template("compare.html.j2")
    payload = {"mode": "compare", "runs": comparison["labels"][:2], "pairs": comparison["changed"]}
    return template.render(c=comparison, **page_context(payload if comparison["changed"] else None))
