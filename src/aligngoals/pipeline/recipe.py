"""Recipes: the survey's loop (goal -> data -> training -> measurement) as one validated file.

Why a recipe and not a shell script of commands: the recipe is the unit that is
resumed (each stage's settings are fingerprinted, so a changed setting re-runs
that stage and the ones after it), and the unit that lineage records (which
goal and data and settings made which model).

A recipe names a goal, a base model, an optional teacher and a list of stages::

    name: self-align-hhh
    goal: self_align_16
    model: smollm2
    stages:
      - {name: synthesize, kind: synthesize, method: self_align, settings: {...}}
      - {name: engrave, kind: align, method: sft, data: "@synthesize:sft", settings: {...}}
      - {name: evaluate, kind: evaluate, aligned: "@engrave", prompts: "@synthesize:heldout"}
      - {name: compare, kind: compare}

References: ``@STAGE`` is the model an align stage wrote; ``@STAGE:sft``,
``@STAGE:pairs`` and ``@STAGE:heldout`` are files a synthesize stage wrote.
``{data_dir}`` in a path is replaced by the ``data_dir`` setting (default
``../shared/data``); other relative paths are read from the recipe's folder.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aligngoals.errors import ConfigError

StageKind = Literal["synthesize", "align", "evaluate", "compare"]

SYNTH_METHODS = ("self_align", "self_instruct", "constitutional", "ai_feedback", "verbose_cloning")
ALIGN_METHODS = ("sft", "reward", "dpo", "rloo", "ppo", "raft", "rrhf")
MEASURES = ("context_distillation", "refusal", "overrefusal", "rubric")
SYNTH_OUTPUTS = ("sft", "pairs", "heldout")


class Stage(BaseModel):
    """One stage; ``settings`` go to the method (align: any ``aligngoals align`` option)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
    kind: StageKind
    method: Optional[str] = None
    model: Optional[str] = None
    """synthesize: the policy that answers (default: the recipe's model); align: the starting
    model (default: the recipe's model; ``@STAGE`` continues from an earlier align stage)."""
    data: Optional[str] = None
    """align: training data (``@STAGE:sft``, ``@STAGE:pairs`` or a file)."""
    format: Optional[str] = None
    prompts: Optional[str] = None
    """synthesize: prompt or seed file (self_align without it proposes its own by red-teaming);
    evaluate: held-out prompts (``@STAGE:heldout``)."""
    aligned: Optional[str] = None
    """evaluate: the aligned model to measure (``@STAGE``)."""
    measures: list[str] = Field(default_factory=lambda: list(MEASURES))
    settings: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> "Stage":
        allowed = {"synthesize": SYNTH_METHODS, "align": ALIGN_METHODS}.get(self.kind)
        if allowed is not None and self.method not in allowed:
            raise ValueError(f"stage {self.name!r}: method must be one of {', '.join(allowed)} (got {self.method!r})")
        if self.kind == "align" and not self.data:
            raise ValueError(f"stage {self.name!r}: an align stage needs data (a file or @STAGE:sft / @STAGE:pairs)")
        bad = [m for m in self.measures if m not in MEASURES]
        if bad:
            raise ValueError(f"stage {self.name!r}: unknown measures {bad} (known: {', '.join(MEASURES)})")
        return self


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    goal: str
    model: str = "smollm2"
    """The base model (generation through its own backend; training and measurement through transformers)."""
    teacher: Optional[str] = None
    """A separate model for the synthesis and feedback stages (any backend); default: ``model``."""
    judge: Optional[str] = None
    """A model that grades replies against the goal's principles (the ``rubric`` measure); none: not measured."""
    data_dir: str = "../shared/data"
    seed: int = 0
    stages: list[Stage]

    @model_validator(mode="after")
    def _refs(self) -> "Recipe":
        seen: dict[str, Stage] = {}
        for st in self.stages:
            if st.name in seen:
                raise ValueError(f"two stages are named {st.name!r}")
            for field in ("model", "data", "prompts", "aligned"):
                ref = getattr(st, field)
                if not (isinstance(ref, str) and ref.startswith("@")):
                    continue
                target, _, output = ref[1:].partition(":")
                if target not in seen:
                    raise ValueError(f"stage {st.name!r}: {field} {ref!r} names no earlier stage")
                kind = seen[target].kind
                if output and (kind != "synthesize" or output not in SYNTH_OUTPUTS):
                    raise ValueError(f"stage {st.name!r}: {field} {ref!r}: ':{output}' needs a synthesize stage "
                                     f"and one of {', '.join(SYNTH_OUTPUTS)}")
                if not output and kind != "align":
                    raise ValueError(f"stage {st.name!r}: {field} {ref!r} must name an align stage (a model)")
            seen[st.name] = st
        return self

    def stage(self, name: str) -> Stage:
        for st in self.stages:
            if st.name == name:
                return st
        raise KeyError(name)


def builtin_recipes() -> dict[str, Path]:
    folder = resources.files("aligngoals.pipeline") / "recipes"
    return {p.name[:-5]: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml")}


def load_recipe(spec: str | Path, **overrides: Any) -> tuple[Recipe, Path]:
    """A recipe from a built-in name or a YAML file; ``overrides`` (teacher, data_dir, model) replace top-level fields.

    Returns the recipe and the folder its relative paths are read from.
    """
    path = Path(spec)
    builtins = builtin_recipes()
    if not path.is_file():
        if str(spec) in builtins:
            path = builtins[str(spec)]
        else:
            raise ConfigError(f"Recipe {spec!r} is neither a file nor a built-in recipe.",
                              hint=f"Built-in recipes: {', '.join(sorted(builtins))}.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)}).") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe is a mapping with name, goal and stages.")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Recipe(**raw), path.parent
    except ValidationError as exc:
        parts = [f"{'.'.join(str(x) for x in e['loc']) or 'recipe'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"{path}: invalid recipe: " + "; ".join(parts) + ".",
                          hint="See docs/pipeline.md for the recipe fields.") from exc
