"""Goal specs: what a model is aligned to, written down as data.

Why a schema and not free text: the survey's first open problem is that alignment
targets are usually implicit. A goal here is a validated object with explicit
principles and an explicit priority order, so that (a) a conflict between two
principles has a declared winner that judges and reports can cite, (b) the same
goal drives evaluation and training, and (c) a reviewer can diff two goals.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

Level = Literal["instructions", "preferences", "values"]
LEVELS: tuple[str, ...] = ("instructions", "preferences", "values")

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_DIM_REF = re.compile(r"^[A-Za-z0-9_.\-]+:[A-Za-z0-9_.\-]+$")


def _check_id(value: str, what: str) -> str:
    if not _ID.match(value):
        raise ValueError(
            f"{what} {value!r} must start with a letter or digit and contain only letters, digits, '_', '.' or '-'"
        )
    return value


class _Spec(BaseModel):
    """Base for spec objects: unknown keys are errors (a typo must not silently drop a field)."""

    model_config = ConfigDict(extra="forbid")

    def __eq__(self, other: object) -> bool:
        # Why: equality means "same spec", independent of where it was loaded from
        # (the source path is kept in a private attribute that must not count).
        if type(other) is not type(self):
            return NotImplemented
        return self.model_dump() == other.model_dump()  # type: ignore[union-attr]

    __hash__ = None  # type: ignore[assignment]


class Principle(_Spec):
    """One principle of a value goal.

    ``priority`` is an explicit rank (1 = highest). When two principles conflict
    the one with the smaller number wins; priorities are unique within a goal so
    that every conflict has exactly one declared winner.
    """

    id: str
    statement: str
    """One sentence that states the principle."""
    explanation: str = ""
    """Why the principle exists and how to read it in hard cases."""
    priority: int = Field(ge=1)
    rules: list[str] = Field(default_factory=list)
    """Concrete rules that operationalise the principle (checkable by a judge)."""
    positive_examples: list[str] = Field(default_factory=list)
    """Behaviours that follow the principle."""
    negative_examples: list[str] = Field(default_factory=list)
    """Behaviours that violate it."""
    dimensions: list[str] = Field(default_factory=list)
    """Value dimensions the principle touches, as ``system:dimension`` (e.g. ``schwartz:benevolence``)."""

    @field_validator("id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        return _check_id(v, "principle id")

    @field_validator("statement")
    @classmethod
    def _statement_ok(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("statement must not be empty")
        return v

    @field_validator("dimensions")
    @classmethod
    def _dims_ok(cls, v: list[str]) -> list[str]:
        for ref in v:
            if not _DIM_REF.match(ref):
                raise ValueError(
                    f"dimension reference {ref!r} must look like 'system:dimension' (e.g. 'schwartz:benevolence')"
                )
        if len(set(v)) != len(v):
            raise ValueError("dimension references must be unique")
        return v


class DataRef(_Spec):
    """A dataset a goal points at (instruction tasks, preference pairs, norm examples...).

    Relative paths resolve against the folder of the goal file.
    """

    path: str
    format: Optional[str] = None
    """A format name from ``aligngoals data formats``; detected from the file when omitted."""
    role: Literal["train", "eval", "both"] = "both"
    description: str = ""
    options: dict[str, Any] = Field(default_factory=dict)
    """Reader options, e.g. ``{"inventory": "PVQ40"}`` for ValueBench."""


class Goal(_Spec):
    """An alignment goal at one of the survey's three levels.

    Value goals carry principles; instruction and preference goals usually point
    at data and suites instead (they may still list principles, e.g. a style guide).
    """

    name: str
    description: str = ""
    level: Level
    version: str = "1"
    principles: list[Principle] = Field(default_factory=list)
    value_systems: dict[str, str] = Field(default_factory=dict)
    """Extra value systems used in dimension references: ``{alias: path-or-built-in-name}``."""
    data: list[DataRef] = Field(default_factory=list)
    suites: list[str] = Field(default_factory=list)
    """Evaluation suites (built-in names or suite YAML paths) that measure this goal."""
    meta: dict[str, Any] = Field(default_factory=dict)

    _source_dir: Optional[str] = PrivateAttr(default=None)
    """Folder of the file the goal was loaded from (relative data paths resolve against it)."""

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        return _check_id(v, "goal name")

    @model_validator(mode="after")
    def _principles_ok(self) -> "Goal":
        if self.level == "values" and not self.principles:
            raise ValueError("a goal at level 'values' needs at least one principle")
        seen_ids: dict[str, int] = {}
        seen_prio: dict[int, str] = {}
        for p in self.principles:
            if p.id in seen_ids:
                raise ValueError(f"principle id {p.id!r} is used twice; ids must be unique")
            seen_ids[p.id] = p.priority
            if p.priority in seen_prio:
                raise ValueError(
                    f"principles {seen_prio[p.priority]!r} and {p.id!r} both have priority {p.priority}; "
                    "priorities must be unique so that every conflict has one declared winner"
                )
            seen_prio[p.priority] = p.id
        # Stored in priority order: the order *is* the meaning, so it should be visible in dumps.
        self.principles.sort(key=lambda p: p.priority)
        return self

    # ---- queries -----------------------------------------------------------------

    def principles_in_priority_order(self) -> list[Principle]:
        """Principles from highest priority (1) to lowest."""
        return sorted(self.principles, key=lambda p: p.priority)

    def principle(self, principle_id: str) -> Principle:
        for p in self.principles:
            if p.id == principle_id:
                return p
        raise KeyError(f"goal {self.name!r} has no principle {principle_id!r} (has: {', '.join(p.id for p in self.principles)})")

    def winner(self, a: str, b: str) -> Principle:
        """The principle that prevails when principles ``a`` and ``b`` conflict (the higher priority)."""
        pa, pb = self.principle(a), self.principle(b)
        return pa if pa.priority < pb.priority else pb

    def data_path(self, ref: DataRef) -> str:
        """Path of a data reference, resolved against the goal file's folder when relative."""
        from pathlib import Path

        p = Path(ref.path).expanduser()
        if not p.is_absolute() and self._source_dir:
            p = Path(self._source_dir) / p
        return str(p)

    def dimension_refs(self) -> list[str]:
        """Every ``system:dimension`` reference used by the principles, in first-use order."""
        out: list[str] = []
        for p in self.principles_in_priority_order():
            for d in p.dimensions:
                if d not in out:
                    out.append(d)
        return out


