"""One alignment run from config to measured result: the part every method shares.

``run_alignment(config)``:

1. checks the run directory (a finished or different run is never overwritten;
   ``--resume`` continues one with the same settings) and writes ``align_config.json``;
2. reads the data with the data layer, holds out the last ``eval_n`` examples
   and shortens prompts that do not fit ``max_prompt_length``;
3. loads the base model (GGUF dequantized and cached as safetensors);
4. measures the held-out set **before** training (and the in-context baseline with ``--goal``);
5. trains with the method (TRL for sft/reward/dpo/rloo, :mod:`.online` for ppo/raft/rrhf),
   logging to ``train_log.jsonl`` and checkpointing to ``checkpoints/``;
6. saves the model (safetensors, tokenizer with chat template; LoRA adapter in ``adapter/``);
7. measures **after** and writes ``summary.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import AligngoalsError, ConfigError
from ..io import atomic_write_json
from .config import RESUME_FREE_FIELDS, AlignConfig
from .runlog import Deadline, NullProgress, Progress, TrainLog, peak_memory_mb, reset_peak_memory

SUMMARY_FILENAME = "summary.json"


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


def resolve_device(device: str | None) -> str:
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise AligngoalsError(f"--device {device} was asked for but CUDA is not available here.", hint="Use --device cpu.")
    return device


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
            from .scoring import RewardModelScorer

            self.scorer_cache = RewardModelScorer.from_dir(self.cfg.reward_model, device=self.device,
                                                           batch_size=self.cfg.eval_batch_size)
        return self.scorer_cache

    def metadata(self) -> dict:
        from .. import __version__

        return {"aligngoals_version": __version__, "method": self.cfg.method, "base_model": self.source.to_dict(),
                "goal": self.cfg.goal, "lora": self.cfg.lora, "data": str(self.cfg.data)}

    def lora_config(self, task_type: str = "CAUSAL_LM") -> Any:
        if not self.cfg.lora:
            return None
        from .modeling import lora_config

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
        from . import evaluation as E

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
        if cfg.method == "reward":
            from .scoring import RewardModelScorer

            view = RewardModelScorer(model, tokenizer, device=self.device, batch_size=cfg.eval_batch_size)
            tasks["heldout_rm_accuracy"] = E.rm_accuracy_items(view, self.heldout)
        else:
            if any(ex.pairs() for ex in self.heldout):
                tasks["heldout_preference"] = E.preference_items(model, tokenizer, self.heldout,
                                                                 system_prompt=system_prompt, **kw)
            if cfg.method == "sft":
                tasks["heldout_nll"] = E.nll_items(model, tokenizer, self.heldout, system_prompt=system_prompt, **kw)
            if cfg.reward_model and cfg.method in ("rloo", "ppo", "raft", "rrhf"):
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

    # --- saving --------------------------------------------------------------------------------
    def save(self, model: Any, tokenizer: Any) -> Any:
        """Write the model (and the LoRA adapter); returns the model the after-measurement should use."""
        from .modeling import save_adapter_dir, save_model_dir, unwrap_for_save

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


TRAINERS: dict[str, Callable[[AlignRun], TrainOutcome]] = {}


def _trainers() -> dict[str, Callable[..., TrainOutcome]]:
    if not TRAINERS:
        from . import online, trl_methods

        TRAINERS.update({"sft": trl_methods.train_sft, "reward": trl_methods.train_reward,
                         "dpo": trl_methods.train_dpo, "rloo": trl_methods.train_rloo,
                         "ppo": online.train_ppo, "raft": online.train_raft, "rrhf": online.train_rrhf})
    return TRAINERS


def run_alignment(cfg: AlignConfig, *, progress: Progress | None = None, command: str | None = None) -> AlignResult:
    """Run one alignment method end to end (see the module docstring); returns its measured result."""
    import torch

    from .data import fit_examples, load_examples, require_kind, split_heldout
    from .modeling import load_causal_lm, load_sequence_classifier, materialize, resolve_base

    run = AlignRun(cfg, progress=progress, command=command)
    summary_path = run.out / SUMMARY_FILENAME
    if cfg.resume and summary_path.is_file():
        done = json.loads(summary_path.read_text(encoding="utf-8"))
        if not done.get("stopped_early") and (cfg.steps is None or cfg.steps <= int(done.get("steps", 0))):
            run.progress.note(f"{run.out} is already complete; nothing to resume.")
            return AlignResult(**done)
    run.check_run_dir()
    run.device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)

    # data
    examples = load_examples(cfg.data, cfg.format, skip_bad=cfg.skip_bad)
    train, heldout = split_heldout(examples, cfg.eval_n, cfg.limit)
    require_kind(train, cfg.method, data_path=cfg.data)

    # model
    run.source = resolve_base(cfg.model)
    run.progress.note(f"Loading {cfg.model}")
    if cfg.method == "reward":
        model, tokenizer = load_sequence_classifier(materialize(run.source), device=run.device)
    else:
        model, tokenizer, _ = load_causal_lm(run.source, device=run.device)
    run.tokenizer = tokenizer
    run.train, n_drop_train = fit_examples(tokenizer, train, cfg.max_prompt_length)
    n_drop_held = 0
    if cfg.eval_fit:  # measured as training sees examples (shortened prompts)
        heldout, n_drop_held = fit_examples(tokenizer, heldout, cfg.max_prompt_length)
    run.heldout = heldout  # by default the full prompts: nothing is hidden from the measurement
    run.n_dropped = n_drop_train
    if not run.train:
        raise ConfigError(f"No training example has a prompt that fits in max_prompt_length={cfg.max_prompt_length} tokens.",
                          hint="Raise --max-prompt-length (and --max-length).")
    if cfg.goal:
        from .in_context import goal_principles_text, resolve_goal

        run.goal = resolve_goal(cfg.goal)
        run.goal_prompt = goal_principles_text(run.goal)
    run.log.event("data", n_train=len(run.train), n_heldout=len(heldout), n_dropped_too_long=n_drop_train, n_heldout_dropped_too_long=n_drop_held,
                  data=str(cfg.data))

    # before
    before = run.measure("before", model, tokenizer)
    in_ctx = None
    if run.goal_prompt and cfg.method != "reward":
        in_ctx = run.measure("in_context", model, tokenizer, system_prompt=run.goal_prompt)

    # train
    import gc

    gc.collect()
    reset_peak_memory(run.device)
    run.deadline = Deadline(cfg.max_minutes)  # --max-minutes counts training, not loading and measuring
    t0 = time.time()
    outcome = _trainers()[cfg.method](run, model, tokenizer)
    train_s = outcome.train_s or (time.time() - t0)
    peak = peak_memory_mb(run.device)

    # save + after
    run.progress.note(f"Saving the model to {run.out}")
    saved = run.save(outcome.model, tokenizer)
    after = run.measure("after", saved, tokenizer)
    result = AlignResult(
        out=str(run.out), method=cfg.method, steps=outcome.steps, train_s=round(train_s, 3),
        sec_per_step=round(train_s / outcome.steps, 4) if outcome.steps else None, peak_mb=round(peak, 1),
        n_train=len(run.train), n_heldout=len(heldout), n_dropped=n_drop_train,
        before=before, after=after, in_context=in_ctx, stopped_early=outcome.stopped_early, extra=outcome.extra,
    )
    run.log.event("done", steps=outcome.steps, train_s=result.train_s, sec_per_step=result.sec_per_step, peak_mb=result.peak_mb)
    if is_main_process():
        atomic_write_json(summary_path, result.to_dict())
    return result
