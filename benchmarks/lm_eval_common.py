"""What the lm-evaluation-harness comparisons share: one model, both tools, timed runs.

Used by ``vs_lm_eval.py`` (HH-RLHF as multiple choice) and ``vs_lm_eval_tasks.py``
(TruthfulQA, CrowS-Pairs, BBQ through lm-eval's own task files). The embedded
SmolLM2-135M-Instruct GGUF is loaded once through transformers (dequantized to
float32) and the same ``torch`` module is handed to lm-eval's ``HFLM`` and to
aligngoals, so any difference in numbers comes from the tools, not the weights.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Optional, Sequence

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def load_shared_model(device: str, batch_size: int, cross_item_batching: Optional[bool] = None,
                      threads: Optional[int] = None) -> tuple[Any, float]:
    """``hf:smollm2`` in float32, warmed up (first-call allocations happen outside every timing); (model, load s)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    from aligngoals.models.base import LoglikelihoodRequest
    from aligngoals.models.registry import load_model

    t = time.perf_counter()
    model = load_model("hf:smollm2", device=device, batch_size=batch_size, cross_item_batching=cross_item_batching)
    load_s = time.perf_counter() - t
    model.loglikelihood([LoglikelihoodRequest("Hello", " world")])
    return model, load_s


def make_hflm(hf_model: Any, batch_size: int) -> Any:
    """lm-eval's ``HFLM`` around aligngoals' already loaded transformers model and tokenizer."""
    import logging

    from lm_eval.models.huggingface import HFLM

    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    return HFLM(pretrained=hf_model.model, tokenizer=hf_model.tokenizer, batch_size=batch_size,
                device=hf_model.device, backend="causal")


def run_lm_eval(lm: Any, task_dir: Path, tasks: Sequence[str], *, limit: Optional[int] = None,
                num_fewshot: Optional[int] = None) -> tuple[float, dict, dict]:
    """lm-eval's ``simple_evaluate`` on the task files in ``task_dir`` only; (wall s, results, samples)."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    t0 = time.perf_counter()
    tm = TaskManager(include_path=str(task_dir), include_defaults=False)
    out = simple_evaluate(model=lm, tasks=list(tasks), task_manager=tm, log_samples=True, num_fewshot=num_fewshot,
                          limit=limit, bootstrap_iters=0, verbosity="ERROR")
    wall = time.perf_counter() - t0
    return wall, out["results"], out["samples"]


def run_aligngoals(model: Any, specs: Sequence[Any], run_dir: Path, *, limit: Optional[int] = None,
                   limit_mode: Optional[str] = None, data_dir: Optional[Path] = None
                   ) -> tuple[float, dict, dict[str, list[tuple[str, dict]]]]:
    """aligngoals' full engine (run store included); (wall s, report, task -> [(item id, record)] in item order)."""
    from aligngoals.evaluate.runner import EvalSettings, run_evaluation
    from aligngoals.store import RunStore

    settings = EvalSettings(limit=limit, limit_mode=limit_mode, data_dir=str(data_dir) if data_dir else None)
    t0 = time.perf_counter()
    report = run_evaluation(model, list(specs), run_dir, settings, log=lambda _: None)
    wall = time.perf_counter() - t0
    with RunStore(run_dir) as store:
        items = {s.name: [(item_id, data) for _, item_id, data in store.items(s.name)] for s in specs}
    return wall, report, items


def load_average() -> str:
    """The 1/5/15-minute load average: the machine may be shared, which skews both timings."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" ({os.cpu_count()} CPUs)"
