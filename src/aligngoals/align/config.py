"""The configuration of one alignment run (``align_config.json``).

Why one pydantic model for every method: the CLI, the Python API, resume and the
benchmark all describe a run the same way; the config saved in the run
directory is the exact input of the run (a resumed run refuses a different
one), and validation errors name the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aligngoals.align.methods import METHODS as METHOD_REGISTRY
from aligngoals.align.methods import MethodSpec, get_method, method_names
from aligngoals.errors import ConfigError
from aligngoals.io import atomic_write_json

#: The built-in method names at import time; plug-ins add more (see :mod:`.methods`).
METHODS: tuple[str, ...] = tuple(method_names())


CONFIG_FILENAME = "align_config.json"


class AlignConfig(BaseModel):
    """Everything that decides what an alignment run does."""

    model_config = ConfigDict(extra="forbid")

    method: str
    """An alignment method registered in :mod:`aligngoals.align.methods` (built-in or from a plug-in)."""
    model: str = "smollm2"
    data: str
    format: Optional[str] = None
    goal: Optional[str] = None
    """A goal name or YAML path. Recorded with the model; for raft and rrhf the candidates are
    sampled with the goal's principles in the system prompt and trained without them
    (principle engraving); with held-out evaluation the in-context baseline is measured too."""
    out: str

    # data
    limit: Optional[int] = Field(None, ge=1)
    """Use at most this many training records (after the held-out split)."""
    eval_n: int = Field(64, ge=0)
    """The last ``eval_n`` records of the file are held out for the before/after measurement."""
    skip_bad: bool = False

    # model / LoRA
    lora: bool = False
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    merge: bool = True
    """LoRA only: also write the merged full model (so ``hf:OUT`` loads it); the adapter is kept in OUT/adapter."""
    device: Optional[str] = None

    # optimisation
    steps: Optional[int] = Field(None, ge=1)
    """Optimizer steps; default: one epoch over the training records."""
    epochs: float = Field(1.0, gt=0)
    lr: Optional[float] = Field(None, gt=0)
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(1, ge=1)
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    seed: int = 0
    max_minutes: Optional[float] = Field(None, gt=0)
    """Stop training (and save) after this much wall-clock time."""

    # sequence lengths
    max_length: int = Field(512, ge=16)
    max_prompt_length: int = Field(384, ge=8)
    max_new_tokens: int = Field(64, ge=1)

    # method-specific
    beta: Optional[float] = Field(None, ge=0)
    k: Optional[int] = Field(None, ge=0)
    """Answers sampled per prompt (rloo, ppo, raft, rrhf)."""
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    reward_model: Optional[str] = None
    """Directory of a reward model ('aligngoals align reward' output): needed by rloo and ppo,
    by raft, and by rrhf when it samples (k > 0 sampled answers)."""
    ppo_epochs: int = Field(2, ge=1)
    clip_range: float = Field(0.2, gt=0)
    vf_coef: float = Field(0.1, ge=0)
    gae_lambda: float = Field(0.95, ge=0, le=1)
    rrhf_sft_weight: float = Field(1.0, ge=0)
    rrhf_use_data_responses: bool = True
    raft_inner_steps: int = Field(1, ge=1)
    """raft: gradient steps on each batch of selected best answers."""

    # bookkeeping
    logging_steps: int = Field(1, ge=1)
    save_every: int = Field(50, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    resume: bool = False
    eval_batch_size: int = Field(8, ge=1)
    eval_fit: bool = False
    """Measure held-out examples as training sees them: prompts shortened to max_prompt_length
    (examples whose last turn does not fit are left out) and answers cut at max_length.
    Default: full prompts and answers (slower on long multi-turn data)."""

    @field_validator("method")
    @classmethod
    def _known_method(cls, v: str) -> str:
        if v not in METHOD_REGISTRY:
            raise ValueError(f"unknown alignment method {v!r}; known: {', '.join(method_names())}")
        return v

    @property
    def spec(self) -> MethodSpec:
        return get_method(self.method)

    @model_validator(mode="after")
    def _check(self) -> "AlignConfig":
        if self.max_prompt_length >= self.max_length:
            raise ValueError(f"max_prompt_length ({self.max_prompt_length}) must be below max_length ({self.max_length})")
        if self.spec.needs_reward_model and not self.reward_model:
            raise ValueError(f"method {self.method} scores sampled answers and needs reward_model "
                             "(train one with 'aligngoals align reward')")
        if self.method == "rrhf" and (self.k or 0) > 0 and not self.reward_model:
            raise ValueError("rrhf with sampled answers (k > 0) needs reward_model to score them; "
                             "without one, leave k unset to rank the data's own answers")
        if self.method == "rrhf" and not self.reward_model and not self.rrhf_use_data_responses:
            raise ValueError("rrhf needs candidates: the data's answers (rrhf_use_data_responses) or a reward_model")
        if self.spec.min_k and self.effective_k < self.spec.min_k:
            if self.method == "rloo":
                raise ValueError("rloo needs k >= 2 answers per prompt (the leave-one-out baseline)")
            raise ValueError(f"{self.method} samples answers: k must be at least {self.spec.min_k}")
        return self

    # --- derived values ----------------------------------------------------------------------
    @property
    def effective_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        full, lora = self.spec.lr
        return lora if self.lora else full

    @property
    def effective_beta(self) -> float:
        return self.beta if self.beta is not None else (self.spec.beta or 0.0)

    @property
    def effective_k(self) -> int:
        if self.k is not None:
            return self.k
        k = self.spec.k if self.spec.k is not None else 1
        if self.method == "rrhf" and not self.reward_model:
            return 0  # offline RRHF ranks the data's own responses
        return k

    def resolved(self) -> dict:
        """The config plus the defaults it resolved to (what is written to align_config.json)."""
        d = self.model_dump()
        d["resolved"] = {"lr": self.effective_lr, "beta": self.effective_beta, "k": self.effective_k}
        return d

    # --- files -----------------------------------------------------------------------------
    def save(self, run_dir: str | Path) -> Path:
        return atomic_write_json(Path(run_dir) / CONFIG_FILENAME, self.resolved())

    @staticmethod
    def load(run_dir: str | Path) -> "AlignConfig":
        path = Path(run_dir) / CONFIG_FILENAME
        if not path.is_file():
            raise ConfigError(f"{path} does not exist.", hint="Pass the --out directory of an 'aligngoals align' run.")
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw.pop("resolved", None)
        return make_config(**raw)


#: Fields that may differ between a run and its resumption (they do not change the result).
RESUME_FREE_FIELDS = {"resume", "max_minutes", "steps", "eval_batch_size", "save_every", "logging_steps", "device",
                      "keep_checkpoints"}


def make_config(**kwargs) -> AlignConfig:
    """Build an :class:`AlignConfig`, turning validation errors into a :class:`ConfigError` naming the field."""
    try:
        return AlignConfig(**kwargs)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "config"
            parts.append(f"{loc}: {err['msg']}")
        # model-level checks have no location: name every field their message mentions
        named = [str(e["loc"][0]) for e in exc.errors() if e["loc"]]
        text = " ".join(parts)
        named += [f for f in AlignConfig.model_fields if f not in named and f in text]
        options = ", ".join("--" + f.replace("_", "-") for f in dict.fromkeys(named)) or "--help"
        raise ConfigError("Invalid alignment settings: " + "; ".join(parts) + ".",
                          hint=f"Fix the option(s) named above (CLI: {options}).") from exc
