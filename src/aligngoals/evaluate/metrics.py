"""Metrics and their confidence intervals.

Every metric is reported with n and a bootstrap 95% interval (percentile method,
fixed seed, so a report is reproducible). Per-item scores are kept so that
intervals of differences between runs can be paired.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

N_BOOTSTRAP = 1000


def bootstrap_ci(
    values: Sequence[float],
    stat: Callable[[np.ndarray], float] = np.mean,
    *,
    n_boot: int = N_BOOTSTRAP,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` over items (resampled with replacement)."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return (math.nan, math.nan)
    if arr.size == 1:
        v = float(stat(arr))
        return (v, v)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, size=(n_boot, arr.size))
    if stat is np.mean:
        stats = arr[idx].mean(axis=1)
    else:
        stats = np.array([stat(arr[i]) for i in idx])
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def summarize(values: Sequence[float], *, seed: int = 0) -> dict:
    """``{"value", "ci_low", "ci_high", "n"}`` of the mean of per-item scores (NaNs dropped)."""
    arr = np.asarray([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))], dtype=float)
    if arr.size == 0:
        return {"value": None, "ci_low": None, "ci_high": None, "n": 0}
    lo, hi = bootstrap_ci(arr, seed=seed)
    return {"value": float(arr.mean()), "ci_low": lo, "ci_high": hi, "n": int(arr.size)}


# --- multiple choice ------------------------------------------------------------------------
def mc_acc(logprobs: Sequence[float], gold: int) -> float:
    """1 when the most likely choice is the gold one (lm-evaluation-harness ``acc``)."""
    return float(int(np.argmax(logprobs)) == gold)


def mc_acc_norm(logprobs: Sequence[float], choices: Sequence[str], gold: int) -> float:
    """``acc`` after dividing each log-likelihood by the choice's length in UTF-8 bytes.

    This is lm-evaluation-harness's ``acc_norm`` definition (byte-length
    normalisation of the continuation string as scored).
    """
    normed = [lp / max(1, len(c.encode("utf-8"))) for lp, c in zip(logprobs, choices)]
    return float(int(np.argmax(normed)) == gold)
