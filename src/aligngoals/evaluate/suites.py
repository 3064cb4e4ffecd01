"""Suites: named lists of tasks. Built-in ones ship as ``builtin/<name>.suite.yaml``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigError
from .tasks.spec import TaskSpec, load_task_spec


class SuiteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    tasks: list[str]
    source_file: str | None = None


def builtin_dir() -> Path:
    return Path(str(resources.files("aligngoals.evaluate") / "builtin"))


def list_suites() -> dict[str, Path]:
    return {p.name[: -len(".suite.yaml")]: p for p in sorted(builtin_dir().glob("*.suite.yaml"))}


def list_builtin_tasks() -> dict[str, Path]:
    out = {}
    for p in sorted(builtin_dir().rglob("*.yaml")):
        if p.name.endswith(".suite.yaml"):
            continue
        out[p.stem] = p
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
    except (yaml.YAMLError, ValidationError, TypeError, ValueError) as exc:
        raise ConfigError(f"Suite file {path} is invalid: {exc}", hint="A suite has 'name' and a list of 'tasks'.") from exc


def resolve_task(ref: str, base: Path | None = None) -> TaskSpec:
    """A task by built-in name, by path, or by path relative to a suite file."""
    builtin = list_builtin_tasks()
    if ref in builtin:
        return load_task_spec(builtin[ref])
    p = Path(ref)
    if not p.is_absolute() and base is not None and (base / p).is_file():
        p = base / p
    if p.is_file():
        return load_task_spec(p)
    raise ConfigError(
        f"Unknown task {ref!r}.",
        hint=f"Built-in tasks: {', '.join(builtin)}; or pass the path of a task YAML file (see 'aligngoals tasks list').",
    )


def suite_tasks(suite: SuiteSpec) -> list[TaskSpec]:
    base = Path(suite.source_file).parent if suite.source_file else None
    return [resolve_task(t, base) for t in suite.tasks]
