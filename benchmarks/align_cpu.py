"""Alignment on CPU, measured: DPO (LoRA) on HH-RLHF harmless, against plain TRL, plus RM, RAFT and RRHF.

Starting from the embedded SmolLM2-135M-Instruct loaded through transformers
(the GGUF dequantized to float32), on ``../shared/data/hh-rlhf/harmless-base-test.jsonl.gz``
(the only HH split available offline) split deterministically: the first 1800 pairs
train, the last 512 are held out.

1. DPO with LoRA for at most ``--max-minutes`` (10): held-out preference accuracy
   (the chosen answer gets the higher summed log-probability) before and after,
   with 95% bootstrap intervals, and the paired change.
2. The same DPO settings with plain ``trl.DPOTrainer`` in a fresh process for
   ``--trl-steps`` steps: seconds per step and peak memory next to ours (both
   measured the same way: steps 2..N of the training loop, peak RSS of the
   training window).
3. Shorter runs: the reward model (held-out pairwise accuracy), RAFT and RRHF
   with that reward model (loss curve, and mean reward of greedy answers on
   held-out prompts before and after).

The last line is ``before=... after=... delta=... sec_per_step=... trl_sec_per_step=... peak_mb=... trl_peak_mb=...``.

Usage::

    python benchmarks/align_cpu.py                  # full (about 40 min on 2 CPU cores)
    python benchmarks/align_cpu.py --quick          # minutes: tiny sizes, checks that everything runs
    python benchmarks/align_cpu.py --max-minutes 5 --threads 2 --out /tmp/align_bench
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HH = (REPO / ".." / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz").resolve()


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (train 32, held-out 32, a few steps each)")
    ap.add_argument("--max-minutes", type=float, default=10.0, help="DPO training time limit")
    ap.add_argument("--dpo-steps", type=int, default=450, help="DPO steps (the LR schedule's length; the time limit usually stops first)")
    ap.add_argument("--trl-steps", type=int, default=8, help="steps of the plain TRL DPOTrainer comparison")
    ap.add_argument("--rm-minutes", type=float, default=4.0)
    ap.add_argument("--raft-minutes", type=float, default=3.0)
    ap.add_argument("--rrhf-minutes", type=float, default=3.0)
    ap.add_argument("--train", type=int, default=1800, help="training pairs (from the start of the file)")
    ap.add_argument("--heldout", type=int, default=512, help="held-out pairs (from the end of the file)")
    ap.add_argument("--rm-heldout", type=int, default=128, help="held-out pairs for the reward model's accuracy (the file's tail)")
    ap.add_argument("--reward-heldout", type=int, default=48, help="held-out prompts for the RAFT/RRHF reward measurement")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=160)
    ap.add_argument("--max-prompt-length", type=int, default=96)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--out", default="/tmp/aligngoals_align_bench")
    ap.add_argument("--_trl_baseline", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.quick:
        a.max_minutes, a.dpo_steps, a.trl_steps = 3.0, 3, 3
        a.rm_minutes = a.raft_minutes = a.rrhf_minutes = 0.5
        a.train, a.heldout, a.reward_heldout, a.rm_heldout = 16, 16, 4, 16
        a.batch_size, a.max_length, a.max_prompt_length = 2, 96, 64
    return a


def write_split(a: argparse.Namespace, out: Path) -> Path:
    """The first ``train`` and last ``heldout`` lines of the HH file, in that order (the run holds out the tail)."""
    import gzip

    if not HH.is_file():
        sys.exit(f"needs {HH} (../shared/data beside the repository)")
    with gzip.open(HH, "rt", encoding="utf-8") as fh:
        lines = [x for x in fh if x.strip()]
    if a.train + a.heldout > len(lines):
        sys.exit(f"{HH} has {len(lines)} pairs; --train + --heldout must not exceed that")
    path = out / "hh_split.jsonl"
    path.write_text("".join(lines[:a.train] + lines[len(lines) - a.heldout:]), encoding="utf-8")
    print(f"data: {HH.name} ({len(lines)} pairs), deterministic split: first {a.train} pairs train, "
          f"last {a.heldout} held out (lines {len(lines) - a.heldout + 1}-{len(lines)})", flush=True)
    return path


def step_seconds(log: Path, n: int | None = None) -> float | None:
    """Mean seconds per step over steps 2..n of train_log.jsonl (step 1 carries one-off warm-up)."""
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    t = [r["time"] for r in rows if r.get("event") == "train"]
    if n is not None:
        t = t[:n]
    return (t[-1] - t[0]) / (len(t) - 1) if len(t) >= 2 else None


def f2(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def fmt_metric(report: dict | None, task: str, metric: str) -> str:
    m = ((report or {}).get("tasks", {}).get(task) or {}).get("metrics", {}).get(metric)
    if not m:
        return "n/a"
    return f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}] (n={m['n']})"


def paired(out: Path, task: str, metric: str):
    from aligngoals.align.compare import compare_runs

    _, _, rows = compare_runs(out)
    return next((r for r in rows if r.task == task and r.metric == metric), None)


def loss_curve(log: Path, key: str = "loss", points: int = 8) -> str:
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    vals = [r[key] for r in rows if r.get("event") == "train" and isinstance(r.get(key), (int, float))]
    if not vals:
        return "n/a"
    w = max(1, len(vals) // points)
    chunks = [vals[i:i + w] for i in range(0, len(vals), w)]
    return " ".join(f"{sum(c) / len(c):.3f}" for c in chunks) + f"  ({len(vals)} steps, mean per {w})"


def common(a: argparse.Namespace, data: Path) -> dict:
    return dict(model="hf:smollm2", data=str(data), limit=a.train, batch_size=a.batch_size, max_length=a.max_length,
                max_prompt_length=a.max_prompt_length, seed=0, device="cpu", save_every=10_000, eval_batch_size=8,
                eval_fit=True)


def trl_baseline(a: argparse.Namespace, data: Path, result_path: Path) -> None:
    """Plain TRL: DPOTrainer + LoRA on the same model, data rows and settings, no aligngoals loop."""
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import DPOConfig, DPOTrainer

    from aligngoals.align.data import fit_examples, load_examples, preference_rows, split_heldout
    from aligngoals.align.modeling import load_causal_lm, lora_config, resolve_base
    from aligngoals.align.runlog import peak_memory_mb, reset_peak_memory

    torch.set_num_threads(a.threads)
    model, tok, _ = load_causal_lm(resolve_base("hf:smollm2"))
    train, _ = split_heldout(load_examples(data, "hh_rlhf"), a.heldout, a.train)
    train, _ = fit_examples(tok, train, a.max_prompt_length)
    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            times.append(time.time())

    args = DPOConfig(output_dir=str(result_path.parent / "trl_ckpt"), per_device_train_batch_size=a.batch_size,
                     learning_rate=1e-4, lr_scheduler_type="linear", max_steps=a.trl_steps, beta=0.1,
                     max_length=a.max_length, bf16=False, fp16=False, use_cpu=True, activation_checkpointing=False,
                     save_strategy="no", report_to=[], disable_tqdm=True, logging_steps=1, seed=0, data_seed=0)
    import gc

    gc.collect()
    reset_peak_memory("cpu")  # same window as aligngoals' runs: trainer set-up + training
    trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(preference_rows(train)),
                         processing_class=tok, peft_config=lora_config(16, 32, 0.0), callbacks=[Clock()])
    trainer.train()
    peak = peak_memory_mb("cpu")
    sps = (times[-1] - times[0]) / (len(times) - 1) if len(times) >= 2 else None
    result_path.write_text(json.dumps({"sec_per_step": sps, "peak_mb": peak, "steps": len(times)}))


def main() -> None:
    a = parse()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(a.threads)
    out = Path(a.out)
    if a._trl_baseline:
        trl_baseline(a, out / "hh_split.jsonl", Path(a._trl_baseline))
        return
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    from aligngoals.align.config import make_config
    from aligngoals.align.runner import run_alignment

    data = write_split(a, out)
    base = common(a, data)
    print(f"settings: LoRA r=16, batch {a.batch_size}, max_length {a.max_length}, prompts cut to {a.max_prompt_length} "
          f"tokens (earliest turns first), torch threads {a.threads}, bf16 off, float32", flush=True)

    # 1. DPO (LoRA), at most --max-minutes
    t0 = time.time()
    dpo = run_alignment(make_config(method="dpo", out=str(out / "dpo"), lora=True, steps=a.dpo_steps,
                                    max_minutes=a.max_minutes, eval_n=a.heldout, **base))
    ours_sps = step_seconds(out / "dpo" / "train_log.jsonl")
    ours_sps_n = step_seconds(out / "dpo" / "train_log.jsonl", a.trl_steps)
    b = dpo.before["tasks"]["heldout_preference"]["metrics"]["acc"]["value"]
    af = dpo.after["tasks"]["heldout_preference"]["metrics"]["acc"]["value"]
    d = paired(out / "dpo", "heldout_preference", "acc")
    print(f"\n[DPO LoRA] {dpo.steps} steps ({dpo.steps * a.batch_size} pairs) in {dpo.train_s:.0f} s"
          f"{' (stopped by the time limit)' if dpo.stopped_early else ''}; wall incl. measurement {time.time() - t0:.0f} s")
    print(f"  held-out preference acc before: {fmt_metric(dpo.before, 'heldout_preference', 'acc')}")
    print(f"  held-out preference acc after:  {fmt_metric(dpo.after, 'heldout_preference', 'acc')}")
    print(f"  paired change: {d.diff:+.3f} [{d.ci_low:+.3f}, {d.ci_high:+.3f}] over {d.n_paired} pairs")
    print(f"  acc_norm (per-token) before {fmt_metric(dpo.before, 'heldout_preference', 'acc_norm')}, "
          f"after {fmt_metric(dpo.after, 'heldout_preference', 'acc_norm')}")
    print(f"  loss: {loss_curve(out / 'dpo' / 'train_log.jsonl')}")
    print(f"  reward accuracy (train batches): {loss_curve(out / 'dpo' / 'train_log.jsonl', 'rewards/accuracies')}")
    print(f"  sec/step (steps 2..end) {f2(ours_sps)}, steps 2..{a.trl_steps} {f2(ours_sps_n)}; "
          f"peak RSS of the training window {dpo.peak_mb:.0f} MB", flush=True)

    # 2. plain TRL DPOTrainer, same settings, fresh process (its own peak memory)
    res_path = out / "trl_baseline.json"
    cmd = [sys.executable, __file__, "--_trl_baseline", str(res_path), "--out", str(out), "--threads", str(a.threads),
           "--trl-steps", str(a.trl_steps), "--train", str(a.train), "--heldout", str(a.heldout),
           "--batch-size", str(a.batch_size), "--max-length", str(a.max_length),
           "--max-prompt-length", str(a.max_prompt_length)]
    subprocess.run(cmd, check=True)
    trl = json.loads(res_path.read_text())
    print(f"\n[plain TRL DPOTrainer] {trl['steps']} steps: sec/step (steps 2..{trl['steps']}) {f2(trl['sec_per_step'])}, "
          f"peak RSS {trl['peak_mb']:.0f} MB  (aligngoals over the same steps: {f2(ours_sps_n)} s/step)", flush=True)

    # 3a. reward model
    rm = run_alignment(make_config(method="reward", out=str(out / "rm"), lora=True, steps=10_000,
                                   max_minutes=a.rm_minutes, eval_n=min(a.rm_heldout, a.heldout), **base))
    d = paired(out / "rm", "heldout_rm_accuracy", "acc")
    print(f"\n[reward model LoRA] {rm.steps} steps in {rm.train_s:.0f} s, {rm.sec_per_step} s/step")
    print(f"  held-out pairwise acc before (random head): {fmt_metric(rm.before, 'heldout_rm_accuracy', 'acc')}")
    print(f"  held-out pairwise acc after:                {fmt_metric(rm.after, 'heldout_rm_accuracy', 'acc')}")
    print(f"  paired change: {d.diff:+.3f} [{d.ci_low:+.3f}, {d.ci_high:+.3f}]")
    print(f"  loss: {loss_curve(out / 'rm' / 'train_log.jsonl')}", flush=True)

    # 3b. RAFT and RRHF with that reward model; reward of greedy answers on held-out prompts
    online = {**base, "reward_model": str(out / "rm"), "max_new_tokens": 48, "eval_n": a.reward_heldout,
              "batch_size": 2}
    for method, minutes, extra in (("raft", a.raft_minutes, {"k": 4}), ("rrhf", a.rrhf_minutes, {"k": 1})):
        r = run_alignment(make_config(method=method, out=str(out / method), lora=True, steps=10_000,
                                      max_minutes=minutes, **online, **extra))
        d = paired(out / method, "heldout_reward", "reward")
        print(f"\n[{method.upper()} LoRA, k={extra['k']}] {r.steps} steps in {r.train_s:.0f} s, {r.sec_per_step} s/step")
        print(f"  held-out reward before: {fmt_metric(r.before, 'heldout_reward', 'reward')}")
        print(f"  held-out reward after:  {fmt_metric(r.after, 'heldout_reward', 'reward')}")
        print(f"  paired change: {d.diff:+.3f} [{d.ci_low:+.3f}, {d.ci_high:+.3f}]")
        print(f"  loss: {loss_curve(out / method / 'train_log.jsonl')}")
        key = "reward_best_mean" if method == "raft" else "rank_acc"
        print(f"  {key}: {loss_curve(out / method / 'train_log.jsonl', key)}", flush=True)

    print(f"\nbefore={b:.3f} after={af:.3f} delta={af - b:.3f} sec_per_step={f2(ours_sps_n)} "
          f"trl_sec_per_step={f2(trl['sec_per_step'])} peak_mb={dpo.peak_mb:.0f} trl_peak_mb={trl['peak_mb']:.0f}")


if __name__ == "__main__":
    main()
