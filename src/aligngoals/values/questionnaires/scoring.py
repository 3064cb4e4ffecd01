"""Scoring rules: item answers -> dimension scores, exactly as the instruments' keys prescribe.

Three rules cover the value inventories the survey discusses:

``mean``
    The score of a dimension is the mean of its items after reverse-keying
    (a reversed item on a 1..k scale scores ``1 + k - answer``). This is how the
    Moral Foundations Questionnaire is scored: MFQ-30 foundation scores are the
    mean of the foundation's six items, relevance and judgment items together
    (Graham et al. 2011, J. Pers. Soc. Psychol. 101(2); MFQ30 scoring key at
    moralfoundations.org); MFQ-2 foundation scores are the mean of six items
    (Atari et al. 2023, J. Pers. Soc. Psychol. 125(5)).

``centered``
    Schwartz's portrait questionnaires prescribe ipsatised ("centered") scores:
    compute each respondent's mean rating over *all* items (MRAT) and subtract
    it from each value's mean, so that a score says how important a value is
    *relative to the respondent's other values* and individual differences in
    scale use (acquiescence) drop out (Schwartz 2003, "Computing scores for the
    10 human values", ESS questionnaire development report ch. 7; Schwartz et
    al. 2001, J. Cross-Cult. Psychol. 32(5)). MRAT is taken over keyed scores;
    the PVQ has no reversed items, so this is the manual's MRAT. Raw means are
    reported next to centered scores.

``index``
    Hofstede's Values Survey Module forms each index from *means of items over
    respondents* as a weighted sum of differences plus a constant, e.g.
    ``PDI = 35(m07 - m02) + 25(m20 - m23) + C(pd)`` (Hofstede & Minkov, VSM 2013
    Manual, sec. 4). ``m`` are means of the VSM answer codes (1 = of utmost
    importance / strongly agree ... 5); a key file maps the administered scale
    to those codes by reverse-keying. The constant only shifts all scores and is
    0 unless the key file sets it; an index is meaningful only *relative to*
    other samples answered the same way (the manual compares countries, never
    reads one score on its own).

Higher-order ``groups`` (Schwartz's four higher-order values) are scored from the
pooled items of their member dimensions, the way the ESS report forms them.

Missing answers (unparseable model outputs) are NaN: a dimension is scored
from the items that remain; an index with a missing item is NaN. Nothing is
imputed.
"""

from __future__ import annotations

import math
import warnings
from typing import Mapping, Sequence

import numpy as np

from aligngoals.values.questionnaires.instrument import Instrument


def keyed_value(instrument: Instrument, item_index: int, value: float) -> float:
    """The scored value of one answer: reversed items score ``min + max - value``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    item = instrument.items[item_index]
    return instrument.scale.reverse(value) if item.reverse else float(value)


def _nanmean(a: np.ndarray) -> float:
    if a.size == 0 or np.all(np.isnan(a)):
        return math.nan
    return float(np.nanmean(a))


class Scorer:
    """Applies one instrument's scoring rule to arrays of keyed item scores.

    ``x`` is always a 1-D array with one keyed score per item in the
    instrument's item order (NaN when missing). Items can be resampled by
    passing ``dim_items`` (dimension -> item positions, repeats allowed), which
    is how the item bootstrap re-scores without copying the instrument.
    """

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.rule = instrument.scoring.rule
        self.item_ids = instrument.item_ids
        pos = {iid: i for i, iid in enumerate(self.item_ids)}
        self.dim_items: dict[str, np.ndarray] = {
            d: np.array([i for i, it in enumerate(instrument.items) if it.dimension == d], dtype=int)
            for d in instrument.item_dimensions
        }
        self.dimension_order = [d for d in instrument.dimensions if d in self.dim_items] if self.rule != "index" else []
        self.groups = dict(instrument.scoring.groups)
        self.index_terms: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
        for code, f in instrument.scoring.indices.items():
            idx = np.array([pos[t] for t in f.terms], dtype=int)
            w = np.array(list(f.terms.values()), dtype=float)
            self.index_terms[code] = (idx, w, float(f.constant))

    @property
    def names(self) -> list[str]:
        """Every score this rule produces: dimensions (or indices), then groups."""
        if self.rule == "index":
            return list(self.index_terms)
        return self.dimension_order + list(self.groups)

    def raw_means(self, x: np.ndarray, dim_items: Mapping[str, np.ndarray] | None = None) -> dict[str, float]:
        """Uncentered dimension (and group) means of keyed scores."""
        dim_items = dim_items or self.dim_items
        out = {d: _nanmean(x[dim_items[d]]) for d in self.dimension_order}
        for g, members in self.groups.items():
            out[g] = _nanmean(np.concatenate([x[dim_items[m]] for m in members]))
        return out

    def score(self, x: np.ndarray, dim_items: Mapping[str, np.ndarray] | None = None) -> dict[str, float]:
        """Scores of one response vector under the instrument's rule."""
        x = np.asarray(x, dtype=float)
        if x.shape != (len(self.item_ids),):
            raise ValueError(f"expected {len(self.item_ids)} item scores, got shape {x.shape}")
        if self.rule == "index":
            out = {}
            for code, (idx, w, c) in self.index_terms.items():
                vals = x[idx]
                out[code] = math.nan if np.any(np.isnan(vals)) else float(np.dot(w, vals) + c)
            return out
        means = self.raw_means(x, dim_items)
        if self.rule == "mean":
            return means
        # centered: MRAT is the mean over every administered item (pooled over dimensions).
        dim_items = dim_items or self.dim_items
        mrat = _nanmean(np.concatenate([x[dim_items[d]] for d in self.dim_items]))
        return {k: v - mrat for k, v in means.items()}

    def score_matrix(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Scores of each row of ``X`` (respondents or variants x items)."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        rows = [self.score(r) for r in X]
        return {n: np.array([r[n] for r in rows], dtype=float) for n in self.names}


def item_means(X: np.ndarray) -> np.ndarray:
    """Per-item mean over rows, ignoring NaN (all-NaN columns stay NaN, silently)."""
    X = np.atleast_2d(np.asarray(X, dtype=float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return np.nanmean(X, axis=0)


def pooled_scores(scorer: Scorer, X: np.ndarray) -> dict[str, float]:
    """Score the item means over rows (the VSM manual's m_k; for complete data and the mean or
    centered rules this equals the mean of the rows' scores)."""
    return scorer.score(item_means(X))


def keyed_matrix(instrument: Instrument, raw: Sequence[Sequence[float]]) -> np.ndarray:
    """Reverse-key a (rows x items) matrix of raw answers."""
    A = np.atleast_2d(np.asarray(raw, dtype=float))
    rev = np.array([it.reverse for it in instrument.items], dtype=bool)
    out = A.copy()
    out[:, rev] = instrument.scale.min + instrument.scale.max - A[:, rev]
    return out
