"""Reports: the typed ``report.json`` for machines, ``report.html`` for people."""

from aligngoals.report.schema import SCHEMA_VERSION, Report, SurveyReport, read_report, validate_report
from aligngoals.report.writer import render_html, write_report

__all__ = ["SCHEMA_VERSION", "Report", "SurveyReport", "read_report", "render_html", "validate_report", "write_report"]
