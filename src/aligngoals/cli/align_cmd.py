"""``aligngoals align METHOD`` (train, then measure before/after) and ``aligngoals compare``."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from aligngoals.cli.common import console, out
from aligngoals.errors import ConfigError

METHOD_HELP = (
    "sft (supervised, loss on answers), reward (Bradley-Terry reward model), dpo, "
    "rloo (online RL against --reward-model, TRL), ppo (our compact PPO), raft, rrhf; "
    "or 'merge' to merge the LoRA adapter of a --no-merge run in --out."
)


class RichProgress:
    """The align Progress protocol on a rich progress bar (stderr)."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._cols = (SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
        self._Progress = Progress
        self._prog = None
        self._task = None

    def start(self, description: str, total: int) -> None:
        self.finish()
        self._prog = self._Progress(*self._cols, console=console, transient=False)
        self._prog.start()
        self._task = self._prog.add_task(description, total=total or None, info="")

    def update(self, step: int, metrics: dict) -> None:
        if self._prog is None:
            return
        shown = []
        for key in ("loss", "reward_mean", "rewards/accuracies", "kl", "rank_acc"):
            v = metrics.get(key)
            if isinstance(v, (int, float)):
                shown.append(f"{key.split('/')[-1]}={v:.3f}")
        kw = {"completed": step}
        if shown:
            kw["info"] = " ".join(shown)
        self._prog.update(self._task, **kw)

    def note(self, text: str) -> None:
        console.print(f"[dim]{escape(text)}[/]")

    def finish(self) -> None:
        if self._prog is not None:
            self._prog.stop()
            self._prog = None


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def print_diffs(rows, title: str) -> None:
    table = Table(title=title)
    for col in ("task", "metric", "before", "after", "change", "95% CI of change", "n", "interval"):
        table.add_column(col, justify="right" if col in ("before", "after", "change", "n") else "left")
    for r in rows:
        change = _fmt(r.diff) if r.diff is None else f"{r.diff:+.3f}"
        if r.significant:
            change = f"[bold]{change}[/]"
        n = str(r.n_paired) if r.n_paired else f"{r.n_before}/{r.n_after}"
        table.add_row(r.task, r.metric, _fmt(r.before), _fmt(r.after), change,
                      f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]", n, r.method.replace("_", " "))
    out.print(table)


def _print_result(result, method: str, goal) -> None:
    """Steps, speed, where the model is, and the held-out changes (and the in-context baseline)."""
    from aligngoals.align.compare import compare_runs

    console.print(f"Trained {result.steps} steps in {result.train_s:.0f} s "
                  f"({result.sec_per_step if result.sec_per_step is not None else '–'} s/step, peak {result.peak_mb:.0f} MB)"
                  + (" [yellow](stopped early by --max-minutes)[/]" if result.stopped_early else "") + ".")
    console.print(f"Model: [bold]{escape(result.out)}[/]  (--model hf:{escape(result.out)})  ·  "
                  f"log: {escape(str(Path(result.out) / 'train_log.jsonl'))}")
    if result.before and result.after:
        _, _, rows = compare_runs(result.out)
        print_diffs(rows, f"{method}: held-out before → after ({result.n_heldout} examples)")
        if result.in_context:
            _, _, rows = compare_runs(Path(result.out) / "eval" / "before", Path(result.out) / "eval" / "in_context")
            print_diffs(rows, f"in-context goal baseline ({goal}) vs before")


