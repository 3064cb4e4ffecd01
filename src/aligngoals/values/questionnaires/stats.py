"""Statistics of a questionnaire administration: intervals, stability, consistency, distances.

Why these and not others:

* **Bootstrap intervals** (percentile, fixed seed) because dimension scores are
  means of few items answered under few prompt variants; no normal-theory
  formula covers the centered and index rules, the bootstrap covers all three
  with one code path. What is resampled is a choice (see :func:`bootstrap_intervals`).
* **ICC(2,1)** (Shrout & Fleiss 1979, two-way random effects, absolute
  agreement, single rater; McGraw & Wong 1996 call it ICC(A,1)) for stability
  across variants: the variants are a *sample* of the many ways the questions
  could have been asked (random raters), and a variant that shifts every
  answer up (an option-order or acquiescence effect) *is* instability, which
  absolute agreement counts and consistency (ICC(3,1)) ignores. ICC(3,1) is
  reported beside it: a large gap between the two means the variants disagree
  mostly by a constant shift.
* **Cronbach's alpha** (Cronbach 1951) per dimension, with the variants as the
  "respondents". This is *not* the alpha of a human sample: covariation across
  prompt variants is method variance, so treat it as "do the items of a
  dimension move together when the wording changes", and as undefined for
  fewer than two variants or when nothing varies.
* **Jensen-Shannon distance** (base 2, in [0, 1]; scipy) between the model's
  answer distribution of an item and a population's, as used to compare model
  and country answer distributions (e.g. Durmus et al. 2023, GlobalOpinionQA).
"""

from __future__ import annotations

import math
import warnings
from typing import Mapping, Sequence

import numpy as np
from scipy import stats as _st
from scipy.spatial.distance import jensenshannon

from aligngoals.values.questionnaires.scoring import Scorer, item_means


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


# --- internal consistency --------------------------------------------------------------------
def cronbach_alpha(X: np.ndarray, min_respondents: int = 2) -> dict:
    """Cronbach's alpha of a (respondents x items) matrix; rows with a missing item are dropped.

    ``alpha = k / (k - 1) * (1 - sum(var(item)) / var(total))`` with sample
    variances (ddof=1). Returns ``{"alpha", "n_respondents", "n_items", "reason"}``;
    ``alpha`` is None with a ``reason`` when it is undefined or when fewer than
    ``min_respondents`` complete rows remain (the survey asks for 3: with two
    respondents alpha only says whether every item moved the same way).
    """
    X = np.atleast_2d(np.asarray(X, dtype=float))
    complete = X[~np.isnan(X).any(axis=1)] if X.size else X
    n, k = complete.shape if complete.size else (0, X.shape[1] if X.ndim == 2 else 0)
    out = {"alpha": None, "n_respondents": int(n), "n_items": int(k), "reason": None}
    if k < 2:
        out["reason"] = "needs at least two items"
    elif n < max(2, min_respondents):
        out["reason"] = f"needs at least {max(2, min_respondents)} respondents (variants) with every item answered, has {n}"
    else:
        item_var = complete.var(axis=0, ddof=1)
        total_var = complete.sum(axis=1).var(ddof=1)
        if total_var <= 0:
            out["reason"] = "the summed score does not vary across respondents (variants)"
        else:
            out["alpha"] = float(k / (k - 1) * (1.0 - item_var.sum() / total_var))
    return out


# --- stability ----------------------------------------------------------------------------------
def icc(X: np.ndarray) -> dict:
    """ICC(2,1) and ICC(3,1) of a (targets x raters) matrix (Shrout & Fleiss 1979).

    Targets are items (or dimensions), raters are prompt variants. Rows with a
    missing value are dropped. Mean squares come from the two-way ANOVA without
    replication::

        ICC(2,1) = (MSR - MSE) / (MSR + (k-1) MSE + k (MSC - MSE) / n)
        ICC(3,1) = (MSR - MSE) / (MSR + (k-1) MSE)
    """
    X = np.atleast_2d(np.asarray(X, dtype=float))
    complete = X[~np.isnan(X).any(axis=1)]
    n, k = complete.shape
    out = {"icc2_1": None, "icc3_1": None, "n_targets": int(n), "n_raters": int(k), "reason": None}
    if k < 2:
        out["reason"] = "needs at least two variants"
        return out
    if n < 2:
        out["reason"] = "needs at least two targets answered under every variant"
        return out
    grand = complete.mean()
    ssr = k * ((complete.mean(axis=1) - grand) ** 2).sum()
    ssc = n * ((complete.mean(axis=0) - grand) ** 2).sum()
    sst = ((complete - grand) ** 2).sum()
    sse = sst - ssr - ssc
    msr = ssr / (n - 1)
    msc = ssc / (k - 1)
    mse = sse / ((n - 1) * (k - 1))
    out.update({"ms_rows": float(msr), "ms_cols": float(msc), "ms_error": float(mse)})
    d2 = msr + (k - 1) * mse + k * (msc - mse) / n
    d3 = msr + (k - 1) * mse
    if d2 <= 0 or d3 <= 0:
        out["reason"] = "no variance between targets"
        return out
    out["icc2_1"] = float((msr - mse) / d2)
    out["icc3_1"] = float((msr - mse) / d3)
    return out


