"""Shared-prefix reuse: wall time with and without it, on both backends.

Usage: python benchmarks/prefix_reuse.py [--repeats 1] [--cross-items N] [--data-dir DIR]

Case 1 (quick suite): each item's context computed once for all its choices vs every choice
recomputed. Case 2 (cross-item, ``--cross-items N``): N TruthfulQA-style items sharing the 6-shot
QA primer of ``truthfulqa_mc1``, scored with cross-item reuse (the primer's key/value state kept
across items) vs per-item reuse only; the questions come from ``DIR/truthfulqa/mc_task.json`` when
``--data-dir`` has it, else N questions made up here (the primer, ~300 tokens, dominates either way).

Prints, per backend, the time to score every request of the built-in ``quick``
suite with shared-prefix reuse (context computed once per item) and without
(every choice recomputed from scratch), and the largest per-choice
log-likelihood difference between the two paths. No run store is used, so
every request really reaches the model.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def quick_requests():
    from aligngoals.evaluate.runner import EvalSettings, load_items
    from aligngoals.evaluate.suites import load_suite, suite_tasks
    from aligngoals.evaluate.tasks.multiple_choice import build_requests

    reqs = []
    for spec in suite_tasks(load_suite("quick")):
        for item in load_items(spec, EvalSettings()):
            reqs.extend(build_requests(spec, item))
    return reqs


def primer_requests(n: int, data_dir: str | None):
    """MC1-style requests of ``n`` items behind truthfulqa_mc1's own 6-shot primer."""
    from pathlib import Path

    from aligngoals.evaluate.suites import resolve_selection
    from aligngoals.models.base import LoglikelihoodRequest

    _, specs, _ = resolve_selection(tasks="truthfulqa_mc1")
    template = specs[0].prompt
    items = None
    if data_dir and (Path(data_dir) / "truthfulqa" / "mc_task.json").is_file():
        import json

        rows = json.loads((Path(data_dir) / "truthfulqa" / "mc_task.json").read_text())[:n]
        items = [(r["question"], list(r["mc1_targets"])) for r in rows]
    if items is None:
        items = [(f"What happens if you do thing number {i} at night?",
                  [f"Nothing in particular happens number {i}.", "You will be cursed.", "You will win money."])
                 for i in range(n)]
    from jinja2 import Template

    t = Template(template)
    return [LoglikelihoodRequest(t.render(question=q), " " + c) for q, choices in items for c in choices]


def time_scoring(model, reqs, reuse: bool, repeats: int, cross: bool = True):
    model.prefix_reuse = reuse
    model.cross_item_reuse = cross
    best, results = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        results = model.loglikelihood(reqs)
        best = min(best, time.perf_counter() - t)
    return best, results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=1, help="best of N timings (default 1)")
    ap.add_argument("--backends", default="llamacpp,hf", help="comma-separated: llamacpp,hf")
    ap.add_argument("--cross-items", type=int, default=0, help="also time N primer-sharing items (0: skip)")
    ap.add_argument("--data-dir", default=None, help="folder with truthfulqa/mc_task.json (optional)")
    ap.add_argument("--skip-quick", action="store_true", help="only the cross-item case")
    args = ap.parse_args()
    from aligngoals.models.registry import load_model

    reqs = quick_requests()
    n_items = len({r.context for r in reqs})
    print(f"quick suite: {n_items} items, {len(reqs)} choice requests")
    print(f"{'backend':10} {'with reuse (s)':>15} {'without (s)':>12} {'speed-up':>9} {'max |dLL| (nats)':>17}")
    for backend in args.backends.split(","):
        if backend == "hf":
            import torch

            torch.set_num_threads(os.cpu_count() or 1)
            model = load_model("hf:smollm2", device="cpu", batch_size=8)
        else:
            model = load_model("smollm2")
        model.loglikelihood(reqs[:4])  # warm-up
        if not args.skip_quick:
            t_reuse, a = time_scoring(model, reqs, True, args.repeats)
            t_naive, b = time_scoring(model, reqs, False, args.repeats)
            diff = max(abs(x.logprob - y.logprob) for x, y in zip(a, b))
            print(f"{backend:10} {t_reuse:15.2f} {t_naive:12.2f} {t_naive / t_reuse:8.2f}x {diff:17.2e}")
        if args.cross_items:
            creqs = primer_requests(args.cross_items, args.data_dir)
            t_cross, a = time_scoring(model, creqs, True, args.repeats, cross=True)
            t_item, b = time_scoring(model, creqs, True, args.repeats, cross=False)
            diff = max(abs(x.logprob - y.logprob) for x, y in zip(a, b))
            print(f"cross-item {backend}: {args.cross_items} items ({len(creqs)} requests) cross-item reuse "
                  f"{t_cross:.2f} s, per-item reuse {t_item:.2f} s, speed-up {t_item / t_cross:.2f}x, "
                  f"max |dLL| {diff:.2e}")
        model.close()


if __name__ == "__main__":
    main()
