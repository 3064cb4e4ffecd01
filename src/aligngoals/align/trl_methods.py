"""SFT, reward model, DPO and RLOO through TRL (with PEFT for LoRA).

Why TRL for these four: they are TRL's maintained trainers (SFTTrainer with
completion-only loss, RewardTrainer with the Bradley-Terry loss, DPOTrainer,
RLOOTrainer); re-implementing them would only add bugs. What aligngoals adds
is the same data, logging, checkpointing, time limit and saving for all of them:

* CPU-safe precision: TRL configs default to bf16, which made a LoRA DPO step
  ~15x slower on a CPU without bf16 units; we set ``bf16=False, fp16=False``
  unless on CUDA with bf16 support. Gradient checkpointing (TRL default on)
  is off: the models we train on CPU are small and it costs ~20% time.
* Full fine-tuning DPO gets an explicit frozen ``ref_model`` (TRL cannot
  rebuild it from a GGUF-sourced model); LoRA uses the adapter-disabled model.
* Logs go to ``train_log.jsonl`` and the progress bar through one callback;
  checkpoints to ``OUT/checkpoints`` (``--resume`` continues from the last one).
"""

from __future__ import annotations

import copy
import time
import warnings
from typing import Any

from aligngoals.align.run_state import AlignRun, TrainOutcome

# TRL 1.16 still calls transformers' deprecated is_gradient_checkpointing; the notice is not actionable for users.
warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)


def _reset_resumed_lr(optimizer: Any, scheduler: Any) -> None:
    """After resuming with a different --steps, use the new schedule's rate for this step.

    Why: the checkpoint's optimizer state carries the last rate of the *old*
    schedule (0 at its end for a linear decay), and the scheduler only rewrites
    it after the next step, so the first resumed step would run at that stale rate.
    """
    fns = getattr(scheduler, "lr_lambdas", None)
    if optimizer is None or not fns:
        return
    for group, base, fn in zip(optimizer.param_groups, scheduler.base_lrs, fns):
        group["lr"] = base * fn(scheduler.last_epoch)
    scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]


