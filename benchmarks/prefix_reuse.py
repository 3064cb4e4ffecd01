"""Shared-prefix reuse: wall time with and without it, on both backends, for the quick suite.

Usage: python benchmarks/prefix_reuse.py [--repeats 1]

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


def time_scoring(model, reqs, reuse: bool, repeats: int):
    model.prefix_reuse = reuse
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
        t_reuse, a = time_scoring(model, reqs, True, args.repeats)
        t_naive, b = time_scoring(model, reqs, False, args.repeats)
        diff = max(abs(x.logprob - y.logprob) for x, y in zip(a, b))
        print(f"{backend:10} {t_reuse:15.2f} {t_naive:12.2f} {t_naive / t_reuse:8.2f}x {diff:17.2e}")
        model.close()


if __name__ == "__main__":
    main()
