"""The reward-model benchmark on real preference pairs: train ``align reward``, score held-out HH pairs with ``rm_pairs``.

Usage: python benchmarks/rm_pairs_hh.py [--out DIR] [--split harmless] [--heldout 256] [--max-minutes 10]

What it checks (issue 15, item 4): a reward model trained by ``aligngoals align reward``
on the first pairs of an HH-RLHF test split scores above chance on the split's last
``--heldout`` pairs when the *benchmark* path scores them (``aligngoals eval --tasks
rm_pairs.yaml --scorer rm:DIR``), as its own training log says. Both numbers come from the
same held-out pairs; they differ only in how the conversation is shown to the reward model
(the trainer's rendering of the whole transcript vs the task's chat-rendered prompt), so they
should be close, not equal.

Steps, all through the CLI as a user runs them:
1. ``align reward --model smollm2 --lora --eval-n N --max-minutes M`` on
   ``../shared/data/hh-rlhf/<split>-base-test.jsonl.gz`` (the last N pairs are held out);
2. the same last N raw lines are written to ``OUT/heldout.jsonl`` and a task YAML
   (``python: rm_pairs``, ``type: pair``, format ``hh_rlhf``) points at them;
3. ``eval --model smollm2 --tasks OUT/rm_hh.yaml --scorer rm:OUT/rm``.

Ends with ``train_heldout_acc=.. rm_acc=.. ci_low=.. ci_high=.. n=..``; the check passes when
``ci_low > 0.5``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "hh-rlhf"


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    t0 = time.time()
    subprocess.run(cmd, check=True)
    print(f"  ({time.time() - t0:.0f} s)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/rm_pairs_hh", help="output folder (default /tmp/rm_pairs_hh)")
    ap.add_argument("--split", default="harmless", choices=["harmless", "helpful"])
    ap.add_argument("--heldout", type=int, default=256, help="last N pairs held out and scored (default 256)")
    ap.add_argument("--max-minutes", type=float, default=10.0, help="reward-model training budget (default 10)")
    ap.add_argument("--steps", type=int, default=10_000, help="optimizer steps cap (the time budget usually binds)")
    args = ap.parse_args()
    src = (DATA / f"{args.split}-base-test.jsonl.gz").resolve()
    if not src.exists():
        sys.exit(f"{src} not found: this benchmark reads ../shared/data/hh-rlhf (see its SOURCES.md).")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "aligngoals"]

    rm_dir = out / "rm"
    if not (rm_dir / "summary.json").exists():
        run(cli + ["align", "reward", "--model", "smollm2", "--data", str(src), "--lora", "--steps", str(args.steps),
                   "--eval-n", str(args.heldout), "--max-minutes", str(args.max_minutes), "--out", str(rm_dir)])
    result = json.loads((rm_dir / "summary.json").read_text())

    def heldout_acc(phase: str) -> dict:
        return (((result.get(phase) or {}).get("tasks") or {}).get("heldout_rm_accuracy") or {}).get("metrics", {}).get("acc", {})

    before, after = heldout_acc("before"), heldout_acc("after")

    with gzip.open(src, "rt", encoding="utf-8") as fh:
        lines = [ln for ln in fh if ln.strip()]
    heldout = out / "heldout.jsonl"
    heldout.write_text("".join(lines[-args.heldout:]), encoding="utf-8")
    task = out / "rm_hh.yaml"
    task.write_text(
        "name: rm_hh\nlevel: preferences\ntype: pair\npython: rm_pairs\n"
        f"description: reward model on the last {args.heldout} HH-RLHF {args.split} test pairs\n"
        f"data: {{path: {heldout}, format: hh_rlhf}}\n", encoding="utf-8")
    eval_dir = out / "eval"
    run(cli + ["eval", "--model", "smollm2", "--tasks", str(task), "--scorer", f"rm:{rm_dir}",
               "--out", str(eval_dir), "--limit-mode", "first"])
    report = json.loads((eval_dir / "report.json").read_text())
    block = report["tasks"]["rm_hh"]
    acc = block["metrics"]["rm_acc"]
    lo, hi = acc["ci_low"], acc["ci_high"]
    print(f"\nreward model: {result.get('steps')} LoRA steps on the first pairs of {src.name}")
    print(f"  training log, held-out pairwise accuracy: before {before.get('value')} after {after.get('value')}")
    print(f"  rm_pairs task, rm_acc (ties 0.5): {acc['value']:.3f} [{lo:.3f}, {hi:.3f}] "
          f"on n={acc['n']}")
    print(f"train_heldout_acc={after.get('value')} rm_acc={acc['value']:.3f} ci_low={lo:.3f} ci_high={hi:.3f} n={acc['n']}")


if __name__ == "__main__":
    main()
