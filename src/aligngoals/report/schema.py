"""The typed report: what report.json (evaluation, value suite, align before/after) and survey.json hold.

Why typed: reports are read by people, by ``aligngoals compare``, by the judge
(which reads runs back) and by other tools. A pydantic model with a
``schema_version`` makes the contract explicit, generates the JSON Schema in
``docs/report.schema.json``, and lets a reader of an old or foreign file fail
with a message naming the version instead of a KeyError deep inside.

Sections that vary a lot between measurements (the value profile's parts, a
judge summary) are typed at the level readers rely on and allow extra keys below
it, so adding a statistic is not a schema change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aligngoals.errors import AligngoalsError, config_error

SCHEMA_VERSION = 1
"""Bump when a key readers rely on changes meaning or disappears; adding keys does not bump it."""

ReportKind = Literal["evaluation", "survey", "alignment_eval"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class RunBlock(BaseModel):
    """Where, when and how the run went: identical in every report kind."""

    model_config = ConfigDict(extra="allow")
    id: str
    dir: str
    command: Optional[str] = None
    started: str
    finished: str
    wall_s: float
    requests_cached: int = Field(ge=0)
    requests_computed: int = Field(ge=0)


class MetricValue(_Open):
    """One metric with its bootstrap interval and sample size."""

    value: Optional[float] = None
    ci_low: Optional[float] = None
    ci_high: Optional[float] = None
    n: Optional[int] = None


class TaskResult(_Open):
    level: str
    type: str
    n: int = Field(ge=0)
    metrics: dict[str, MetricValue | float | int | None | dict] = Field(default_factory=dict)
    breakdown: Optional[dict[str, Any]] = None
    skipped: Optional[str] = None


class ValueSection(_Open):
    """The value suite's parts (each present when the goal asks for it)."""

    goal: Optional[str] = None
    norms: Optional[dict[str, Any]] = None
    safety: Optional[dict[str, Any]] = None
    dilemmas: Optional[dict[str, Any]] = None
    questionnaire: Optional[dict[str, Any]] = None


class Sections(_Open):
    generalization: Optional[dict[str, Any]] = None
    values: Optional[ValueSection] = None


class Report(_Open):
    """report.json of an evaluation (tasks, value suite, reward scores) or an alignment measurement."""

    schema_version: int = SCHEMA_VERSION
    kind: ReportKind = "evaluation"
    aligngoals_version: str
    run: RunBlock
    model: dict[str, Any]
    settings: dict[str, Any] = Field(default_factory=dict)
    packages: dict[str, str] = Field(default_factory=dict)
    tasks: dict[str, TaskResult] = Field(default_factory=dict)
    sections: Sections = Field(default_factory=Sections)


class SurveyReport(_Open):
    """survey.json: a questionnaire administered many ways, with the value profile per respondent."""

    schema_version: int = SCHEMA_VERSION
    kind: Literal["survey"] = "survey"
    aligngoals_version: str
    run: RunBlock
    model: dict[str, Any]
    instrument: dict[str, Any]
    settings: dict[str, Any]
    profiles: dict[str, Any]
    answers: list[dict[str, Any]]


def validate_report(data: dict, *, source: str = "report") -> dict:
    """Check ``data`` against the schema of its kind; returns it unchanged (a dict) when valid.

    Raises an error naming the source and the first problem; a report of another
    schema version gets a message naming both versions.
    """
    if not isinstance(data, dict):
        raise AligngoalsError(f"{source}: a report must be a JSON object, got {type(data).__name__}.")
    version = data.get("schema_version")
    if version is None:
        raise AligngoalsError(
            f"{source} has no schema_version: it was written by aligngoals before 0.2 (schema {SCHEMA_VERSION}).",
            hint="Re-run the command that wrote it (the run store makes that fast) to get a current report.",
        )
    if version != SCHEMA_VERSION:
        raise AligngoalsError(
            f"{source} has schema_version {version}; this aligngoals reads version {SCHEMA_VERSION}.",
            hint="Use the aligngoals version that wrote it, or re-run the command to write a current report.",
        )
    cls = SurveyReport if data.get("kind") == "survey" else Report
    try:
        cls.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, source, cls=AligngoalsError,
                           hint="See docs/report.schema.json for what a report holds.") from None
    return data


def read_report(path: str | Path) -> dict:
    """Read and validate a report.json or survey.json."""
    p = Path(path)
    if not p.is_file():
        raise AligngoalsError(f"Report {p} does not exist.", hint="Point at a run directory's report.json.")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise AligngoalsError(f"{p}:{exc.lineno}: not valid JSON ({exc.msg}).") from None
    return validate_report(data, source=str(p))


def json_schema() -> dict:
    """The JSON Schema of both report kinds (written to docs/report.schema.json)."""
    from pydantic.json_schema import models_json_schema

    refs, top = models_json_schema([(Report, "validation"), (SurveyReport, "validation")])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"aligngoals report (schema_version {SCHEMA_VERSION})",
        "oneOf": [refs[(Report, "validation")], refs[(SurveyReport, "validation")]],
        **top,
    }


if __name__ == "__main__":  # python -m aligngoals.report.schema > docs/report.schema.json
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
