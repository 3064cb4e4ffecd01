"""Every per-item record of a run directory as viewer samples, and the report written with them.

Why from the run store: every producer (evaluation tasks, the value suite, surveys,
judges, alignment's held-out measurement) already writes its per-item records to the
store's ``items`` table as they complete, so reading them back here gives the report
every sample without each producer passing them along.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from aligngoals.errors import AligngoalsError
from aligngoals.report import write_report
from aligngoals.report.samples import SAMPLES_FILE, read_samples, sample_from_item
from aligngoals.store import RunStore
from aligngoals.store.run_store import STORE_FILENAME


def run_samples(run_dir: str | Path, report: Optional[dict] = None) -> list[dict]:
    """The samples of every item stored in ``run_dir``, in the order they were stored."""
    run_dir = Path(run_dir)
    if not (run_dir / STORE_FILENAME).is_file():
        return []
    with RunStore(run_dir, readonly=True) as store:
        report = report if report is not None else store.get_meta("report") or {}
        rows = store.items()
    tasks = report.get("tasks") or {}
    out = []
    for task, item_id, data in rows:
        entry = tasks.get(task) or {}
        s = sample_from_item(task, item_id, data, task_type=entry.get("type"), metrics=list(entry.get("metrics") or ()))
        if s is not None:
            out.append(s)
    return out


def load_samples(run_dir: str | Path) -> list[dict]:
    """``samples.jsonl`` of a run when it was written, else the samples read from its store."""
    run_dir = Path(run_dir)
    if (run_dir / SAMPLES_FILE).is_file():
        return read_samples(run_dir / SAMPLES_FILE)
    if not (run_dir / STORE_FILENAME).is_file():
        raise AligngoalsError(f"{run_dir} has neither {SAMPLES_FILE} nor {STORE_FILENAME}.",
                              hint="Pass a run directory written by aligngoals eval, survey, judge or align.")
    return run_samples(run_dir)


def write_run_report(report: dict, run_dir: str | Path) -> tuple[Path, Path]:
    """``report.json``, ``samples.jsonl`` and ``report.html`` with every stored sample of the run."""
    return write_report(report, run_dir, samples=run_samples(run_dir, report))


def write_samples_page(run_dir: str | Path, *, model: dict, run: dict, sections: dict,
                       settings: Optional[dict] = None) -> Path:
    """``report.html`` and ``samples.jsonl`` of a run that is not an evaluation (a survey, a judging):
    its summary as sections and every stored item as samples; no report.json."""
    envelope = {"model": model or {}, "run": run or {}, "settings": settings or {}, "tasks": {}, "sections": sections,
                "packages": {}}
    _, html = write_report(envelope, run_dir, samples=run_samples(run_dir, envelope), write_json=False)
    return html
