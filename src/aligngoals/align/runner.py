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

from aligngoals.align.config import AlignConfig
from aligngoals.align.run_state import AlignResult, AlignRun, is_main_process
from aligngoals.align.runlog import Deadline, Progress, peak_memory_mb, reset_peak_memory
from aligngoals.errors import ConfigError
from aligngoals.io import atomic_write_json
from aligngoals.models.hf import resolve_device

SUMMARY_FILENAME = "summary.json"


def run_alignment(cfg: AlignConfig, *, progress: Progress | None = None, command: str | None = None) -> AlignResult:
    """Run one alignment method end to end (see the module docstring); returns its measured result."""
    import torch

    from aligngoals.align.data import fit_examples, load_examples, require_kind, split_heldout
    from aligngoals.align.modeling import load_causal_lm, load_sequence_classifier, materialize, resolve_base

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
    if cfg.spec.model_kind == "sequence_classifier":
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
        from aligngoals.align.in_context import goal_principles_text, resolve_goal

        run.goal = resolve_goal(cfg.goal)
        run.goal_prompt = goal_principles_text(run.goal)
    run.log.event("data", n_train=len(run.train), n_heldout=len(heldout), n_dropped_too_long=n_drop_train, n_heldout_dropped_too_long=n_drop_held,
                  data=str(cfg.data))

    before = run.measure("before", model, tokenizer)
    in_ctx = None
    if run.goal_prompt and cfg.spec.model_kind == "causal_lm":
        in_ctx = run.measure("in_context", model, tokenizer, system_prompt=run.goal_prompt)

    import gc

    gc.collect()
    reset_peak_memory(run.device)
    run.deadline = Deadline(cfg.max_minutes)  # --max-minutes counts training, not loading and measuring
    t0 = time.time()
    outcome = cfg.spec.load_trainer()(run, model, tokenizer)
    train_s = outcome.train_s or (time.time() - t0)
    peak = peak_memory_mb(run.device)

    run.progress.note(f"Saving the model to {run.out}")
    saved = run.save(outcome.model, tokenizer)
    after = run.measure("after", saved, tokenizer)
    implicit = run.measure_implicit_reward() if cfg.method == "dpo" else None
    if implicit:  # DPO's implicit reward accuracy, next to the raw preference accuracy
        outcome.extra = {**(outcome.extra or {}), "implicit_reward": implicit["tasks"]["heldout_implicit_reward"]}
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