def sd_across(values: Sequence[float]) -> float | None:
    """Sample standard deviation (ddof=1) of the finite values; None for fewer than two."""
    a = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    return float(a.std(ddof=1)) if a.size >= 2 else None


# --- intervals -----------------------------------------------------------------------------------
RESAMPLE_CHOICES = ("auto", "items", "variants", "both", "none")


def choose_resample(requested: str, rule: str, n_variants: int) -> tuple[str, str | None]:
    """The resampling unit actually used, and why it differs from the request (or None)."""
    if requested not in RESAMPLE_CHOICES:
        raise ValueError(f"resample must be one of {RESAMPLE_CHOICES}, got {requested!r}")
    can_items = rule != "index"  # an index formula needs its specific items
    can_variants = n_variants >= 2
    if requested == "none":
        return "none", None
    if requested == "auto":
        if can_items and can_variants:
            return "both", None
        if can_items:
            return "items", None
        if can_variants:
            return "variants", None
        return "none", "an index rule with one variant has nothing to resample; use --variants 2 or more"
    if requested in ("items", "both") and not can_items:
        return ("variants" if can_variants else "none"), "items cannot be resampled under an index rule"
    if requested in ("variants", "both") and not can_variants:
        return ("items" if can_items else "none"), "variants cannot be resampled with one variant"
    return requested, None


def bootstrap_intervals(
    scorer: Scorer,
    X: np.ndarray,
    *,
    resample: str,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float | None, float | None]]:
    """Percentile bootstrap intervals of the pooled scores of ``X`` (variants x items, keyed).

    ``resample``:

    * ``items``: items are redrawn with replacement *within each dimension*
      (domain-sampling uncertainty: another set of items for the same values);
      MRAT and groups are recomputed from the redrawn items.
    * ``variants``: rows (prompt variants) are redrawn (uncertainty from how the
      questions were asked).
    * ``both``: both at once (a two-way bootstrap; it is conservative, which is
      the side to err on with a handful of items and variants).
    """
    names = scorer.names
    if resample == "none":
        return {n: (None, None) for n in names}
    X = np.atleast_2d(np.asarray(X, dtype=float))
    V = X.shape[0]
    rng = np.random.default_rng(seed)
    draws = {n: np.full(n_boot, np.nan) for n in names}
    use_items = resample in ("items", "both")
    use_vars = resample in ("variants", "both")
    for b in range(n_boot):
        rows = rng.integers(0, V, size=V) if use_vars else np.arange(V)
        m = item_means(X[rows])
        dim_items = None
        if use_items:
            dim_items = {d: idx[rng.integers(0, idx.size, size=idx.size)] for d, idx in scorer.dim_items.items()}
        s = scorer.score(m, dim_items)
        for n in names:
            draws[n][b] = s[n]
    a = (1.0 - level) / 2.0
    out: dict[str, tuple[float | None, float | None]] = {}
    for n in names:
        d = draws[n][np.isfinite(draws[n])]
        if d.size < max(10, n_boot // 2):
            out[n] = (None, None)
        else:
            lo, hi = np.quantile(d, [a, 1.0 - a])
            out[n] = (float(lo), float(hi))
    return out


# --- comparison with a target -----------------------------------------------------------------
def js_distance(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon distance (base 2, so 0 = identical, 1 = disjoint support) of two distributions.

    Both are normalised to sum to 1 first; negative entries or an all-zero vector are errors.
    """
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    if p.shape != q.shape:
        raise ValueError(f"distributions have different lengths ({p.size} and {q.size})")
    if (p < 0).any() or (q < 0).any() or p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("distributions must be non-negative with a positive sum")
    return float(jensenshannon(p / p.sum(), q / q.sum(), base=2))


def compare_profiles(model: Mapping[str, float | None], target: Mapping[str, float]) -> dict:
    """Differences between a model's profile and a target profile on the dimensions both have.

    Returns per-dimension ``model - target``, the mean absolute difference, the
    root mean squared difference, and (with 3+ dimensions) Pearson's r and
    Spearman's rho between the two profiles: r/rho say whether the *shape*
    (which values rank high) matches even when the level differs.
    """
    dims = [d for d in target if d in model and model[d] is not None and math.isfinite(model[d])]
    diffs = {d: float(model[d]) - float(target[d]) for d in dims}
    out: dict = {"dimensions": dims, "difference": diffs, "missing": [d for d in target if d not in dims],
                 "mean_abs_diff": None, "rmsd": None, "pearson_r": None, "spearman_rho": None}
    if dims:
        a = np.array(list(diffs.values()))
        out["mean_abs_diff"] = float(np.abs(a).mean())
        out["rmsd"] = float(np.sqrt((a ** 2).mean()))
    if len(dims) >= 3:
        x = np.array([model[d] for d in dims], dtype=float)
        y = np.array([target[d] for d in dims], dtype=float)
        if x.std() > 0 and y.std() > 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out["pearson_r"] = _finite(_st.pearsonr(x, y)[0])
                out["spearman_rho"] = _finite(_st.spearmanr(x, y)[0])
    return out
