"""Dilemma sets as data: scenarios in which two principles (or two basic values) conflict.

A set is a YAML file (or JSONL of scenarios) written against one target, a goal
(``kind: principles``; option keys are principle ids) or a value system
(``kind: values``; option keys are dimension ids)::

    name: hhh
    kind: principles
    target: hhh
    question: Which would you do?
    scenarios:
      - id: hhh-harm-help-01
        between: [harmless, helpful]
        situation: ...
        options: {harmless: "...", helpful: "..."}

Why the option is keyed by the principle it serves: the model's choice then *is*
a comparison between two principles, which is what a Bradley-Terry fit needs, and
a reader can audit every scenario against the goal it claims to test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from aligngoals.errors import DataError
from aligngoals.io import atomic_write_text

DEFAULT_QUESTION = "Which would you do?"


@dataclass
class Scenario:
    id: str
    between: tuple[str, str]
    situation: str
    options: dict[str, str]
    generated: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"id": self.id, "between": list(self.between), "situation": self.situation,
                             "options": {k: self.options[k] for k in self.between}}
        if self.generated:
            d["generated"] = True
        if self.meta:
            d["meta"] = self.meta
        return d


@dataclass
class DilemmaSet:
    name: str
    kind: Literal["principles", "values"]
    target: str
    scenarios: list[Scenario]
    question: str = DEFAULT_QUESTION
    source: Optional[str] = None

    def ids(self) -> list[str]:
        """Every principle/value id the set compares, in first-use order."""
        out: list[str] = []
        for s in self.scenarios:
            for x in s.between:
                if x not in out:
                    out.append(x)
        return out

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "target": self.target, "question": self.question,
                "scenarios": [s.to_dict() for s in self.scenarios]}


def builtin_dir() -> Path:
    return Path(str(resources.files("aligngoals.values.dilemmas") / "scenarios"))


def list_builtin() -> dict[str, Path]:
    return {p.stem: p for p in sorted(builtin_dir().glob("*.yaml"))}


def _scenario(raw: Any, where: str, known: Optional[set[str]]) -> Scenario:
    if not isinstance(raw, dict):
        raise DataError(f"{where}: expected a mapping with id, between, situation and options.")
    for key in ("id", "situation"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise DataError(f"{where}: field '{key}' must be a non-empty string.")
    sid = raw["id"].strip()
    between = raw.get("between")
    if not (isinstance(between, list) and len(between) == 2 and all(isinstance(x, str) and x for x in between)):
        raise DataError(f"{where} ({sid}): field 'between' must list exactly two ids.")
    if between[0] == between[1]:
        raise DataError(f"{where} ({sid}): field 'between' names {between[0]!r} twice; a dilemma needs two different ones.")
    if known is not None:
        for x in between:
            if x not in known:
                raise DataError(f"{where} ({sid}): field 'between': {x!r} is not a principle/value of the target.",
                                hint=f"Known ids: {', '.join(sorted(known))}.")
    options = raw.get("options")
    if not isinstance(options, dict):
        raise DataError(f"{where} ({sid}): field 'options' must map each id in 'between' to the option that serves it.")
    for x in between:
        if not isinstance(options.get(x), str) or not options[x].strip():
            raise DataError(f"{where} ({sid}): field 'options.{x}' must be a non-empty string.")
    extra = set(options) - set(between)
    if extra:
        raise DataError(f"{where} ({sid}): field 'options' has keys not in 'between': {', '.join(sorted(extra))}.")
    if options[between[0]].strip() == options[between[1]].strip():
        raise DataError(f"{where} ({sid}): the two options are identical.")
    return Scenario(sid, (between[0], between[1]), raw["situation"].strip(),
                    {x: options[x].strip() for x in between}, bool(raw.get("generated", False)),
                    dict(raw.get("meta") or {}))


def parse_set(raw: Any, where: str, *, known: Optional[set[str]] = None) -> DilemmaSet:
    if not isinstance(raw, dict):
        raise DataError(f"{where}: a dilemma set is a mapping with name, kind, target and scenarios.")
    kind = raw.get("kind", "principles")
    if kind not in ("principles", "values"):
        raise DataError(f"{where}: field 'kind' must be 'principles' or 'values', got {kind!r}.")
    for key in ("name", "target"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise DataError(f"{where}: field '{key}' must be a non-empty string.")
    items = raw.get("scenarios")
    if not isinstance(items, list) or not items:
        raise DataError(f"{where}: field 'scenarios' must be a non-empty list.")
    scenarios = [_scenario(s, f"{where}: scenarios[{i}]", known) for i, s in enumerate(items)]
    seen: set[str] = set()
    for s in scenarios:
        if s.id in seen:
            raise DataError(f"{where}: scenario id {s.id!r} is used twice.")
        seen.add(s.id)
    question = raw.get("question") or DEFAULT_QUESTION
    return DilemmaSet(raw["name"].strip(), kind, raw["target"].strip(), scenarios, str(question), where)


def load_dilemma_set(ref: str | Path, *, known: Optional[set[str]] = None) -> DilemmaSet:
    """A built-in set by name (``hhh``, ``constitution``, ``schwartz``) or a YAML/JSON/JSONL file."""
    builtin = list_builtin()
    p = builtin.get(str(ref)) or Path(ref)
    if not p.is_file():
        raise DataError(f"Dilemma set {str(ref)!r} not found.",
                        hint=f"Built-in sets: {', '.join(builtin)}; or pass a YAML file (see docs/values.md).")
    text = p.read_text(encoding="utf-8")
    if p.suffix == ".jsonl":
        rows = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{p}:{lineno}: not valid JSON ({exc.msg}).") from exc
        first = rows[0] if rows else {}
        raw = {"name": p.stem, "kind": first.get("kind", "principles"), "target": first.get("target", p.stem),
               "scenarios": [{k: v for k, v in r.items() if k not in ("kind", "target")} for r in rows]}
    else:
        try:
            raw = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            mark = getattr(exc, "problem_mark", None)
            loc = f":{mark.line + 1}" if mark is not None else ""
            raise DataError(f"{p}{loc}: cannot read the dilemma set ({getattr(exc, 'problem', None) or exc}).") from exc
    return parse_set(raw, str(p), known=known)


def save_dilemma_set(ds: DilemmaSet, path: str | Path) -> Path:
    """Write a set as YAML (atomically), e.g. after generating scenarios with a model."""
    return atomic_write_text(path, yaml.safe_dump(ds.to_dict(), sort_keys=False, allow_unicode=True, width=100))
