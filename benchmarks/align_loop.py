"""The survey's alignment loop on CPU, measured: SELF-ALIGN engraving and DPO on HH harmless.

Runs two shipped recipes side by side (two processes, so the two CPU cores both work):

1. ``self-align-hhh``: topic-guided red-teaming, principle-driven answers with the 16
   SELF-ALIGN principles and 5 exemplars, principle engraving (LoRA SFT without the
   prompt), then context distillation on held-out prompts (how much more likely the
   principle-prompted answers are with the principles in the prompt, and how much of
   that the engraved model keeps without them) and refusal / over-refusal for the base
   model, base + principles and the engraved model.
2. ``dpo-hh-harmless`` without its behaviour stage: DPO (LoRA) for at most 10 minutes
   on HH-RLHF harmless (``--data-dir``), held-out raw preference accuracy before/after
   and DPO's implicit reward accuracy (log pi/pi_ref higher for the chosen answer).

The last line is ``icl_effect=.. engraved_effect=.. retained=.. retained_ci_low=..
overrefusal_delta=.. dpo_implicit_acc=.. dpo_implicit_ci_low=.. dpo_raw_delta=..``.

Usage::

    python benchmarks/align_loop.py --out /tmp/align_loop            # the shipped recipes
    python benchmarks/align_loop.py --out /tmp/align_loop --quick    # tiny sizes: checks the path
    # re-running resumes both pipelines stage by stage
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "src" / "aligngoals" / "pipeline" / "recipes"


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="/tmp/aligngoals_align_loop")
    ap.add_argument("--data-dir", default=str((REPO / ".." / "shared" / "data").resolve()))
    ap.add_argument("--quick", action="store_true", help="tiny sizes (minutes): checks that everything runs")
    ap.add_argument("--sequential", action="store_true", help="run the two recipes one after the other")
    return ap.parse_args()


def recipe_files(a: argparse.Namespace, out: Path) -> dict[str, Path]:
    """The shipped recipes (DPO without its behaviour stage), shrunk with --quick."""
    sa = yaml.safe_load((RECIPES / "self-align-hhh.yaml").read_text())
    dpo = yaml.safe_load((RECIPES / "dpo-hh-harmless.yaml").read_text())
    dpo["stages"] = [s for s in dpo["stages"] if s["kind"] != "evaluate"]
    dpo["stages"][0]["settings"]["goal"] = None  # no in-context pass over the held-out pairs: the budget is for training
    if a.quick:
        sa["stages"][0]["settings"].update(topics_per_type=2, questions_per_topic=1, types=["harmful_request", "factual", "advice"], heldout=3)
        sa["stages"][1]["settings"].update(epochs=1, eval_n=1, max_minutes=1)
        sa["stages"][2]["settings"].update(harmful=4, max_tokens=16)
        dpo["stages"][0]["settings"].update(steps=3, eval_n=16, max_minutes=1)
    paths = {}
    for name, spec in (("self_align", sa), ("dpo", dpo)):
        spec["data_dir"] = a.data_dir
        paths[name] = out / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return paths


def run(recipes: dict[str, Path], out: Path, sequential: bool) -> None:
    procs = {}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes on two cores
    for name, path in recipes.items():
        log = open(out / f"{name}.log", "a", encoding="utf-8")
        cmd = [sys.executable, "-m", "aligngoals.cli.main", "pipeline", str(path), "--out", str(out / name)]
        print(f"[{time.strftime('%H:%M:%S')}] {' '.join(cmd)}  (log: {out / f'{name}.log'})", flush=True)
        procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        if sequential:
            procs[name].wait()
    for name, p in procs.items():
        if p.wait() != 0:
            sys.exit(f"{name} pipeline failed (exit {p.returncode}); see {out / f'{name}.log'}")
        print(f"[{time.strftime('%H:%M:%S')}] {name} done", flush=True)


def f(x) -> str:
    return "nan" if x is None else f"{x:.3f}"


def main() -> None:
    a = parse()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    run(recipe_files(a, out), out, a.sequential)
    sa = json.loads((out / "self_align" / "report.json").read_text())
    dpo = json.loads((out / "dpo" / "report.json").read_text())
    print((out / "self_align" / "report.md").read_text())
    print((out / "dpo" / "report.md").read_text())
    ev = sa["evaluate"]["evaluate"]
    cd = ev["context_distillation"]
    over = ev["overrefusal"]
    d = dpo["align"]["dpo"]
    raw = next((r for r in d["before_after"] if r["task"] == "heldout_preference" and r["metric"] == "acc"), {})
    imp = d.get("implicit", {}).get("heldout_implicit_reward.acc")
    imp_ci = d.get("implicit_ci", {}).get("heldout_implicit_reward.acc", [None, None])
    print(f"wall: {(time.time() - t0) / 60:.1f} min")
    print(f"icl_effect={f(cd['icl_effect'])} engraved_effect={f(cd.get('engraved_effect'))} "
          f"retained={f(cd.get('retained'))} retained_ci_low={f((cd.get('retained_ci') or [None])[0])} "
          f"overrefusal_delta={f(over['aligned']['rate'] - over['base']['rate'])} "
          f"dpo_implicit_acc={f(imp)} dpo_implicit_ci_low={f(imp_ci[0])} dpo_raw_delta={f(raw.get('diff'))}")


if __name__ == "__main__":
    main()
