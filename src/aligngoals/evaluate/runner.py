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

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

from pydantic import BaseModel, ConfigDict, Field

from aligngoals.errors import AligngoalsError
from aligngoals.evaluate.run import ProgressFactory, Run, package_versions
from aligngoals.evaluate.tasks.base import BuildContext, Task
from aligngoals.evaluate.tasks.data import MissingData
from aligngoals.evaluate.tasks.multiple_choice import read_mc_jsonl
from aligngoals.evaluate.tasks.registry import make_task
from aligngoals.evaluate.tasks.spec import TaskSpec
from aligngoals.io import stable_hash
from aligngoals.models.base import GenerationRequest, LoglikelihoodRequest, Model, require_scoring
from aligngoals.store import RunStore


class EvalSettings(BaseModel):
    """What an evaluation run does beyond its tasks: seed, limits, data folder."""

    model_config = ConfigDict(extra="forbid")
    seed: int = 0
    limit: Optional[int] = Field(None, ge=1)
    """``--limit``: overrides every task's own and every suite's limit."""
    suite: Optional[str] = None
    data_dir: Optional[str] = None
    extra: dict = Field(default_factory=dict)
    limits: dict[str, int] = Field(default_factory=dict)
    """Per-task limits set by a suite file (task name -> N); below ``limit``, above the task's own."""
    goal: Optional[str] = None

    def limit_for(self, task: Task) -> Optional[int]:
        if self.limit is not None:
            return self.limit
        if task.name in self.limits:
            return self.limits[task.name]
        return task.spec.limit


def default_run_id(model_name: str, label: str, settings: EvalSettings) -> str:
    """Deterministic run id, so the same command resumes the same run directory."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{model_name}-{label}").strip("-")[:60]
    h = stable_hash({"model": model_name, "label": label, "seed": settings.seed, "limit": settings.limit,
                     "data_dir": settings.data_dir, "extra": settings.extra})[:8]
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


def _describe_previous(run_dir: str | Path) -> Callable[[dict], str]:
    return lambda previous: (f"Run directory {run_dir} holds a different evaluation "
                             f"(model {previous.get('model', {}).get('name')}, tasks {previous.get('tasks')}).")


def check_run_dir(store: RunStore, fingerprint: dict) -> None:
    """Refuse to mix two different evaluations in one run directory."""
    store.claim("fingerprint", fingerprint, _describe_previous(store.run_dir))


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


def _plan_tasks(task_objs: list[Task], settings: EvalSettings, ctx: BuildContext,
                log: Callable[[str], None]) -> tuple[list[_Plan], dict[str, str]]:
    """Prepare every task and build its requests; tasks whose data is missing are skipped with the reason."""
    plans: list[_Plan] = []
    skipped: dict[str, str] = {}
    for task in task_objs:
        limit = settings.limit_for(task)
        try:
            prep = task.prepare(data_dir=settings.data_dir, limit=limit, seed=settings.seed)
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
    return plans, skipped


def _answer_all(plans: list[_Plan], model: Any, run: Run) -> dict:
    """Send every distinct request of every plan through the cached model; returns request -> answer."""
    for p in plans:  # before any request: a scoring task on a generation-only backend fails here
        if any(isinstance(r, LoglikelihoodRequest) for reqs in p.requests for r in reqs):
            require_scoring(model, f"Task {p.task.name}")
    # Deduplicate across items and tasks; sort for throughput.
    ll_unique = list(dict.fromkeys(r for p in plans for reqs in p.requests for r in reqs
                                   if isinstance(r, LoglikelihoodRequest)))
    gen_unique = list(dict.fromkeys(r for p in plans for reqs in p.requests for r in reqs
                                    if isinstance(r, GenerationRequest)))
    ll_unique.sort(key=lambda r: (-len(r.context), r.context))
    gen_unique.sort(key=lambda r: -_generation_length(r))
    bar = run.bar("Evaluating", len(ll_unique) + len(gen_unique))
    answers: dict = {}
    if ll_unique:
        answers.update(zip(ll_unique, model.loglikelihood(ll_unique, progress=bar.advance)))
    if gen_unique:
        answers.update(zip(gen_unique, model.generate(gen_unique, progress=bar.advance)))
    bar.close()
    return answers


def _score_plan(p: _Plan, answers: dict, ctx: BuildContext, run: Run, seed: int) -> tuple[dict, dict]:
    """Score one task's items, store the per-item records, and aggregate; returns (report entry, aggregate)."""
    task = p.task
    records = []
    for doc, reqs in zip(p.docs, p.requests):
        rec = task.score(doc, reqs, [answers[r] for r in reqs], ctx)
        rec = {"id": doc["id"], **rec}
        groups = task.groups(doc)
        if groups:
            rec["groups"] = groups
        records.append(rec)
    assert run.store is not None
    run.store.put_items(task.name, [(r["id"], r) for r in records])
    agg = task.aggregate(records, seed)
    entry = {"level": task.spec.level, "type": task.spec.type, "n": len(records), "metrics": agg["metrics"]}
    if "breakdown" in agg:
        entry["breakdown"] = agg["breakdown"]
    entry.update({"limit": p.limit, "n_available": p.n_available, "fewshot": p.fewshot})
    if task.spec.generalization:
        entry["generalization"] = task.spec.generalization
    return entry, {"agg": agg, "fields": {g for r in records for g in r.get("groups", {})}}