def _callback(run: AlignRun, description: str):
    """A TrainerCallback bridging TRL to train_log.jsonl, the progress bar and --max-minutes."""
    from transformers import TrainerCallback

    class _Bridge(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            run.progress.start(description, int(state.max_steps or 0))
            if state.global_step:
                run.log.truncate_after(state.global_step)
                _reset_resumed_lr(kw.get("optimizer"), kw.get("lr_scheduler"))

        def on_log(self, args, state, control, logs=None, **kw):
            logs = dict(logs or {})
            if "train_runtime" in logs:
                run.log.event("train_end", step=state.global_step, **logs)
                return
            run.log.step(state.global_step, logs)
            run.progress.update(state.global_step, logs)

        def on_step_end(self, args, state, control, **kw):
            run.progress.update(state.global_step, {})
            if run.deadline.passed():
                control.should_training_stop = True
                control.should_save = True
                run.stopped_early = True

    return _Bridge()


def common_args(run: AlignRun, **extra: Any) -> dict:
    """TrainingArguments shared by the four TRL methods."""
    import torch

    cfg = run.cfg
    on_cuda = run.device.startswith("cuda")
    bf16 = bool(on_cuda and torch.cuda.is_bf16_supported())
    kw: dict[str, Any] = dict(
        output_dir=str(run.ckpt_dir),
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.effective_lr,
        lr_scheduler_type="linear",
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_every,
        save_total_limit=cfg.keep_checkpoints,
        report_to=[],
        disable_tqdm=True,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=bf16,
        fp16=False,
        activation_checkpointing=False,  # transformers 5 name of gradient_checkpointing (TRL turns it on)
        use_cpu=not on_cuda,
        dataloader_num_workers=0,
    )
    if cfg.steps:
        kw["max_steps"] = cfg.steps
    else:
        kw["num_train_epochs"] = cfg.epochs
    kw.update(extra)
    return kw


def _fit(run: AlignRun, trainer: Any, description: str) -> TrainOutcome:
    """Train with resume, the bridge callback and without TRL's own stdout printer."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(_callback(run, description))
    run.stopped_early = False
    ckpt = run.last_checkpoint() if run.cfg.resume else None
    if ckpt is not None:
        run.progress.note(f"Resuming from {ckpt}")
    t0 = time.time()
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    train_s = time.time() - t0
    run.progress.finish()
    steps = int(trainer.state.global_step)
    resumed_from = int(ckpt.name.split("-")[1]) if ckpt else 0
    done_here = max(steps - resumed_from, 0)
    return TrainOutcome(trainer.model, steps, train_s, stopped_early=run.stopped_early,
                        extra={"steps_this_session": done_here,
                               "sec_per_step_this_session": round(train_s / done_here, 4) if done_here else None})



def _dataset(rows: list[dict]):
    import datasets

    datasets.disable_progress_bar()  # our rich bar is the progress display; TRL's map() bars would interleave with it
    return datasets.Dataset.from_list(rows)


def train_sft(run: AlignRun, model: Any, tokenizer: Any) -> TrainOutcome:
    """Supervised fine-tuning on the best answer of each example; loss on the answer tokens only."""
    from trl import SFTConfig, SFTTrainer

    from aligngoals.align.data import sft_rows

    args = SFTConfig(**common_args(run, completion_only_loss=True, packing=False, max_length=run.cfg.max_length))
    trainer = SFTTrainer(model=model, args=args, train_dataset=_dataset(sft_rows(run.train)),
                         processing_class=tokenizer, peft_config=run.lora_config())
    return _fit(run, trainer, "SFT")


def train_reward(run: AlignRun, model: Any, tokenizer: Any) -> TrainOutcome:
    """Bradley-Terry reward model on (chosen, rejected) pairs; rankings and ratings expand to all ordered pairs."""
    from trl import RewardConfig, RewardTrainer

    from aligngoals.align.data import preference_rows

    args = RewardConfig(**common_args(run, max_length=run.cfg.max_length))
    trainer = RewardTrainer(model=model, args=args, train_dataset=_dataset(preference_rows(run.train)),
                            processing_class=tokenizer, peft_config=run.lora_config("SEQ_CLS"))
    return _fit(run, trainer, "Reward model")


def train_dpo(run: AlignRun, model: Any, tokenizer: Any) -> TrainOutcome:
    """Direct preference optimisation (sigmoid loss, ``beta`` = --beta) against the frozen starting model."""
    from trl import DPOConfig, DPOTrainer

    from aligngoals.align.data import preference_rows

    ref = None
    if not run.cfg.lora:
        ref = copy.deepcopy(model).eval()
        for p in ref.parameters():
            p.requires_grad_(False)
    args = DPOConfig(**common_args(run, beta=run.cfg.effective_beta, max_length=run.cfg.max_length))
    trainer = DPOTrainer(model=model, ref_model=ref, args=args, train_dataset=_dataset(preference_rows(run.train)),
                         processing_class=tokenizer, peft_config=run.lora_config())
    return _fit(run, trainer, "DPO")


def train_rloo(run: AlignRun, model: Any, tokenizer: Any) -> TrainOutcome:
    """Online RL against the reward model (REINFORCE leave-one-out), KL penalty ``beta`` to the start model.

    ``batch_size`` counts prompts per step; TRL's batch counts completions, so it
    is ``batch_size * k``. In full fine-tuning TRL builds the reference model from
    ``config.name_or_path``, which is why GGUF bases are materialized as a
    safetensors directory first (see :mod:`.modeling`).
    """
    from trl import RLOOConfig, RLOOTrainer

    from aligngoals.align.data import prompt_rows

    cfg = run.cfg
    k = cfg.effective_k
    scorer = run.scorer()
    args = RLOOConfig(**common_args(
        run,
        per_device_train_batch_size=cfg.batch_size * k,
        num_generations=k,
        max_completion_length=cfg.max_new_tokens,
        beta=cfg.effective_beta,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
    ))
    # Prompts were already shortened to max_prompt_length (RLOOConfig has no max_length).
    trainer = RLOOTrainer(model=model, reward_funcs=scorer.model, args=args,
                          train_dataset=_dataset(prompt_rows(run.train)), processing_class=tokenizer,
                          reward_processing_classes=scorer.tokenizer, peft_config=run.lora_config())
    return _fit(run, trainer, "RLOO")
