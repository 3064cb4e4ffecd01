"""Suites: named lists of tasks. Built-in ones ship as ``builtin/<name>.suite.yaml``.

A suite entry is a task reference (a built-in task name, a registered Python task,
or a task YAML path relative to the suite file) or a mapping that also sets the
task's default ``limit`` in this suite::

    name: preferences
    limit: 200                 # default for every task of the suite
    tasks:
      - preferences/hh_rlhf_helpful.yaml
      - {task: preferences/bbq.yaml, limit: 300}

``--limit`` overrides both. Goals name their suites (``suites:`` in a goal file);
:func:`suites_for_goal` is the one place that maps a goal to suites.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aligngoals.errors import ConfigError, config_error
from aligngoals.evaluate.tasks.spec import TaskSpec, load_task_spec


class SuiteTask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task: str
    limit: Optional[int] = Field(None, ge=1)


class SuiteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    limit: Optional[int] = Field(None, ge=1)
    """Default item limit for every task of the suite (keeps default runs short)."""
    tasks: list[Union[str, SuiteTask]]
    source_file: str | None = None

    def entries(self) -> list[SuiteTask]:
        return [SuiteTask(task=t) if isinstance(t, str) else t for t in self.tasks]


def builtin_dir() -> Path:
    return Path(str(resources.files("aligngoals.evaluate") / "builtin"))


def list_suites() -> dict[str, Path]:
    return {p.name[: -len(".suite.yaml")]: p for p in sorted(builtin_dir().glob("*.suite.yaml"))}


def list_builtin_tasks() -> dict[str, Path]:
    """Built-in task YAML files by task name (file stem)."""
    out = {}
    for p in sorted(builtin_dir().rglob("*.yaml")):
        if p.name.endswith(".suite.yaml"):
            continue
        out[p.stem] = p
    return out


def list_all_tasks() -> dict[str, TaskSpec]:
    """Every built-in task: YAML files and registered Python tasks with a default spec."""
    from aligngoals.evaluate.tasks.registry import python_task_specs

    out = {name: _load_task_file(path) for name, path in list_builtin_tasks().items()}
    for name, spec in python_task_specs().items():
        out.setdefault(name, spec)
    return out


def load_suite(name_or_path: str) -> SuiteSpec:
    suites = list_suites()
    path = suites.get(name_or_path) or Path(name_or_path)
    if not path.is_file():
        raise ConfigError(
            f"Unknown suite {name_or_path!r}.",
            hint=f"Built-in suites: {', '.join(suites) or '(none)'}; or pass the path of a suite YAML file.",
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw = dict(raw or {})
        raw.setdefault("source_file", str(path))
        return SuiteSpec.model_validate(raw)
    except ValidationError as exc:
        raise config_error(exc, f"Suite file {path}",
                           hint="A suite has 'name' and a list of 'tasks' (names, paths or {task, limit}).") from exc
    except (yaml.YAMLError, TypeError, ValueError) as exc:
        raise ConfigError(f"Suite file {path} is invalid: {exc}", hint="A suite has 'name' and a list of 'tasks'.") from exc


def _load_task_file(path: str | Path) -> TaskSpec:
    """A task YAML; one that names a registered Python task (``python: rm_pairs``) starts from its spec."""
    from aligngoals.evaluate.tasks.registry import python_task_specs

    return load_task_spec(path, python_specs=python_task_specs())


def resolve_task(ref: str, base: Path | None = None) -> TaskSpec:
    """A task by built-in name, registered Python task (``NAME`` or ``module:NAME``), or path."""
    from aligngoals.evaluate.tasks.registry import lookup_python_task

    builtin = list_builtin_tasks()
    if ref in builtin:
        return _load_task_file(builtin[ref])
    p = Path(ref)
    if not p.is_absolute() and base is not None and (base / p).is_file():
        p = base / p
    if p.is_file():
        return _load_task_file(p)
    py = lookup_python_task(ref)
    if py is not None:
        return py
    raise ConfigError(
        f"Unknown task {ref!r}.",
        hint=f"Built-in tasks: {', '.join(list_all_tasks())}; or pass the path of a task YAML file (see 'aligngoals tasks list').",
    )


def suite_entries(suite: SuiteSpec) -> list[tuple[TaskSpec, Optional[int]]]:
    """``(task spec, limit in this suite)`` for every entry."""
    base = Path(suite.source_file).parent if suite.source_file else None
    out = []
    for e in suite.entries():
        spec = resolve_task(e.task, base)
        out.append((spec, e.limit if e.limit is not None else suite.limit))
    return out


def suite_tasks(suite: SuiteSpec) -> list[TaskSpec]:
    return [spec for spec, _ in suite_entries(suite)]


# --- goals -> suites ----------------------------------------------------------------------------
LEVEL_SUITES: dict[str, list[str]] = {
    "instructions": ["instructions"],
    "preferences": ["preferences"],
    "values": ["instructions", "preferences"],
}
"""Suites that evaluate a goal of each level when the goal names none. A value goal
(e.g. ``hhh``) is also measured on the instruction and preference levels, as the
product brief's ``eval --goal hhh`` journey says; value suites join this list when
they exist."""


def suites_for_goal(goal: str) -> list[str]:
    """The suites that evaluate ``goal`` (a built-in goal name or a goal file).

    The goal's own ``suites:`` list wins; otherwise the suites of its level
    (:data:`LEVEL_SUITES`). This is the one function to extend when new suites
    (e.g. value suites) should run for a goal.
    """
    from aligngoals.goals.library import load_goal

    g = load_goal(goal)
    if g.suites:
        return list(g.suites)
    return list(LEVEL_SUITES.get(g.level, []))


def resolve_selection(
    *, suite: Optional[str] = None, tasks: Optional[str] = None, goal: Optional[str] = None
) -> tuple[str, list[TaskSpec], dict[str, int]]:
    """What ``--suite``/``--tasks``/``--goal`` select: ``(label, task specs, per-task suite limits)``.

    Several suites (from a goal) are merged in order; a task that two suites share runs once.
    """
    chosen = [x for x in (suite, tasks, goal) if x]
    if len(chosen) > 1:
        raise ConfigError("Pass only one of --suite, --tasks and --goal.")
    if tasks:
        refs = [t.strip() for t in tasks.split(",") if t.strip()]
        if not refs:
            raise ConfigError("--tasks is empty.", hint="Pass task names or files separated by commas.")
        specs = [resolve_task(t) for t in refs]
        return "+".join(s.name for s in specs), specs, {}
    suite_names: list[str]
    if goal:
        suite_names = suites_for_goal(goal)
        if not suite_names:
            raise ConfigError(f"Goal {goal!r} names no evaluation suites.", hint="Add 'suites: [...]' to the goal file.")
        label = f"goal-{Path(goal).stem}"
    else:
        suite_names = [suite or "quick"]
        label = ""
    specs: list[TaskSpec] = []
    limits: dict[str, int] = {}
    seen: set[str] = set()
    for sname in suite_names:
        s = load_suite(sname)
        label = label or s.name
        for spec, lim in suite_entries(s):
            if spec.name in seen:
                continue
            seen.add(spec.name)
            specs.append(spec)
            if lim is not None:
                limits[spec.name] = lim
    return label, specs, limits
