"""Log-likelihood scoring speed: llama.cpp (batched and one sequence per call) vs transformers.

Usage: python benchmarks/scoring_speed.py [--n 100] [--backends new,old,hf] [--n-threads-batch T]

Two workloads, both generated here (deterministic, no benchmark data):
* ``empty``: N short sentences with an empty context (CrowS-Pairs style: each is scored after the
  BOS token, so they form one group of N continuations);
* ``mc``: N multiple-choice items (a 3-shot primer, a question, 4 answers of varied length).

Backends: ``new`` = ``smollm2`` (llama.cpp, several sequences per decode), ``old`` = the same
model with ``batch_sequences=1`` (one sequence per decode, as before), ``hf`` = ``hf:smollm2``
(transformers float32, torch using every CPU). Prints s/item per workload with the load average
next to each figure, the largest difference between new and old, and ends with
``llamacpp_s=.. hf_s=.. ratio=..`` (total seconds over both workloads, llama.cpp new path / hf).
"""

from __future__ import annotations

import argparse
import os
import random
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = ("the a my his her their old young rich poor tall short man woman doctor nurse teacher driver "
         "neighbour child family friend always never often quickly slowly carefully walked worked lived "
         "talked cooked laughed in at near the city village house office market school because when "
         "although after before").split()


def sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` made-up sentences of 6 to 20 words (CrowS-Pairs sentences are about that long)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 20))).capitalize() + "." for _ in range(n)]


def mc_requests(n: int, seed: int = 1):
    from aligngoals.models.base import LoglikelihoodRequest

    rng = random.Random(seed)
    primer = "".join(f"Q: {s}\nA: {t}\n\n" for s, t in zip(sentences(3, seed + 10), sentences(3, seed + 20)))
    reqs = []
    for i, q in enumerate(sentences(n, seed)):
        ctx = f"{primer}Q: {q} What happened next (item {i})?\nA:"
        reqs += [LoglikelihoodRequest(ctx, " " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 12))))
                 for _ in range(4)]
    return reqs


def load(backend: str, threads_batch: int | None):
    from aligngoals.models.registry import load_model

    if backend == "hf":
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        return load_model("hf:smollm2", device="cpu", batch_size=8)
    opts = {"n_threads_batch": threads_batch} if threads_batch else {}
    return load_model("smollm2", batch_sequences=8 if backend == "new" else 1, **opts)


def load_avg() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100, help="sentences and items per workload (default 100)")
    ap.add_argument("--backends", default="new,old,hf", help="comma-separated: new,old,hf")
    ap.add_argument("--n-threads-batch", type=int, default=None, help="llama.cpp batch threads (default: backend's)")
    args = ap.parse_args()
    from aligngoals.models.base import LoglikelihoodRequest

    work = {"empty": [LoglikelihoodRequest("", s) for s in sentences(args.n)], "mc": mc_requests(args.n)}
    totals: dict[str, float] = {}
    results: dict[str, dict[str, list]] = {}
    for backend in args.backends.split(","):
        model = load(backend, args.n_threads_batch)
        model.loglikelihood(work["empty"][:2])  # warm-up (the batched context is made on first use)
        totals[backend] = 0.0
        results[backend] = {}
        for name, reqs in work.items():
            t = time.perf_counter()
            results[backend][name] = model.loglikelihood(reqs)
            dt = time.perf_counter() - t
            totals[backend] += dt
            print(f"{backend:4} {name:6} {args.n} items ({len(reqs)} requests): {dt:7.2f} s, "
                  f"{dt / args.n:.4f} s/item  [{load_avg()}]", flush=True)
        model.close()
    if "new" in results and "old" in results:
        for name in work:
            a, b = results["new"][name], results["old"][name]
            diff = max(abs(x.logprob - y.logprob) for x, y in zip(a, b))
            same = all(x.is_greedy == y.is_greedy for x, y in zip(a, b))
            print(f"{name}: new vs old max |dLL| {diff:.2e}, same is_greedy: {same}")
        print(f"new vs old speed-up (both workloads): {totals['old'] / totals['new']:.2f}x")
    if "new" in totals and "hf" in totals:
        print(f"llamacpp_s={totals['new']:.2f} hf_s={totals['hf']:.2f} ratio={totals['new'] / totals['hf']:.2f}")


if __name__ == "__main__":
    main()
