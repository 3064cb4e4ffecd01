"""Report rendering: model text is escaped, numbers are shown with intervals."""

from __future__ import annotations

import json

from aligngoals.report import SCHEMA_VERSION, render_html, write_report


def _report():
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "evaluation",
        "aligngoals_version": "0",
        "run": {"id": "r", "dir": "d", "command": "aligngoals eval", "started": "s", "finished": "f", "wall_s": 1.0,
                "requests_cached": 0, "requests_computed": 2},
        "model": {"backend": "llamacpp", "name": "<script>alert(1)</script>", "file_sha256": "ab" * 32},
        "settings": {"seed": 0, "limit": None},
        "packages": {"python": "3"},
        "tasks": {"t": {"level": "values", "type": "multiple_choice", "n": 2, "metrics": {"acc": {"value": 0.5, "ci_low": 0.0, "ci_high": 1.0, "n": 2}}}},
        "sections": {"notes": {"output": "<img src=x onerror=alert(2)>"}},
    }


def test_html_escapes_model_text():
    html = render_html(_report(), examples=[{"task": "t", "id": "1", "text": "<b>bold</b>"}])
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "<img src=x" not in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "0.500" in html and "[0.000, 1.000]" in html


def test_write_report_is_atomic_and_complete(tmp_path):
    j, h = write_report(_report(), tmp_path)
    assert json.loads(j.read_text())["tasks"]["t"]["n"] == 2
    assert h.read_text().startswith("<!doctype html>")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
