"""vLLM against transformers and llama.cpp on the embedded model: speed and agreement, one run.

The same 64 chat prompts (self-instruct user-oriented instructions, chat template, 64 new
tokens, greedy) and the same 200 two-choice items (100 HH-RLHF helpful + 100 harmless test
pairs, chosen vs rejected answer) go through:

* ``hf:DIR``    transformers, float32, on the converted model (``aligngoals convert smollm2``);
* ``vllm:DIR``  vLLM's offline engine on the same directory (float32, eager, CPU defaults);
* ``smollm2``   llama.cpp on the original Q4_1 GGUF (the weights hf:DIR was dequantized from).

One backend at a time (each is closed before the next starts, so at most one engine is in
memory); startup (load) is timed separately from generation and scoring. Agreement is
measured against hf:DIR: identical greedy texts, and the largest per-request
log-likelihood difference.

Run it in the vLLM venv (``.ci/vllm_venv.sh``)::

    .venv-vllm/bin/python benchmarks/vllm_vs_hf.py [--data-dir ../shared/data] [--threads 2]

The last line is ``gen_speedup_vs_hf=.. score_speedup_vs_hf=.. identical_greedy=N/64 maxdiff=..``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


def workload(data_dir: Path, n_chat: int, n_pairs: int):
    """(64 chat GenerationRequests, 400 LoglikelihoodRequests of 200 items) built by the built-in tasks."""
    from aligngoals.evaluate.suites import resolve_task
    from aligngoals.evaluate.tasks import make_task
    from aligngoals.evaluate.tasks.base import BuildContext
    from aligngoals.models.base import GenerationSettings

    greedy = GenerationSettings(max_tokens=64, temperature=0.0)
    ctx = BuildContext(seed=0)
    task = make_task(resolve_task("instr_user_oriented"))
    prep = task.prepare(data_dir=str(data_dir), limit=n_chat, seed=0)
    chats = []
    for doc in prep.docs:
        req = task.requests(doc, task.exemplars(prep, doc, 0), ctx)[0]
        chats.append(dataclasses.replace(req, settings=greedy))
    scores = []
    for name in ("hh_rlhf_helpful", "hh_rlhf_harmless"):
        task = make_task(resolve_task(name))
        prep = task.prepare(data_dir=str(data_dir), limit=n_pairs // 2, seed=0)
        for doc in prep.docs:
            scores.extend(task.requests(doc, task.exemplars(prep, doc, 0), ctx))
    return chats, scores


def measure(spec: str, chats, scores, **options) -> dict:
    from aligngoals.models.registry import load_model

    t0 = time.perf_counter()
    m = load_model(spec, **options)
    t1 = time.perf_counter()
    try:
        texts = m.generate(chats)
        t2 = time.perf_counter()
        lls = m.loglikelihood(scores)
        t3 = time.perf_counter()
        identity = m.identity
        cached = getattr(m, "scoring_cached_tokens", None)
        n_gen_tokens = sum(len(m.tokenize(x)) for x in texts)
    finally:
        m.close()
    print(f"  {spec}: startup {t1 - t0:.1f} s, generation {t2 - t1:.1f} s, scoring {t3 - t2:.1f} s"
          + (f", {cached} scoring prompt tokens from the prefix cache" if cached is not None else ""), flush=True)
    return {"spec": spec, "identity": identity, "startup_s": t1 - t0, "gen_s": t2 - t1, "score_s": t3 - t2,
            "texts": texts, "logprobs": [r.logprob for r in lls], "prefix_cached_tokens": cached,
            "n_gen_tokens": n_gen_tokens}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=REPO / ".." / "shared" / "data")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads for transformers and llama.cpp")
    ap.add_argument("--chats", type=int, default=64)
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--json", type=Path, default=None, help="also write every figure (and the texts) here")
    args = ap.parse_args()
    import torch

    from aligngoals.models.convert import ensure_converted

    torch.set_num_threads(args.threads)
    chats, scores = workload(args.data_dir.resolve(), args.chats, args.items)
    print(f"workload: {len(chats)} chat prompts x 64 new tokens (greedy); {len(scores) // 2} two-choice items "
          f"({len(scores)} log-likelihood requests); threads={args.threads}; load average {os.getloadavg()[0]:.1f}",
          flush=True)
    t = time.perf_counter()
    model_dir = ensure_converted("smollm2")
    print(f"converted model: {model_dir} ({time.perf_counter() - t:.1f} s, cached after the first run)", flush=True)
    runs = {
        "hf": measure(f"hf:{model_dir}", chats, scores, device="cpu", batch_size=8),
        "vllm": measure(f"vllm:{model_dir}", chats, scores),
        "llamacpp": measure("smollm2", chats, scores, n_threads=args.threads),
    }
    hf = runs["hf"]
    print(f"{'backend':9} {'startup s':>9} {'gen s':>7} {'score s':>8} {'same text as hf':>16} {'max |dLL| vs hf':>16}")
    for name, r in runs.items():
        same = sum(a == b for a, b in zip(r["texts"], hf["texts"]))
        diff = max(abs(a - b) for a, b in zip(r["logprobs"], hf["logprobs"]))
        r["identical_greedy"], r["maxdiff"] = same, diff
        print(f"{name:9} {r['startup_s']:9.1f} {r['gen_s']:7.1f} {r['score_s']:8.1f} {same:>13}/{len(chats)} {diff:16.2e}")
    v = runs["vllm"]
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1, default=str))
    print(f"gen_speedup_vs_hf={hf['gen_s'] / v['gen_s']:.2f} score_speedup_vs_hf={hf['score_s'] / v['score_s']:.2f} "
          f"identical_greedy={v['identical_greedy']}/{len(chats)} maxdiff={v['maxdiff']:.2e}")


if __name__ == "__main__":  # vLLM starts its engine core with spawn, which re-imports __main__
    main()
