"""The typed report: the JSON Schema in docs is current, and readers reject foreign versions clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aligngoals.errors import AligngoalsError
from aligngoals.report.schema import SCHEMA_VERSION, json_schema, read_report, validate_report

DOC = Path(__file__).resolve().parents[2] / "docs" / "report.schema.json"


def _minimal() -> dict:
    return {"schema_version": SCHEMA_VERSION, "kind": "evaluation", "aligngoals_version": "0.2.0",
            "run": {"id": "r", "dir": "/tmp/r", "command": None, "started": "2026-01-01T00:00:00+00:00",
                    "finished": "2026-01-01T00:00:01+00:00", "wall_s": 1.0, "requests_cached": 0,
                    "requests_computed": 3},
            "model": {"name": "smollm2"}, "settings": {}, "packages": {},
            "tasks": {"t": {"level": "values", "type": "multiple_choice", "n": 3,
                            "metrics": {"acc": {"value": 0.5, "ci_low": 0.1, "ci_high": 0.9, "n": 3}}}},
            "sections": {}}


def test_docs_schema_is_current():
    assert DOC.is_file(), "run: python -m aligngoals.report.schema > docs/report.schema.json"
    assert json.loads(DOC.read_text(encoding="utf-8")) == json_schema(), \
        "docs/report.schema.json is stale: python -m aligngoals.report.schema > docs/report.schema.json"


def test_valid_report_passes_and_bad_field_is_named():
    validate_report(_minimal())
    bad = _minimal()
    bad["tasks"]["t"]["n"] = -1
    with pytest.raises(AligngoalsError, match=r"field 'tasks.t.n'"):
        validate_report(bad)


def test_old_and_foreign_versions_are_named(tmp_path):
    old = _minimal()
    del old["schema_version"]
    p = tmp_path / "old_report.json"
    p.write_text(json.dumps(old), encoding="utf-8")
    with pytest.raises(AligngoalsError, match="no schema_version"):
        read_report(p)
    new = _minimal()
    new["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(AligngoalsError, match=f"schema_version {SCHEMA_VERSION + 1}.*reads version {SCHEMA_VERSION}"):
        validate_report(new)
