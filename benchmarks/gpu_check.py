"""GPU check (at most 8 minutes): install vLLM, run hf: and vllm: on the converted embedded model.

For a machine with an NVIDIA GPU (the ``device`` tool, when one is lent). Self-contained: no
shared data, no network beyond the package index. Steps, each timed:

1. if ``vllm`` does not import, make ``.venv-gpu`` (``pip install vllm`` brings its CUDA torch),
   install aligngoals' ``hf`` extra into it and re-run this script there;
2. convert the embedded GGUF to a float32 directory (``aligngoals.models.convert``);
3. the same chat prompts (greedy) and two-choice items through ``hf:DIR`` (cuda) and
   ``vllm:DIR``, both in float32 so that they can agree token for token;
4. print throughput (generated tokens/s, scored requests/s) and agreement (identical greedy
   texts, largest log-likelihood difference).

Usage::

    python benchmarks/gpu_check.py [--prompts 256] [--items 512] [--budget-s 480]

The last line is ``gpu=.. hf_tok_s=.. vllm_tok_s=.. gen_speedup=.. score_speedup=.. identical_greedy=.. maxdiff=..``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START = time.monotonic()
TOPICS = ["the ocean", "a city at night", "friendship", "honesty at work", "learning to cook", "the moon",
          "a rainy day", "chess", "climate", "a first job", "music", "trees"]
ASKS = ["Write a short poem about {}.", "Give three facts about {}.", "Explain {} to a child.",
        "Write a two-sentence story about {}.", "What are the pros and cons of {}?"]


def log(msg: str) -> None:
    print(f"[{time.monotonic() - START:6.1f} s] {msg}", flush=True)


def ensure_vllm(budget_s: float) -> None:
    """Re-run inside a venv that has vllm (GPU build) when this interpreter lacks it."""
    try:
        import vllm  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("ALIGNGOALS_GPU_CHECK_CHILD"):
        sys.exit("vllm still does not import inside .venv-gpu; see the pip output above.")
    venv = REPO / ".venv-gpu"
    py = venv / "bin" / "python"
    log("vllm missing: building .venv-gpu (pip install vllm, then aligngoals[hf])")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    for args in (["install", "-q", "--upgrade", "pip"], ["install", "-q", "vllm"],
                 ["install", "-q", "-e", f"{REPO}[hf]"]):
        subprocess.run([str(py), "-m", "pip", *args], check=True, timeout=max(60, budget_s - (time.monotonic() - START)))
    log("venv ready; re-running there")
    env = {**os.environ, "ALIGNGOALS_GPU_CHECK_CHILD": "1", "ALIGNGOALS_GPU_CHECK_START": str(time.time() - (time.monotonic() - START))}
    sys.exit(subprocess.run([str(py), __file__, *sys.argv[1:]], env=env).returncode)


def workload(n_prompts: int, n_items: int):
    from aligngoals.models.base import GenerationRequest, GenerationSettings, LoglikelihoodRequest

    greedy = GenerationSettings(max_tokens=64, temperature=0.0)
    chats = [GenerationRequest(messages=({"role": "user", "content": ASKS[i % len(ASKS)].format(TOPICS[i // len(ASKS) % len(TOPICS)])
                                          + ("" if i < len(ASKS) * len(TOPICS) else f" (variant {i})")},), settings=greedy)
             for i in range(n_prompts)]
    items = []
    for i in range(n_items):
        topic = TOPICS[i % len(TOPICS)]
        ctx = f"Question {i}: Which sentence about {topic} is more helpful?\nAnswer:"
        items += [LoglikelihoodRequest(ctx, f" A clear, kind and accurate sentence about {topic}."),
                  LoglikelihoodRequest(ctx, f" Something rude about {topic}, number {i}.")]
    return chats, items


def run(spec: str, chats, items, **options) -> dict:
    """One backend through the same measurement as benchmarks/vllm_vs_hf.py, plus GPU throughput rates."""
    from vllm_vs_hf import measure  # the sibling benchmark script (this script's folder is on sys.path)

    r = measure(spec, chats, items, **options)
    r.update(lls=r["logprobs"], tok_s=r["n_gen_tokens"] / r["gen_s"], req_s=len(items) / r["score_s"])
    log(f"{spec}: {r['tok_s']:.0f} tok/s generated, {r['req_s']:.0f} scoring requests/s")
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--items", type=int, default=512)
    ap.add_argument("--budget-s", type=float, default=480.0, help="whole-script budget; pip gets what is left")
    args = ap.parse_args()
    if os.environ.get("ALIGNGOALS_GPU_CHECK_START"):
        global START
        START = time.monotonic() - (time.time() - float(os.environ["ALIGNGOALS_GPU_CHECK_START"]))
    ensure_vllm(args.budget_s)
    import torch
    import vllm

    from aligngoals.models.convert import ensure_converted

    if not torch.cuda.is_available():
        sys.exit("No CUDA device is visible: this check is for a GPU machine (benchmarks/vllm_vs_hf.py is the CPU one).")
    gpu = torch.cuda.get_device_name(0)
    log(f"vllm {vllm.__version__}, torch {torch.__version__}, {gpu}")
    model_dir = ensure_converted("smollm2")
    log(f"converted model at {model_dir}")
    chats, items = workload(args.prompts, args.items)
    hf = run(f"hf:{model_dir}", chats, items, device="cuda", dtype="float32", batch_size=64)
    vl = run(f"vllm:{model_dir}", chats, items, dtype="float32", gpu_memory_utilization=0.5)
    same = sum(a == b for a, b in zip(hf["texts"], vl["texts"]))
    maxdiff = max(abs(a - b) for a, b in zip(hf["lls"], vl["lls"]))
    log(f"agreement: {same}/{len(chats)} identical greedy texts; max |dLL| {maxdiff:.2e} over {len(items)} requests")
    print(f"gpu={gpu.replace(' ', '_')} hf_tok_s={hf['tok_s']:.0f} vllm_tok_s={vl['tok_s']:.0f} "
          f"gen_speedup={hf['gen_s'] / vl['gen_s']:.2f} score_speedup={hf['score_s'] / vl['score_s']:.2f} "
          f"identical_greedy={same}/{len(chats)} maxdiff={maxdiff:.2e}")


if __name__ == "__main__":  # vLLM spawns its engine core, which re-imports __main__
    main()