# ---------------------------------------------------------------------------------
# Value systems
# ---------------------------------------------------------------------------------


def _norm_key(s: str) -> str:
    """Lower-case and drop everything but letters and digits: 'Self-Direction' == 'self_direction'."""
    return re.sub(r"[^a-z0-9]", "", s.lower())


class ValueDimension(_Spec):
    """One dimension of a value theory (a basic value, a foundation, a cultural dimension...)."""

    id: str
    name: str
    definition: str
    groups: list[str] = Field(default_factory=list)
    """Higher-order groups the dimension belongs to (Schwartz: hedonism belongs to two)."""
    aliases: list[str] = Field(default_factory=list)
    """Other names used for the same dimension by instruments and datasets (e.g. 'Purity' for sanctity)."""
    optional: bool = False
    """True for dimensions that only some versions of the theory include (Moral Foundations' liberty)."""
    low_pole: Optional[str] = None
    """For bipolar dimensions (Hofstede): what a low score means."""
    high_pole: Optional[str] = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        return _check_id(v, "dimension id")


class ValueGroup(_Spec):
    """A higher-order grouping of dimensions (Schwartz's four higher-order values)."""

    id: str
    name: str
    definition: str = ""
    opposite: Optional[str] = None
    """The group this one conflicts with, if the theory declares one."""

    @field_validator("id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        return _check_id(v, "group id")


class ValueSystem(_Spec):
    """A value theory as data: dimensions, their groups and, where the theory has one, their circular order.

    Why structure and not just a list: the survey's evaluation asks which value
    wins when two conflict. Schwartz's theory predicts *which* pairs conflict
    (opposite sides of the circle) and which are compatible (neighbours); tests,
    dilemmas and reports use :meth:`relation` instead of re-deriving it.
    """

    name: str
    title: str
    description: str = ""
    reference: str = ""
    """Citation of the theory (author, year, title)."""
    dimensions: list[ValueDimension]
    groups: list[ValueGroup] = Field(default_factory=list)
    circular_order: Optional[list[str]] = None
    """Dimension ids in their order around the circle (the last is adjacent to the first)."""
    instruments: dict[str, str] = Field(default_factory=dict)
    """Questionnaires that measure this system, ``{instrument: description}`` (e.g. PVQ40)."""

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        return _check_id(v, "value system name")

    @model_validator(mode="after")
    def _structure_ok(self) -> "ValueSystem":
        if not self.dimensions:
            raise ValueError("a value system needs at least one dimension")
        ids = [d.id for d in self.dimensions]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"dimension ids must be unique; repeated: {', '.join(sorted(dup))}")
        keys: dict[str, str] = {}
        for d in self.dimensions:
            for label in (d.id, d.name, *d.aliases):
                k = _norm_key(label)
                if k in keys and keys[k] != d.id:
                    raise ValueError(f"name or alias {label!r} of dimension {d.id!r} also names dimension {keys[k]!r}")
                keys[k] = d.id
        group_ids = [g.id for g in self.groups]
        if len(set(group_ids)) != len(group_ids):
            raise ValueError("group ids must be unique")
        for g in self.groups:
            if g.opposite is not None:
                if g.opposite not in group_ids:
                    raise ValueError(f"group {g.id!r} names an unknown opposite group {g.opposite!r}")
                other = next(x for x in self.groups if x.id == g.opposite)
                if other.opposite not in (None, g.id):
                    raise ValueError(f"groups {g.id!r} and {other.id!r} disagree about which group is opposite")
        for d in self.dimensions:
            for gid in d.groups:
                if gid not in group_ids:
                    raise ValueError(f"dimension {d.id!r} names an unknown group {gid!r} (groups: {', '.join(group_ids) or 'none'})")
        if self.circular_order is not None:
            if sorted(self.circular_order) != sorted(ids):
                raise ValueError("circular_order must list every dimension id exactly once")
        return self

    # ---- lookup -----------------------------------------------------------------

    def dimension(self, key: str) -> ValueDimension:
        """Find a dimension by id, name or alias, ignoring case, spaces and punctuation."""
        k = _norm_key(key)
        for d in self.dimensions:
            if k in {_norm_key(x) for x in (d.id, d.name, *d.aliases)}:
                return d
        raise KeyError(
            f"value system {self.name!r} has no dimension {key!r} (dimensions: {', '.join(d.id for d in self.dimensions)})"
        )

    def has_dimension(self, key: str) -> bool:
        try:
            self.dimension(key)
        except KeyError:
            return False
        return True

    def dimension_ids(self, *, include_optional: bool = True) -> list[str]:
        return [d.id for d in self.dimensions if include_optional or not d.optional]

    def group(self, group_id: str) -> ValueGroup:
        for g in self.groups:
            if g.id == group_id:
                return g
        raise KeyError(f"value system {self.name!r} has no group {group_id!r}")

    def members(self, group_id: str) -> list[str]:
        """Dimension ids in a higher-order group."""
        self.group(group_id)
        return [d.id for d in self.dimensions if group_id in d.groups]

    # ---- structure --------------------------------------------------------------

    def circular_distance(self, a: str, b: str) -> int:
        """Steps between two values around the circle (0 for the same value)."""
        if self.circular_order is None:
            raise ValueError(f"value system {self.name!r} has no circular order")
        ia = self.circular_order.index(self.dimension(a).id)
        ib = self.circular_order.index(self.dimension(b).id)
        n = len(self.circular_order)
        d = abs(ia - ib)
        return min(d, n - d)

    def are_adjacent(self, a: str, b: str) -> bool:
        """Neighbours on the circle: the theory predicts they are compatible (pursued together)."""
        if self.circular_order is None:
            return False
        return self.circular_distance(a, b) == 1

    def are_opposite(self, a: str, b: str) -> bool:
        """True when the two values sit in opposing higher-order groups: pursuing one tends to conflict with the other.

        Why groups and not "exactly across the circle": the theory states conflicts
        between higher-order groups (openness to change vs conservation,
        self-enhancement vs self-transcendence). A value in two groups (hedonism)
        conflicts with the opposites of both.
        """
        da, db = self.dimension(a), self.dimension(b)
        if da.id == db.id:
            return False
        opposite_of = {g.id: g.opposite for g in self.groups if g.opposite}
        opposite_of.update({g.opposite: g.id for g in self.groups if g.opposite})
        return any(opposite_of.get(ga) in db.groups for ga in da.groups)

    def relation(self, a: str, b: str) -> Literal["same", "adjacent", "opposite", "other"]:
        """How two dimensions relate in this theory's structure."""
        if self.dimension(a).id == self.dimension(b).id:
            return "same"
        if self.are_opposite(a, b):
            return "opposite"
        if self.are_adjacent(a, b):
            return "adjacent"
        return "other"

    def opposites(self, key: str) -> list[str]:
        """Dimension ids that conflict with ``key`` (see :meth:`are_opposite`)."""
        return [d.id for d in self.dimensions if self.are_opposite(key, d.id)]
