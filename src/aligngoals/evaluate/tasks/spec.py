"""Task specs: a task is data + a prompt template + a request type + metrics, declared in YAML.

Why YAML: users add tasks without writing Python, and a spec is a complete,
reviewable record of what was measured. What YAML cannot say (e.g. which BBQ
answer is the biased one) is written as a Python task class registered by name
(:mod:`aligngoals.evaluate.tasks.registry`) that a YAML file may point at with
``python: NAME``.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aligngoals.errors import ConfigError, config_error
from aligngoals.models.base import GenerationSettings

LEVELS = ("instructions", "preferences", "values")

REQUEST_TYPES = ("multiple_choice", "mc_generate", "generate", "pair")
"""``multiple_choice``: score every choice by log-likelihood (shared prefix computed once);
``mc_generate``: generate, then read the chosen letter; ``generate``: free generation
scored against references; ``pair``: log-likelihood of a chosen and a rejected continuation."""

GENERALIZATION_LEVELS = ("held_out_categories", "new_data_known_types", "held_out_samples")
"""The survey's three levels of instruction generalization (sec. 3.1.2): unseen task
categories, new data of task types seen in training, held-out samples of a seen dataset."""


class DatasetsSource(BaseModel):
    """Arguments of ``datasets.load_dataset`` (local files or a hub name; offline here)."""

    model_config = ConfigDict(extra="forbid")
    path: str
    """A builder (``json``, ``csv``, ``parquet``) or a hub dataset name."""
    name: Optional[str] = None
    split: str = "train"
    data_files: Any = None
    """File path(s); relative ones resolve like ``data.path``."""
    revision: Optional[str] = None


class DataSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: Optional[str] = None
    """File path (globs allowed: ``bbq/*.jsonl``); relative paths resolve against the spec's
    folder, then ``--data-dir``, then the current folder."""
    format: str = "mc_jsonl"
    """``mc_jsonl`` (question, choices, answer), ``jsonl`` (any objects), or a reader of
    :mod:`aligngoals.data` (``hh_rlhf``, ``truthfulqa_mc``, ``bbq``, ...)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Options passed to the reader."""
    datasets: Optional[DatasetsSource] = None
    """Read through Hugging Face ``datasets`` instead of a file reader."""
    fields: dict[str, str] = Field(default_factory=dict)
    """Rename fields for the templates: ``{new_name: dotted.source.path}``."""
    where: dict[str, Any] = Field(default_factory=dict)
    """Keep only items whose (dotted) field equals the value (a list means any of them)."""

    @model_validator(mode="after")
    def _one_source(self) -> "DataSource":
        if (self.path is None) == (self.datasets is None):
            raise ValueError("give exactly one of 'path' or 'datasets'")
        return self


class FewShot(BaseModel):
    """Few-shot exemplars prepended to every prompt, drawn with a fixed seed."""

    model_config = ConfigDict(extra="forbid")
    n: int = Field(0, ge=0)
    source: Optional[DataSource] = None
    """Where exemplars come from; None draws them from the task's own items, which are
    then removed from the evaluated items (no item is its own exemplar)."""
    seed: Optional[int] = None
    """Seed of the draw; None uses the run's ``--seed``."""
    per_item: bool = False
    """False: one exemplar set for the whole task (a shared prefix, cheap to score);
    True: a fresh draw per item (excluding the item itself)."""
    separator: str = "\n\n"
    """Between exemplars, and between the last exemplar and the prompt."""


class Extraction(BaseModel):
    """How to read an answer out of generated text."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["none", "regex", "first_letter", "first_number", "first_line"] = "none"
    pattern: Optional[str] = None
    """For ``regex``: the first match wins; its group 1 if the pattern has groups."""
    ignore_case: bool = True

    @model_validator(mode="after")
    def _pattern(self) -> "Extraction":
        if self.type == "regex" and not self.pattern:
            raise ValueError("extraction type 'regex' needs a 'pattern'")
        return self


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    level: Literal["instructions", "preferences", "values"]
    description: str = ""
    type: Literal["multiple_choice", "mc_generate", "generate", "pair"] = "multiple_choice"
    python: Optional[str] = None
    """Name of a registered Python task class that implements this task's hooks."""
    data: DataSource
    limit: Optional[int] = Field(None, ge=1)
    """Default number of items (a suite or ``--limit`` overrides it)."""
    sample: Literal["first", "random"] = "first"
    """With a limit: the first N items, or N drawn with the run's seed (for files sorted by group)."""

    prompt: str = "Question: {{ question }}\nAnswer:"
    """jinja2 template of the context (the item's fields, ``meta``, ``labels`` = A, B, C ...)."""
    system: Optional[str] = None
    """System message when ``chat`` is on."""
    chat: bool = False
    """Render the prompt as a user turn with the model's chat template."""
    fewshot: FewShot = Field(default_factory=FewShot)

    # multiple choice (multiple_choice, mc_generate)
    choices: str = "choices"
    """Dotted field holding the list of choices."""
    answer: str = "answer"
    """Dotted field holding the correct choice index."""
    answers: Optional[str] = "answers"
    """Dotted field holding every correct index (MC2); falls back to ``answer``."""
    choice: str = " {{ choice }}"
    """jinja2 template of each scored continuation; sees ``choice`` and ``index``."""

    # generation (generate, mc_generate)
    generation: GenerationSettings = Field(default_factory=lambda: GenerationSettings(max_tokens=128))
    """How the task generates (``seed`` is replaced by the run's seed); 128 new tokens by default."""
    extract: Extraction = Field(default_factory=Extraction)
    target: Optional[str] = None
    """jinja2 template of the reference answer (also the answer of few-shot exemplars)."""
    references: Optional[str] = None
    """Dotted field holding a list of acceptable references (instead of ``target``)."""
    true_references: Optional[str] = None
    false_references: Optional[str] = None
    """Dotted fields of true and false references (TruthfulQA generation)."""

    # pair
    chosen: str = " {{ chosen }}"
    rejected: str = " {{ rejected }}"

    metrics: list[str] = Field(default_factory=lambda: ["acc", "acc_norm"])
    breakdown: list[str] = Field(default_factory=list)
    """Dotted fields whose values split every metric into groups (e.g. ``meta.category``)."""
    generalization: Optional[Literal["held_out_categories", "new_data_known_types", "held_out_samples"]] = None
    """Which of the survey's generalization levels this task measures (instructions)."""
    generalization_field: Optional[str] = None
    """Dotted field that says it per item (overrides ``generalization``)."""
    id_field: str = "id"
    source_file: Optional[str] = None

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, metrics: list[str]) -> list[str]:
        from aligngoals.evaluate.metrics import METRIC_DOCS

        for m in metrics:
            if m not in METRIC_DOCS:
                raise ValueError(f"unknown metric {m!r}; known: {', '.join(METRIC_DOCS)}")
        return metrics

    # --- paths ------------------------------------------------------------------------
    def _candidates(self, rel: str, data_dir: str | Path | None) -> list[Path]:
        p = Path(rel).expanduser()
        if p.is_absolute():
            return [p]
        out = []
        if self.source_file:
            out.append(Path(self.source_file).parent / p)
        if data_dir is not None:
            out.append(Path(data_dir) / p)
        out.append(Path.cwd() / p)
        return out

    def resolve_path(self, rel: str, data_dir: str | Path | None = None) -> Path:
        """The first existing candidate for ``rel`` (a glob matches when it matches a file)."""
        cands = self._candidates(rel, data_dir)
        for c in cands:
            if glob.has_magic(str(c)):
                if glob.glob(str(c)):
                    return c
            elif c.exists():
                return c
        return cands[0]

    def missing_reason(self, rel: str, data_dir: str | Path | None = None) -> str:
        cands = self._candidates(rel, data_dir)
        where = ", ".join(str(c) for c in cands)
        tip = "" if data_dir is not None else "; pass --data-dir FOLDER"
        return f"data file {rel!r} not found (looked in: {where}){tip}"

    def resolve_data_path(self, data_dir: str | Path | None = None) -> Path:
        if self.data.path is None:
            raise ConfigError(f"Task {self.name} reads from 'datasets', not from a file path.")
        return self.resolve_path(self.data.path, data_dir)


def load_task_spec(path: str | Path, python_specs: Optional[Mapping[str, "TaskSpec"]] = None) -> TaskSpec:
    """Read and validate one task YAML; errors name the file and the field.

    ``python_specs`` (the registry's complete Python tasks, passed in by the caller so that this
    module need not import the registry): a YAML naming one of them starts from its spec.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"Task file {path} does not exist.", hint="Check the path or run 'aligngoals tasks list'.") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"Task file {path}{loc} is not valid YAML: {getattr(exc, 'problem', None) or exc}.",
                          hint="Fix the YAML syntax.") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"Task file {path} must hold a mapping (name, level, data, ...).", hint="See docs/tasks.md.")
    raw.setdefault("source_file", str(path))
    return validate_task_spec(_with_python_defaults(raw, python_specs or {}), where=f"Task file {path}")


def _with_python_defaults(raw: dict, python_specs: Mapping[str, "TaskSpec"]) -> dict:
    """A YAML that names a complete Python task (``python: rm_pairs``) starts from that task's own spec.

    So a user who points ``rm_pairs`` at other data writes only what differs (name, data); fields the
    YAML sets win, whole (a ``data:`` mapping replaces the default one).
    """
    ref = raw.get("python")
    if not isinstance(ref, str):
        return raw
    default = python_specs.get(ref)
    if default is None:
        return raw
    base = default.model_dump(include=default.model_fields_set - {"name", "description", "source_file"})
    return {**base, **raw}


def validate_task_spec(raw: dict, *, where: str) -> TaskSpec:
    try:
        return TaskSpec.model_validate(raw)
    except ValidationError as exc:
        raise config_error(exc, where, hint="See docs/tasks.md for the fields a task declares.") from exc