def _generalization(plans: list[_Plan], scored: dict[str, dict]) -> dict:
    """Metrics grouped by generalization level (held-out tasks, categories, samples)."""
    out: dict[str, dict] = {}
    for p in plans:
        spec, agg, fields = p.task.spec, scored[p.task.name]["agg"], scored[p.task.name]["fields"]
        if spec.generalization:
            out.setdefault(spec.generalization, {})[p.task.name] = agg["metrics"]
        if spec.generalization_field:
            for key, value in agg.get("breakdown", {}).items():
                if fields == {"generalization"}:
                    out.setdefault(key, {})[p.task.name] = value
                elif key.startswith("generalization="):
                    out.setdefault(key.split("=", 1)[1], {})[p.task.name] = value
    return out


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
    fingerprint = {"model": model.identity, "tasks": names, "seed": settings.seed, "limit": settings.limit}
    with Run(run_dir, kind="fingerprint", fingerprint=fingerprint, describe=_describe_previous(run_dir),
             command=command, progress=progress) as run:
        cached = run.cached(model)
        ctx = BuildContext(
            seed=settings.seed,
            chat_renderer=lambda msgs: model.apply_chat_template(msgs, add_generation_prompt=True),
        )
        plans, skipped = _plan_tasks(task_objs, settings, ctx, log)
        answers = _answer_all(plans, cached, run)
        report_tasks: dict[str, dict] = {}
        scored: dict[str, dict] = {}
        for p in plans:
            report_tasks[p.task.name], scored[p.task.name] = _score_plan(p, answers, ctx, run, settings.seed)
        for name, reason in skipped.items():
            spec = next(t.spec for t in task_objs if t.name == name)
            report_tasks[name] = {"level": spec.level, "type": spec.type, "n": 0, "metrics": {}, "skipped": reason}
        generalization = _generalization(plans, scored)
        sections: dict = {}
        if generalization:
            sections["generalization"] = {lvl: generalization[lvl] for lvl in sorted(generalization)}
        report = run.envelope(
            model=model,
            settings={"seed": settings.seed, "limit": settings.limit, "suite": settings.suite,
                      "tasks": names, "data_dir": settings.data_dir,
                      **({"goal": settings.goal} if settings.goal else {}),
                      "limits": {p.task.name: p.limit for p in plans},
                      **settings.extra},
            packages=package_versions(),
            tasks={n: report_tasks[n] for n in names},  # in the order the tasks were given
            sections=sections,
        )
        assert run.store is not None
        run.store.set_meta("report", report)
        return report
