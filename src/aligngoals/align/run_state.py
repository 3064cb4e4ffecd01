"""The state one alignment run shares with its method's trainer.

Why a module of its own: the orchestrator (:mod:`.runner`) imports the trainers
(:mod:`.trl_methods`, :mod:`.online`), and the trainers need this state; keeping
it here lets both import downward, with no cycle.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aligngoals.align.config import RESUME_FREE_FIELDS, AlignConfig
from aligngoals.align.runlog import Deadline, NullProgress, Progress, TrainLog
from aligngoals.errors import ConfigError


@dataclass
class TrainOutcome:
    model: Any
    """The trained model (a PeftModel for LoRA runs)."""
    steps: int
    train_s: float
    stopped_early: bool = False
    extra: dict = field(default_factory=dict)


@dataclass
class AlignResult:
    out: str
    method: str
    steps: int
    train_s: float
    sec_per_step: float | None
    peak_mb: float
    n_train: int
    n_heldout: int
    n_dropped: int
    before: dict | None
    after: dict | None
    in_context: dict | None
    stopped_early: bool
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def is_main_process() -> bool:
    """False on the non-zero ranks of an ``accelerate launch``/``torchrun`` job (RANK set by the launcher).

    Why: with several processes only rank 0 may check and write the run
    directory, measure, and save; the others only train their data shard.
    """
    import os

    return int(os.environ.get("RANK", "0")) == 0


class AlignRun:
    """State shared by the methods: config, run directory, data, base model, log, progress, deadline."""

    def __init__(self, cfg: AlignConfig, *, progress: Progress | None = None, command: str | None = None) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.ckpt_dir = self.out / "checkpoints"
        self.progress: Progress = progress or NullProgress()
        self.command = command
        self.log = TrainLog(self.out)
        self.deadline = Deadline(cfg.max_minutes)
        self.device = "cpu"
        self.scorer_cache: Any = None
        self.goal: Any = None
        self.goal_prompt: str | None = None

    # --- run directory ------------------------------------------------------------------
    def check_run_dir(self) -> None:
        if not is_main_process():
            return
        cfg_path = self.out / "align_config.json"
        if cfg_path.is_file():
            old = json.loads(cfg_path.read_text(encoding="utf-8"))
            old.pop("resolved", None)
            new = self.cfg.model_dump()
            if not self.cfg.resume:
                raise ConfigError(
                    f"{self.out} already holds an alignment run (align_config.json).",
                    hint="Pass --resume to continue it, or choose another --out directory.",
                )
            diff = sorted(k for k in set(old) | set(new) if k not in RESUME_FREE_FIELDS and old.get(k) != new.get(k))
            if diff:
                raise ConfigError(
                    f"--resume: {self.out} was started with different settings ({', '.join(diff)}).",
                    hint=f"Use the settings in {cfg_path} or another --out directory.",
                )
        elif self.out.exists() and any(p for p in self.out.iterdir() if not p.name.startswith(".")):
            raise ConfigError(f"--out {self.out} exists and is not empty.",
                              hint="Choose a new directory for the run (it will hold the model, logs and evaluation).")
        self.out.mkdir(parents=True, exist_ok=True)
        self.cfg.save(self.out)

    # --- shared resources --------------------------------------------------------------------
    def scorer(self) -> Any:
        """The reward model named by ``--reward-model`` (loaded once)."""
        if self.scorer_cache is None:
            if not self.cfg.reward_model:
                raise ConfigError(f"Method {self.cfg.method} needs a reward model here.",
                                  hint="Pass --reward-model DIR (the --out of 'aligngoals align reward').")
            from aligngoals.align.scoring import RewardModelScorer

            self.scorer_cache = RewardModelScorer.from_dir(self.cfg.reward_model, device=self.device,
                                                           batch_size=self.cfg.eval_batch_size)
        return self.scorer_cache

    def metadata(self) -> dict:
        from aligngoals import __version__

        return {"aligngoals_version": __version__, "method": self.cfg.method, "base_model": self.source.to_dict(),
                "goal": self.cfg.goal, "lora": self.cfg.lora, "data": str(self.cfg.data)}

    def lora_config(self, task_type: str = "CAUSAL_LM") -> Any:
        if not self.cfg.lora:
            return None
        from aligngoals.align.modeling import lora_config

        return lora_config(self.cfg.lora_r, self.cfg.lora_alpha, self.cfg.lora_dropout, task_type=task_type)

    def last_checkpoint(self) -> Path | None:
        if not self.ckpt_dir.is_dir():
            return None
        cands = []
        for p in self.ckpt_dir.iterdir():
            if p.is_dir() and p.name.startswith("checkpoint-"):
                try:
                    cands.append((int(p.name.split("-")[1]), p))
                except ValueError:
                    pass
        return max(cands)[1] if cands else None

    # --- measurement -------------------------------------------------------------------------
    def measure(self, phase: str, model: Any, tokenizer: Any, *, system_prompt: str | None = None) -> dict | None:
        """Measure ``model`` on the held-out examples; written to ``eval/<phase>/``."""
        from aligngoals.align import evaluation as E

        cfg = self.cfg
        if not self.heldout or not is_main_process():
            return None
        run_dir = self.out / "eval" / phase
        if cfg.resume and (run_dir / "report.json").is_file() and phase != "after":
            return json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
        started = time.time()
        self.progress.note(f"Measuring '{phase}' on {len(self.heldout)} held-out examples")
        kw = dict(batch_tokens=2048, max_batch=cfg.eval_batch_size, max_length=cfg.max_length if cfg.eval_fit else None)
        tasks: dict[str, list[dict]] = {}
        if cfg.spec.model_kind == "sequence_classifier":
            from aligngoals.align.scoring import RewardModelScorer

            view = RewardModelScorer(model, tokenizer, device=self.device, batch_size=cfg.eval_batch_size)
            tasks["heldout_rm_accuracy"] = E.rm_accuracy_items(view, self.heldout)
        else:
            if any(ex.pairs() for ex in self.heldout):
                tasks["heldout_preference"] = E.preference_items(model, tokenizer, self.heldout,
                                                                 system_prompt=system_prompt, **kw)
            if cfg.spec.data == "demonstrations":
                tasks["heldout_nll"] = E.nll_items(model, tokenizer, self.heldout, system_prompt=system_prompt, **kw)
            if cfg.reward_model and cfg.spec.samples:
                tasks["heldout_reward"] = E.reward_items(model, tokenizer, self.scorer(), self.heldout,
                                                         max_new_tokens=cfg.max_new_tokens, system_prompt=system_prompt,
                                                         batch_size=cfg.eval_batch_size)
        info = {"backend": "hf", "name": f"{cfg.method}:{phase}", "base": self.source.spec,
                "path": str(self.out if phase == "after" else self.source.path),
                "in_context_goal": cfg.goal if phase == "in_context" else None}
        report = E.write_eval_run(run_dir, tasks, model_info=info, command=self.command, started=started, seed=cfg.seed,
                                  settings={"phase": phase, "heldout": len(self.heldout), "data": str(cfg.data),
                                            "limit": None, "suite": None, "tasks": list(tasks)})
        self.log.event("eval", phase=phase, **E.metric_values(report))
        return report

    def measure_implicit_reward(self) -> dict | None:
        """DPO: the implicit reward accuracy from the before (reference) and after log-probabilities (``eval/implicit``)."""
        from aligngoals.align import evaluation as E

        if not self.heldout or not is_main_process():
            return None
        started = time.time()
        before = E.stored_items(self.out / "eval" / "before", "heldout_preference")
        after = E.stored_items(self.out / "eval" / "after", "heldout_preference")
        items = E.implicit_reward_items(before, after, self.cfg.effective_beta)
        if not items:
            return None
        info = {"backend": "hf", "name": "dpo:implicit", "base": self.source.spec, "path": str(self.out)}
        report = E.write_eval_run(self.out / "eval" / "implicit", {"heldout_implicit_reward": items}, model_info=info,
                                  command=self.command, started=started, seed=self.cfg.seed,
                                  settings={"phase": "implicit", "heldout": len(items), "beta": self.cfg.effective_beta,
                                            "data": str(self.cfg.data), "tasks": ["heldout_implicit_reward"]})
        self.log.event("eval", phase="implicit", **E.metric_values(report))
        return report

    # --- saving --------------------------------------------------------------------------------
    def save(self, model: Any, tokenizer: Any) -> Any:
        """Write the model (and the LoRA adapter); returns the model the after-measurement should use."""
        from aligngoals.align.modeling import save_adapter_dir, save_model_dir, unwrap_for_save

        if not is_main_process():
            return model
        full, adapter = unwrap_for_save(model, merge=self.cfg.merge)
        meta = self.metadata()
        if adapter is not None:
            save_adapter_dir(adapter, tokenizer, self.out / "adapter", metadata={**meta, "merged": False})
        if full is not None:
            save_model_dir(full, tokenizer, self.out, metadata={**meta, "merged": adapter is not None})
        # the merged copy is what hf:OUT will load, and it generates faster than the adapter
        return full if full is not None else model