def align_command(
    method: str = typer.Argument(..., help=METHOD_HELP),
    model: str = typer.Option("smollm2", "--model", "-m", help="Base model: smollm2 (embedded), hf:DIR, hf:PATH.gguf."),
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="Training data file (any format 'aligngoals data formats' lists)."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="Data format name (detected when omitted), e.g. hh_rlhf."),
    goal: Optional[str] = typer.Option(None, "--goal", "-g", help="Goal name or YAML: recorded with the model; measured as the in-context baseline; raft/rrhf sample with its principles (principle engraving)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Run directory: the model (hf:DIR loads it), train_log.jsonl, align_config.json, eval/."),
    lora: bool = typer.Option(False, "--lora/--full", help="Train a LoRA adapter (PEFT) instead of all weights."),
    merge: bool = typer.Option(True, "--merge/--no-merge", help="LoRA: also write the merged model so hf:OUT loads it (the adapter stays in OUT/adapter)."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Optimizer steps (default: one epoch)."),
    epochs: float = typer.Option(1.0, "--epochs", help="Epochs when --steps is not given."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (default per method and LoRA/full; see docs/alignment.md)."),
    batch_size: int = typer.Option(4, "--batch-size", "-b", min=1, help="Examples (prompts for rloo/ppo/raft/rrhf) per step."),
    grad_accum: int = typer.Option(1, "--grad-accum", min=1, help="Gradient accumulation (sft, reward, dpo, rloo)."),
    max_length: int = typer.Option(512, "--max-length", help="Max tokens of prompt + answer."),
    max_prompt_length: int = typer.Option(384, "--max-prompt-length", help="Prompts longer than this lose their earliest turns (or are skipped)."),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", help="Answer length when sampling (rloo, ppo, raft, rrhf) and in the reward measurement."),
    beta: Optional[float] = typer.Option(None, "--beta", help="dpo: preference temperature (0.1); rloo/ppo: KL coefficient (0.05)."),
    k: Optional[int] = typer.Option(None, "--k", help="Answers sampled per prompt (rloo 2, ppo 1, raft 4, rrhf 2 with a reward model)."),
    temperature: float = typer.Option(1.0, "--temperature", help="Sampling temperature during training."),
    reward_model: Optional[Path] = typer.Option(None, "--reward-model", help="Reward model directory (output of 'align reward'); needed by rloo, ppo, raft."),
    eval_n: int = typer.Option(64, "--eval-n", min=0, help="Hold out the last N examples and measure them before and after (0: no measurement)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Train on at most N examples (after the held-out split)."),
    seed: int = typer.Option(0, "--seed"),
    save_every: int = typer.Option(50, "--save-every", min=1, help="Checkpoint every N steps."),
    keep_checkpoints: int = typer.Option(2, "--keep-checkpoints", min=1, help="Keep the last N checkpoints."),
    warmup_ratio: float = typer.Option(0.0, "--warmup-ratio", help="Fraction of the steps with linear LR warm-up."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="Stop training after this many minutes (the model is still saved and measured)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:0 (default: cuda if available)."),
    lora_r: int = typer.Option(16, "--lora-r"),
    lora_alpha: int = typer.Option(32, "--lora-alpha"),
    ppo_epochs: int = typer.Option(2, "--ppo-epochs", help="ppo: optimisation passes per batch of samples."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip malformed records (counted) instead of stopping."),
    eval_batch_size: int = typer.Option(8, "--eval-batch-size", min=1),
    eval_fit: bool = typer.Option(False, "--eval-fit", help="Measure held-out examples as training sees them (prompts cut to --max-prompt-length, answers to --max-length); faster on long multi-turn data."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Align a model with METHOD on --data, save it to --out, and measure held-out data before and after.

    Example: aligngoals align dpo --model smollm2 --data pairs.jsonl --lora --steps 200 --out runs/dpo
    then: aligngoals eval --model hf:runs/dpo ...   and   aligngoals compare runs/dpo
    Multi-GPU: accelerate launch -m aligngoals.cli.main align dpo ... (see docs/alignment.md).
    """
    from aligngoals.align.config import make_config
    from aligngoals.align.methods import method_names

    method = method.strip().lower()
    if method == "merge":
        from aligngoals.align.modeling import merge_adapter

        with console.status(f"Merging the LoRA adapter of {out_dir} ..."):
            merge_adapter(out_dir, device=device or "cpu")
        console.print(f"Merged model written to [bold]{escape(str(out_dir))}[/] (load it with --model hf:{escape(str(out_dir))}).")
        return
    if method not in method_names():
        raise ConfigError(f"Unknown alignment method {method!r}.", hint=f"Use one of: {', '.join(method_names())}, merge.")
    if data is None:
        raise ConfigError(f"'aligngoals align {method}' needs training data.", hint="Pass --data FILE (and --format NAME if needed).")
    cfg = make_config(
        method=method, model=model, data=str(data), format=fmt, goal=goal, out=str(out_dir), lora=lora, merge=merge,
        steps=steps, epochs=epochs, lr=lr, batch_size=batch_size, grad_accum=grad_accum, max_length=max_length,
        max_prompt_length=max_prompt_length, max_new_tokens=max_new_tokens, beta=beta, k=k, temperature=temperature,
        reward_model=str(reward_model) if reward_model else None, eval_n=eval_n, limit=limit, seed=seed,
        save_every=save_every, resume=resume, max_minutes=max_minutes, device=device, lora_r=lora_r,
        lora_alpha=lora_alpha, ppo_epochs=ppo_epochs, skip_bad=skip_bad, eval_batch_size=eval_batch_size,
        eval_fit=eval_fit, keep_checkpoints=keep_checkpoints, warmup_ratio=warmup_ratio,
    )
    from aligngoals.align.runner import run_alignment

    progress = RichProgress()
    try:
        result = run_alignment(cfg, progress=progress,
                               command=" ".join(shlex.quote(a) for a in ["aligngoals", *sys.argv[1:]]))
    finally:
        progress.finish()
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        return
    _print_result(result, method, goal)


def compare_command(
    runs: List[Path] = typer.Argument(..., metavar="RUN_A [RUN_B ...]",
                                      help="Run directories (the first is the baseline), or one 'align' --out directory alone (its before and after)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the comparison page (compare.html) and comparison.json here."),
    as_json: bool = typer.Option(False, "--json", help="Print the differences as JSON."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
) -> None:
    """Print each metric's change against the first run with a 95% interval; with --out, also write a
    comparison page that lists the items whose outcome changed, each with both samples side by side.

    Paired bootstrap over shared items when both run stores keep per-item scores,
    otherwise a normal approximation from the two reports' intervals.
    """
    from aligngoals.align.compare import build_comparison, compare_runs

    pairs = ([compare_runs(runs[0], None, seed=seed)] if len(runs) == 1
             else [compare_runs(runs[0], r, seed=seed) for r in runs[1:]])
    if as_json:
        out.print_json(json.dumps([{"before": str(b), "after": str(a), "metrics": [r.to_dict() for r in rows]}
                                   for b, a, rows in pairs] if len(pairs) > 1 else
                                  {"before": str(pairs[0][0]), "after": str(pairs[0][1]),
                                   "metrics": [r.to_dict() for r in pairs[0][2]]}))
    else:
        for b, a, rows in pairs:
            print_diffs(rows, f"{b}  →  {a}")
    if out_dir is not None:
        from aligngoals.io import atomic_write_json, atomic_write_text
        from aligngoals.report.writer import render_compare_html

        comparison = build_comparison(list(runs), seed=seed)
        atomic_write_json(Path(out_dir) / "comparison.json", comparison)
        page = atomic_write_text(Path(out_dir) / "compare.html", render_compare_html(comparison))
        console.print(f"Wrote [bold]{escape(str(page))}[/] ({len(comparison['changed'])} items changed outcome).")


def register(app: typer.Typer) -> None:
    app.command("align")(align_command)
    app.command("compare")(compare_command)
