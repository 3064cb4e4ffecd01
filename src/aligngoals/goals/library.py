"""Load, validate and save goals and value systems (built-in names or YAML/JSON files).

Why one loader for both sources: a user's own constitution must be a first-class
citizen, checked by exactly the rules the built-in library passes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel, ValidationError

from aligngoals.errors import ConfigError, config_error
from aligngoals.goals.spec import Goal, ValueSystem
from aligngoals.io import atomic_write_text

PathLike = Union[str, Path]

_LIB = "library"
_GOALS_DIR = "goals"
_VALUES_DIR = "values"


def _library_dir(sub: str):
    return resources.files("aligngoals.goals").joinpath(_LIB, sub)


def _builtin_files(sub: str) -> dict[str, Any]:
    out = {}
    for entry in _library_dir(sub).iterdir():
        if entry.name.endswith(".yaml"):
            out[entry.name[: -len(".yaml")]] = entry
    return dict(sorted(out.items()))


def list_goals() -> list[str]:
    """Names of the built-in goals (``hhh``, ``constitution``, ...)."""
    return list(_builtin_files(_GOALS_DIR))


def list_value_systems() -> list[str]:
    """Names of the built-in value systems (``schwartz``, ``moral_foundations``, ``hofstede``, ``ethics``)."""
    return list(_builtin_files(_VALUES_DIR))


def _looks_like_path(ref: str) -> bool:
    return any(ref.endswith(s) for s in (".yaml", ".yml", ".json")) or "/" in ref or "\\" in ref


def _read_mapping(text: str, where: str, suffix: str) -> dict:
    try:
        raw = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}:{exc.lineno}: not valid JSON ({exc.msg}).", hint="Fix the JSON syntax.") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}{loc}: not valid YAML ({problem}).", hint="Fix the YAML syntax.") from exc
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{where}: expected a mapping at the top level, got {type(raw).__name__}.",
            hint="A goal file starts with keys such as 'name:', 'level:' and 'principles:'.",
        )
    return raw


def _validate(model: type[BaseModel], raw: dict, where: str, doc: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise config_error(exc, where, raw=raw, hint=f"See {doc} for the fields and what each expects.") from exc


def _read_file(ref: PathLike, kind: str) -> tuple[dict, str, Path | None]:
    p = Path(ref).expanduser()
    if not p.is_file():
        names = list_goals() if kind == "goal" else list_value_systems()
        raise ConfigError(
            f"{kind.capitalize()} file {p} does not exist.",
            hint=f"Pass a YAML/JSON path or a built-in name: {', '.join(names)}.",
        )
    return _read_mapping(p.read_text(encoding="utf-8"), str(p), p.suffix.lower()), str(p), p


def _builtin(name: str, sub: str) -> tuple[dict, str]:
    files = _builtin_files(sub)
    entry = files[name]
    return _read_mapping(entry.read_text(encoding="utf-8"), f"built-in {name}", ".yaml"), f"built-in {sub[:-1]} {name!r}"


def load_value_system(name_or_path: PathLike) -> ValueSystem:
    """A built-in value system by name (see :func:`list_value_systems`) or one from a YAML/JSON file."""
    ref = str(name_or_path)
    if not _looks_like_path(ref) and ref in _builtin_files(_VALUES_DIR):
        raw, where = _builtin(ref, _VALUES_DIR)
        return _validate(ValueSystem, raw, where, "docs/goals.md")
    if not _looks_like_path(ref) and not Path(ref).exists():
        raise ConfigError(
            f"Unknown value system {ref!r}.",
            hint=f"Built-in value systems: {', '.join(list_value_systems())}; or pass a YAML/JSON file path.",
        )
    raw, where, _ = _read_file(ref, "value system")
    vs = _validate(ValueSystem, raw, where, "docs/goals.md")
    return vs


def load_goal(name_or_path: PathLike, *, check_references: bool = True) -> Goal:
    """A built-in goal by name (see :func:`list_goals`) or one from a YAML/JSON file.

    With ``check_references`` (the default) every ``system:dimension`` reference in
    the principles must name a real dimension of a built-in value system or of one
    declared in the goal's ``value_systems``; a typo there would otherwise silently
    drop a principle out of every per-dimension report.
    """
    ref = str(name_or_path)
    base: Path | None = None
    if not _looks_like_path(ref) and ref in _builtin_files(_GOALS_DIR):
        raw, where = _builtin(ref, _GOALS_DIR)
    else:
        if not _looks_like_path(ref) and not Path(ref).exists():
            raise ConfigError(
                f"Unknown goal {ref!r}.",
                hint=f"Built-in goals: {', '.join(list_goals())}; or pass a YAML/JSON file path.",
            )
        raw, where, p = _read_file(ref, "goal")
        base = p.parent if p is not None else None
    goal = _validate(Goal, raw, where, "docs/goals.md")
    goal._source_dir = str(base) if base is not None else None  # type: ignore[attr-defined]
    if check_references:
        problems = check_goal(goal, base_dir=base)
        if problems:
            raise ConfigError(f"{where}: {problems[0]}", hint="See docs/goals.md (value systems and dimension references).")
    return goal


def resolve_value_system(goal: Goal, system: str, *, base_dir: PathLike | None = None) -> ValueSystem:
    """The value system a goal means by ``system`` in ``system:dimension`` references."""
    target = goal.value_systems.get(system, system)
    if base_dir is not None and _looks_like_path(target) and not Path(target).is_absolute():
        target = str(Path(base_dir) / target)
    return load_value_system(target)


def check_goal(goal: Goal, *, base_dir: PathLike | None = None) -> list[str]:
    """Problems that schema validation cannot see: unresolvable dimension references.

    Returns messages (empty when the goal is consistent), each naming the principle and the reference.
    """
    problems: list[str] = []
    cache: dict[str, ValueSystem | None] = {}
    for p in goal.principles_in_priority_order():
        for ref in p.dimensions:
            system, dim = ref.split(":", 1)
            if system not in cache:
                try:
                    cache[system] = resolve_value_system(goal, system, base_dir=base_dir)
                except ConfigError as exc:
                    cache[system] = None
                    problems.append(
                        f"principle {p.id!r}: dimension reference {ref!r} names value system {system!r}, "
                        f"which cannot be loaded ({exc.message})"
                    )
                    continue
            vs = cache[system]
            if vs is None:
                continue
            if not vs.has_dimension(dim):
                problems.append(
                    f"principle {p.id!r}: dimension reference {ref!r}: value system {system!r} has no dimension {dim!r} "
                    f"(expected one of: {', '.join(vs.dimension_ids())})"
                )
    return problems


def goal_to_dict(goal: Goal) -> dict:
    """Plain data for YAML/JSON (principles in priority order, defaults included so the file is self-describing)."""
    return goal.model_dump(mode="json")


def dump_goal(goal: Goal, path: PathLike) -> Path:
    """Write a goal as YAML (``.yaml``/``.yml``) or JSON (``.json``) atomically; :func:`load_goal` reads it back equal."""
    p = Path(path)
    data = goal_to_dict(goal)
    if p.suffix.lower() == ".json":
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    else:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return atomic_write_text(p, text)


def dump_value_system(vs: ValueSystem, path: PathLike) -> Path:
    p = Path(path)
    data = vs.model_dump(mode="json")
    if p.suffix.lower() == ".json":
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    else:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return atomic_write_text(p, text)


@dataclass
class SpecFile:
    """What :func:`load_spec_file` found in a file: a goal or a value system."""

    kind: str
    spec: Goal | ValueSystem
    warnings: list[str] = field(default_factory=list)


def load_spec_file(name_or_path: PathLike, known_suites: "set[str] | None" = None) -> SpecFile:
    """Load a goal *or* a value system, telling them apart by their keys (for ``aligngoals goals validate``).

    ``known_suites`` (the suites the evaluation layer ships, passed in by the caller because
    goals sit below evaluation) turns on warnings for suites a goal names that do not exist.

    Why: users write both kinds of file; one validate command for either is simpler
    than asking which one they meant.
    """
    ref = str(name_or_path)
    if not _looks_like_path(ref) and not Path(ref).exists():
        if ref in _builtin_files(_VALUES_DIR):
            return SpecFile("value_system", load_value_system(ref))
        return SpecFile("goal", load_goal(ref))
    raw, _, _ = _read_file(ref, "spec")
    if "dimensions" in raw and "principles" not in raw and "level" not in raw:
        return SpecFile("value_system", load_value_system(ref))
    goal = load_goal(ref)
    warnings = []
    if goal.suites and known_suites is not None:
        for s in goal.suites:
            if not _looks_like_path(s) and s not in known_suites:
                warnings.append(f"suite {s!r} is not a built-in suite (built-in: {', '.join(sorted(known_suites))})")
            elif _looks_like_path(s) and not (Path(ref).parent / s).exists() and not Path(s).exists():
                warnings.append(f"suite file {s!r} does not exist")
    for d in goal.data:
        p = Path(d.path).expanduser()
        if not p.is_absolute():
            p = Path(ref).parent / p
        if not p.exists():
            warnings.append(f"data file {d.path!r} does not exist (looked at {p})")
    return SpecFile("goal", goal, warnings)
