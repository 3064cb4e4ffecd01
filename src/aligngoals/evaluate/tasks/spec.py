"""Task specs: a task is data + a prompt template + a request type + metrics, declared in YAML.

Why YAML: users add tasks without writing Python, and a spec is a complete,
reviewable record of what was measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...errors import ConfigError

LEVELS = ("instructions", "preferences", "values")


class DataSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    """File path; relative paths resolve against the spec's folder, then ``--data-dir``."""
    format: str = "mc_jsonl"
    options: dict[str, Any] = Field(default_factory=dict)


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    level: Literal["instructions", "preferences", "values"]
    description: str = ""
    type: Literal["multiple_choice"] = "multiple_choice"
    data: DataSource
    prompt: str = "Question: {{ question }}\nAnswer:"
    """jinja2 template of the context; sees the item's fields (question, choices, context, meta)."""
    choice: str = " {{ choice }}"
    """jinja2 template of each scored continuation; sees ``choice`` and ``index``."""
    metrics: list[str] = Field(default_factory=lambda: ["acc", "acc_norm"])
    source_file: Optional[str] = None

    def resolve_data_path(self, data_dir: str | Path | None = None) -> Path:
        p = Path(self.data.path).expanduser()
        if p.is_absolute():
            return p
        candidates = []
        if self.source_file:
            candidates.append(Path(self.source_file).parent / p)
        if data_dir is not None:
            candidates.append(Path(data_dir) / p)
        candidates.append(Path.cwd() / p)
        for c in candidates:
            if c.exists():
                return c
        return candidates[0]


def load_task_spec(path: str | Path) -> TaskSpec:
    """Read and validate one task YAML; errors name the file and the field."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"Task file {path} does not exist.", hint="Check the path or run 'aligngoals tasks list'.") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"Task file {path} is not valid YAML: {exc}.", hint="Fix the YAML syntax.") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"Task file {path} must hold a mapping (name, level, data, ...).", hint="See docs/tasks.md.")
    raw.setdefault("source_file", str(path))
    try:
        return TaskSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise ConfigError(
            f"Task file {path}: field '{loc}': {first['msg']}.",
            hint="See docs/tasks.md for the fields a task declares.",
        ) from exc
