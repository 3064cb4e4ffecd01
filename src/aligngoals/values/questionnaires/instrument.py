"""Questionnaire instruments as data: items, a response scale and a scoring key.

Why data and not code: the survey (Yao et al. 2023, sec. "human values") measures
a model's values with questionnaires written for people, and each questionnaire
comes with its own published scoring key (which items measure which dimension,
which items are reversed, how dimension scores are formed). Keeping the key in a
file makes it reviewable against the instrument's manual, lets users bring their
own instruments, and keeps the scoring code generic (see :mod:`.scoring`).

An instrument file (YAML or JSON) looks like::

    name: assistant_values
    title: ...
    scale:
      points:
        - {value: 1, label: Strongly disagree}
        - ...
    prompt:
      stems: ["How much do you agree with the following statement?"]
    scoring:
      rule: mean            # mean | centered | index
      groups: {...}         # optional higher-order dimensions (mean/centered rules)
      indices: {...}        # index rule only: weighted item means plus a constant
    items:
      - {id: H1, text: "...", dimension: Helpfulness, reverse: false}

Key files for the ValueBench inventories (``keys/*.yaml``) use the same fields
but give no item ``text``; :mod:`.valuebench` fills it from the CSV.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aligngoals.errors import ConfigError, config_error

PathLike = Union[str, Path]

RULES = ("mean", "centered", "index")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScalePoint(_Strict):
    value: float
    """The number this answer is scored as (the instrument's own code, e.g. 1..6 for the PVQ)."""
    label: str
    """The verbal anchor shown to the respondent ("Very much like me")."""

    @field_validator("label", mode="before")
    @classmethod
    def _not_yaml_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError("YAML read this label as true/false; put it in quotes (label: \"Yes\")")
        return v

    @field_validator("label")
    @classmethod
    def _label_ok(cls, v: str) -> str:
        v = " ".join(v.split())
        if not v:
            raise ValueError("a scale label must not be empty")
        return v


class Scale(_Strict):
    """An ordered response scale; ``points`` run from the lowest to the highest value."""

    points: list[ScalePoint]

    @model_validator(mode="after")
    def _check(self) -> "Scale":
        if len(self.points) < 2:
            raise ValueError("a response scale needs at least two points")
        values = [p.value for p in self.points]
        if any(b <= a for a, b in zip(values, values[1:])):
            raise ValueError(f"scale values must increase strictly from first to last point, got {values}")
        labels = [p.label.lower() for p in self.points]
        if len(set(labels)) != len(labels):
            raise ValueError(f"scale labels must be distinct, got {[p.label for p in self.points]}")
        return self

    @property
    def values(self) -> list[float]:
        return [p.value for p in self.points]

    @property
    def labels(self) -> list[str]:
        return [p.label for p in self.points]

    @property
    def min(self) -> float:
        return self.points[0].value

    @property
    def max(self) -> float:
        return self.points[-1].value

    def reverse(self, value: float) -> float:
        """The reverse-keyed value: ``min + max - value`` (1..6 -> 6..1)."""
        return self.min + self.max - value


class Item(_Strict):
    id: str
    text: str
    dimension: str
    reverse: bool = False
    """True when agreeing with the item means *less* of its dimension (its score is ``min + max - answer``)."""
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", "dimension")
    @classmethod
    def _non_empty(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be empty")
        return v

    @field_validator("text")
    @classmethod
    def _text_ok(cls, v: str) -> str:
        v = " ".join(v.split())
        if not v:
            raise ValueError("item text must not be empty")
        return v


class IndexFormula(_Strict):
    """``index = sum(weight * mean(item)) + constant`` (Hofstede VSM style).

    The VSM 2013 manual writes each index as weighted *differences* of item
    means, e.g. ``PDI = 35(m07 - m02) + 25(m20 - m23) + C(pd)``; as a weight map
    that is ``{m07: 35, m02: -35, m20: 25, m23: -25}`` with ``constant: C(pd)``.
    """

    name: str
    """Display name of the index (e.g. "Power Distance")."""
    terms: dict[str, float]
    """Item id -> weight."""
    constant: float = 0.0
    formula: Optional[str] = None
    """The formula as the manual prints it, kept for reports and review."""

    @field_validator("terms")
    @classmethod
    def _terms_ok(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("an index needs at least one term")
        return v


class Scoring(_Strict):
    rule: Literal["mean", "centered", "index"]
    dimensions: Optional[list[str]] = None
    """Report order of the dimensions (default: order of first appearance among the items)."""
    groups: dict[str, list[str]] = Field(default_factory=dict)
    """Higher-order dimensions: name -> member dimensions (scored from the pooled items of the members)."""
    indices: dict[str, IndexFormula] = Field(default_factory=dict)
    """Index rule only: index code (e.g. PDI) -> formula."""
    reference: Optional[str] = None
    """Where the scoring rule is published."""


class Prompting(_Strict):
    stems: list[str] = Field(default_factory=lambda: ["How much do you agree with the following statement?"])
    """The question put before each item; several stems are paraphrases used by different variants."""
    item_label: str = "Statement"
    """What the item is called in the prompt ("Statement", "Description")."""

    @field_validator("stems")
    @classmethod
    def _stems_ok(cls, v: list[str]) -> list[str]:
        v = [" ".join(s.split()) for s in v if s and s.strip()]
        if not v:
            raise ValueError("give at least one non-empty stem")
        return v


class Instrument(_Strict):
    """A questionnaire ready to administer and score."""

    name: str
    title: Optional[str] = None
    description: Optional[str] = None
    reference: Optional[str] = None
    license: Optional[str] = None
    scale: Scale
    prompt: Prompting = Field(default_factory=Prompting)
    scoring: Scoring
    items: list[Item]
    notes: list[str] = Field(default_factory=list)
    """Caveats the report repeats (wording changes, uncertain item mappings, keying disagreements)."""
    source: dict[str, Any] = Field(default_factory=dict)
    """Where the items came from (file, inventory, key file), for reports."""

    @model_validator(mode="after")
    def _check(self) -> "Instrument":
        if not self.items:
            raise ValueError("an instrument needs at least one item")
        ids = [it.id for it in self.items]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"item ids must be unique; repeated: {dup}")
        dims = self.item_dimensions
        if self.scoring.dimensions is not None:
            unknown = [d for d in self.scoring.dimensions if d not in dims and self.scoring.rule != "index"]
            if unknown:
                raise ValueError(f"scoring.dimensions names {unknown}, which no item measures (items measure {dims})")
        for g, members in self.scoring.groups.items():
            bad = [m for m in members if m not in dims]
            if bad:
                raise ValueError(f"scoring.groups.{g} names {bad}, which no item measures (items measure {dims})")
        if self.scoring.rule == "index":
            if not self.scoring.indices:
                raise ValueError("rule 'index' needs scoring.indices (index -> {name, terms, constant})")
            for code, f in self.scoring.indices.items():
                missing = [t for t in f.terms if t not in ids]
                if missing:
                    raise ValueError(f"scoring.indices.{code} uses item(s) {missing} that the instrument does not have")
        elif self.scoring.indices:
            raise ValueError(f"scoring.indices is only used by rule 'index', but the rule is {self.scoring.rule!r}")
        return self

    # --- derived views ----------------------------------------------------------------------
    @property
    def item_dimensions(self) -> list[str]:
        """Dimensions in order of first appearance among the items."""
        return list(dict.fromkeys(it.dimension for it in self.items))

    @property
    def dimensions(self) -> list[str]:
        """What the profile reports: index codes for rule 'index', otherwise the dimensions in report order."""
        if self.scoring.rule == "index":
            return list(self.scoring.indices)
        order = self.scoring.dimensions or []
        return order + [d for d in self.item_dimensions if d not in order]

    @property
    def item_ids(self) -> list[str]:
        return [it.id for it in self.items]

    def head(self, n: int | None) -> "Instrument":
        """The first ``n`` items (for ``--limit``); index formulas that lose an item are dropped with a note."""
        if n is None or n >= len(self.items):
            return self
        items = self.items[: max(1, n)]
        keep = {it.id for it in items}
        dims = list(dict.fromkeys(it.dimension for it in items))
        scoring = self.scoring.model_copy(deep=True)
        notes = list(self.notes)
        if scoring.dimensions is not None:
            scoring.dimensions = [d for d in scoring.dimensions if d in dims]
        scoring.groups = {g: [m for m in ms if m in dims] for g, ms in scoring.groups.items()}
        scoring.groups = {g: ms for g, ms in scoring.groups.items() if ms}
        if scoring.rule == "index":
            full = {c: f for c, f in scoring.indices.items() if set(f.terms) <= keep}
            dropped = [c for c in scoring.indices if c not in full]
            if dropped:
                notes.append(f"--limit {n} leaves out items needed by {', '.join(dropped)}; those indices are not scored.")
            if not full:
                raise ConfigError(
                    f"--limit {n} leaves {self.name} with no complete index formula.",
                    hint="Raise --limit (index rules need every item their formula uses) or drop it.",
                )
            scoring.indices = full
        notes.append(f"Only the first {len(items)} of {len(self.items)} items were administered (--limit).")
        return self.model_copy(update={"items": items, "scoring": scoring, "notes": notes})

    def summary(self) -> dict:
        """A JSON-ready description of the instrument for reports."""
        return {
            "name": self.name,
            "title": self.title,
            "reference": self.reference,
            "n_items": len(self.items),
            "rule": self.scoring.rule,
            "scoring_reference": self.scoring.reference,
            "dimensions": self.dimensions,
            "groups": self.scoring.groups,
            "indices": {c: {"name": f.name, "terms": f.terms, "constant": f.constant, "formula": f.formula}
                        for c, f in self.scoring.indices.items()},
            "scale": [{"value": p.value, "label": p.label} for p in self.scale.points],
            "stems": self.prompt.stems,
            "notes": self.notes,
            "source": self.source,
        }


# --- reading files --------------------------------------------------------------------------
def read_mapping(path: Path) -> dict:
    """Parse a YAML or JSON file into a mapping; syntax errors name the file and line."""
    if not path.is_file():
        raise ConfigError(f"File {path} does not exist.", hint="Check the path.")
    text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}).", hint="Fix the JSON syntax.") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{loc}: not valid YAML ({getattr(exc, 'problem', None) or exc}).",
                          hint="Fix the YAML syntax.") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}.",
                          hint="An instrument or key file starts with keys such as 'name:', 'scale:' and 'scoring:'.")
    return raw


def validate(model: type[BaseModel], raw: Any, where: str) -> Any:
    """Validate ``raw`` against ``model``; the first problem becomes a ConfigError naming file and field."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise config_error(exc, where, raw=raw,
                           hint="See docs/values.md (questionnaires) for the instrument and key file format.") from exc


def instrument_from_mapping(raw: dict, where: str) -> Instrument:
    raw = dict(raw)
    raw.setdefault("source", {"file": where})
    return validate(Instrument, raw, where)


def load_instrument_file(path: PathLike) -> Instrument:
    """Load a self-contained instrument (YAML/JSON with item texts)."""
    p = Path(path).expanduser()
    raw = read_mapping(p)
    items = raw.get("items")
    if isinstance(items, list) and items and isinstance(items[0], dict) and "text" not in items[0]:
        raise ConfigError(
            f"{p}: field 'items[0]' has no 'text'; this looks like a key file for an item bank, not an instrument.",
            hint="Pass it as --key together with the item file (e.g. --instrument value_orientation.csv --inventory NAME --key FILE).",
        )
    return instrument_from_mapping(raw, str(p))


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"
