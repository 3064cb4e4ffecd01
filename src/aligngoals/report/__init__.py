"""Reports: ``report.json`` for machines, ``report.html`` for people."""

from aligngoals.report.writer import render_html, write_report  # noqa: F401
