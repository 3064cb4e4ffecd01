"""Ratings from pairwise outcomes: win rates, length-controlled win rates, Elo, Bradley-Terry, agreement.

Why here and in plain numpy/scipy: the survey's preference-level evaluation is
"pairwise judgments against a baseline (win rate) or against each other (Elo /
Bradley-Terry)". Those numbers are only useful with an honest uncertainty, so
every rating here comes with an interval, the number of battles it rests on and
a documented treatment of ties. Nothing depends on the judge: human labels,
LLM-judge verdicts and reward-model comparisons all enter as :class:`Battle`.

Conventions
-----------
* A battle's ``outcome`` is the score of ``model_a``: 1 (A wins), 0.5 (tie), 0 (B wins).
* Ratings are on the Elo scale: ``rating = 1000 + 400 * log10(odds)`` differences, so
  a 400-point gap means 10:1 odds. Bradley-Terry ratings are centred on a mean of
  1000, or on the baseline model when one is named.
* Intervals are 95% unless a caller asks otherwise; bootstrap intervals use a fixed
  seed so that a leaderboard is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Literal, Optional, Sequence

import numpy as np
from scipy import optimize, special, stats

from aligngoals.errors import AligngoalsError

ELO_SCALE = 400.0
ELO_BASE = 10.0
INIT_RATING = 1000.0
_LN_BASE = math.log(ELO_BASE)


# --------------------------------------------------------------------------------------------
# battles
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Battle:
    """One pairwise comparison: ``outcome`` is the score of ``model_a`` (1 win, 0.5 tie, 0 loss).

    ``len_a`` / ``len_b`` (answer lengths, characters) are optional and only needed for
    the length-controlled win rate; ``item`` names the prompt, for bootstraps and audits.
    """

    model_a: str
    model_b: str
    outcome: float
    len_a: Optional[float] = None
    len_b: Optional[float] = None
    item: Optional[str] = None

    def __post_init__(self) -> None:
        if self.model_a == self.model_b:
            raise AligngoalsError(f"A battle needs two different models, got {self.model_a!r} twice.")
        if self.outcome not in (0, 0.5, 1):
            raise AligngoalsError(
                f"Battle outcome must be 1 (model_a wins), 0.5 (tie) or 0 (model_b wins), got {self.outcome!r}."
            )
        object.__setattr__(self, "outcome", float(self.outcome))

    @staticmethod
    def from_winner(model_a: str, model_b: str, winner: str, **kw: Any) -> "Battle":
        """Build from a winner label: ``"model_a"``/``"a"``/``"A"``, ``"model_b"``/``"b"``/``"B"`` or ``"tie"``."""
        w = str(winner).strip().lower()
        if w in ("model_a", "a"):
            return Battle(model_a, model_b, 1.0, **kw)
        if w in ("model_b", "b"):
            return Battle(model_a, model_b, 0.0, **kw)
        if w in ("tie", "c", "draw", "tie (bothbad)", "tie (both bad)"):
            return Battle(model_a, model_b, 0.5, **kw)
        raise AligngoalsError(f"Unknown winner label {winner!r}.", hint="Use model_a, model_b or tie.")

    def flipped(self) -> "Battle":
        """The same battle seen from ``model_b``'s side."""
        return Battle(self.model_b, self.model_a, 1.0 - self.outcome, self.len_b, self.len_a, self.item)

    def to_dict(self) -> dict:
        return asdict(self)


def _models_of(battles: Sequence[Battle], models: Optional[Sequence[str]] = None) -> list[str]:
    if models is not None:
        known = list(dict.fromkeys(models))
        missing = {b.model_a for b in battles} | {b.model_b for b in battles}
        missing -= set(known)
        if missing:
            raise AligngoalsError(f"Battles name models not in the model list: {', '.join(sorted(missing))}.")
        return known
    return sorted({b.model_a for b in battles} | {b.model_b for b in battles})


def _encode(battles: Sequence[Battle], models: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index = {m: i for i, m in enumerate(models)}
    a = np.fromiter((index[b.model_a] for b in battles), dtype=np.int64, count=len(battles))
    bb = np.fromiter((index[b.model_b] for b in battles), dtype=np.int64, count=len(battles))
    s = np.fromiter((b.outcome for b in battles), dtype=float, count=len(battles))
    return a, bb, s


# --------------------------------------------------------------------------------------------
# win rates
# --------------------------------------------------------------------------------------------
def wilson_interval(successes: float, n: float, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a proportion; ``successes`` may be fractional (ties as halves).

    Why Wilson: it stays inside [0, 1] and is not degenerate at 0 or n wins, which
    matters for the small battle counts judges produce. With ties counted as half a
    win the true per-battle variance is at most the Bernoulli variance ``p(1-p)`` of
    the same mean, so the interval is, if anything, conservative.
    """
    if n <= 0:
        return (math.nan, math.nan)
    z = float(stats.norm.ppf(1 - alpha / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(0.0, p * (1 - p) / n + z * z / (4 * n * n))) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def win_rate(outcomes: Iterable[float], alpha: float = 0.05) -> dict:
    """Share of battles won, ties counting one half, with a Wilson 95% interval.

    Returns ``{"value", "ci_low", "ci_high", "n", "wins", "ties", "losses"}``
    (``value`` is None when there are no battles).
    """
    arr = np.asarray(list(outcomes), dtype=float)
    if arr.size and not np.all(np.isin(arr, (0.0, 0.5, 1.0))):
        raise AligngoalsError("Win-rate outcomes must be 1 (win), 0.5 (tie) or 0 (loss).")
    n = int(arr.size)
    wins, ties = int((arr == 1).sum()), int((arr == 0.5).sum())
    out = {"n": n, "wins": wins, "ties": ties, "losses": n - wins - ties}
    if n == 0:
        return {"value": None, "ci_low": None, "ci_high": None, **out}
    score = wins + 0.5 * ties
    lo, hi = wilson_interval(score, n, alpha)
    return {"value": score / n, "ci_low": lo, "ci_high": hi, **out}


def outcomes_vs(battles: Sequence[Battle], model: str, baseline: str) -> list[Battle]:
    """The battles between ``model`` and ``baseline``, each oriented with ``model`` as ``model_a``."""
    out = []
    for b in battles:
        if b.model_a == model and b.model_b == baseline:
            out.append(b)
        elif b.model_a == baseline and b.model_b == model:
            out.append(b.flipped())
    return out


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, beta0: Optional[np.ndarray] = None,
                  max_iter: int = 50) -> np.ndarray:
    """Logistic regression with fractional targets by Newton's method (IRLS), with an L2 penalty.

    The intercept is penalised too: with a model that wins every battle the
    unpenalised maximum is at infinity, and the penalty keeps it finite.
    """
    n, k = x.shape
    beta = np.zeros(k) if beta0 is None else beta0.copy()
    for _ in range(max_iter):
        eta = x @ beta
        p = special.expit(eta)
        grad = x.T @ (y - p) - l2 * beta
        w = p * (1 - p)
        hess = (x * w[:, None]).T @ x + l2 * np.eye(k)
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


#: Fewest battles for which the length-controlled win rate is reported.
LC_MIN_BATTLES = 30
#: Fewest battles on each side of zero length difference (the model longer; the model shorter).
LC_MIN_PER_SIDE = 5


def lc_withheld_reason(d: np.ndarray) -> Optional[str]:
    """Why the length model is not identified on these length differences, or None when it is.

    With all differences on one side (or almost), ``theta`` (the rate at zero difference)
    is an extrapolation the data do not constrain: a simulation of 10 battles (2 wins,
    8 ties) gave anywhere from 0.35 to 0.98 depending on which items were the wins.
    """
    n = len(d)
    longer, shorter = int((d > 0).sum()), int((d < 0).sum())
    if n < LC_MIN_BATTLES:
        return f"only {n} battles; the length model needs at least {LC_MIN_BATTLES}"
    if min(longer, shorter) < LC_MIN_PER_SIDE:
        return (f"the model's answer is longer in {longer} battles and shorter in {shorter}; the length model needs "
                f"at least {LC_MIN_PER_SIDE} of each to estimate the rate at equal length")
    return None


def length_controlled_win_rate(
    battles: Sequence[Battle],
    *,
    l2: float = 0.01,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
    """Win rate of ``model_a`` over ``model_b`` with the effect of answer length regressed out.

    The idea of AlpacaEval 2's length-controlled win rate (Dubois et al. 2024): fit

        P(A preferred) = sigmoid(theta + phi * tanh(dlen / sd(dlen)))

    where ``dlen = len_a - len_b`` (characters) is the length difference and ``phi``
    absorbs the judge's taste for length; the length-controlled win rate is the
    prediction at zero length difference, ``sigmoid(theta)``. Ties enter as target
    0.5 (a fractional logistic likelihood). AlpacaEval also fits a per-instruction
    difficulty term; with two systems and one comparison per prompt that term is
    not identified, so it is left out. The interval resamples battles and refits
    (percentile bootstrap). Orient every battle first (see :func:`outcomes_vs`).

    The value is withheld (None, with ``withheld`` saying why) unless there are at
    least :data:`LC_MIN_BATTLES` battles and at least :data:`LC_MIN_PER_SIDE` with
    each sign of length difference (:func:`lc_withheld_reason`).

    Returns ``{"value", "ci_low", "ci_high", "n", "length_coef", "raw_win_rate", "withheld"}``.
    """
    bs = [b for b in battles if b.len_a is not None and b.len_b is not None]
    if len(bs) != len(battles):
        raise AligngoalsError(
            f"{len(battles) - len(bs)} of {len(battles)} battles have no answer lengths.",
            hint="The length-controlled win rate needs len_a and len_b on every battle.",
        )
    n = len(bs)
    raw = win_rate([b.outcome for b in bs], alpha)["value"]
    y = np.array([b.outcome for b in bs], dtype=float)
    d = np.array([b.len_a - b.len_b for b in bs], dtype=float)  # type: ignore[operator]
    withheld = lc_withheld_reason(d)
    if withheld:
        return {"value": None, "ci_low": None, "ci_high": None, "n": n, "length_coef": None, "raw_win_rate": raw,
                "withheld": withheld}
    sd = float(d.std())
    z = np.tanh(d / sd) if sd > 0 else np.zeros_like(d)
    x = np.column_stack([np.ones(n), z])
    beta = _fit_logistic(x, y, l2)
    value = float(special.expit(beta[0]))
    if n > 1 and n_boot > 0:
        rng = np.random.default_rng(seed)
        boots = np.empty(n_boot)
        for i in range(n_boot):
            idx = rng.integers(0, n, n)
            boots[i] = special.expit(_fit_logistic(x[idx], y[idx], l2, beta)[0])
        lo, hi = (float(v) for v in np.quantile(boots, [alpha / 2, 1 - alpha / 2]))
    else:
        lo = hi = value
    return {"value": value, "ci_low": lo, "ci_high": hi, "n": n, "length_coef": float(beta[1]),
            "raw_win_rate": raw, "withheld": None}


# --------------------------------------------------------------------------------------------
# Elo
# --------------------------------------------------------------------------------------------
def elo_ratings(
    battles: Sequence[Battle],
    *,
    k: float = 16.0,
    n_permutations: int = 100,
    seed: int = 0,
    models: Optional[Sequence[str]] = None,
    alpha: float = 0.05,
) -> dict[str, dict]:
    """Online Elo, averaged over random orders of the battles.

    Online Elo depends on the order in which battles are played, which has no
    meaning for judge verdicts; averaging the final ratings over
    ``n_permutations`` random orders removes that arbitrariness (the approach of
    the Chatbot Arena analysis). Every model starts at 1000; each battle moves the
    two ratings by ``k * (score - expected)``. ``k`` trades responsiveness for noise:
    the default 16 suits tens to hundreds of battles (the Arena used 4 on
    hundreds of thousands).

    Returns ``{model: {"rating", "order_low", "order_high", "n"}}``; the low/high
    values are the 2.5% and 97.5% quantiles over orders, a measure of order
    sensitivity, not a confidence interval (use :func:`bradley_terry` for that).
    """
    if k <= 0:
        raise AligngoalsError(f"The Elo K-factor must be positive, got {k}.")
    if n_permutations < 1:
        raise AligngoalsError(f"n_permutations must be at least 1, got {n_permutations}.")
    names = _models_of(battles, models)
    m = len(names)
    if not battles:
        return {x: {"rating": INIT_RATING, "order_low": INIT_RATING, "order_high": INIT_RATING, "n": 0} for x in names}
    a, b, s = _encode(battles, names)
    rng = np.random.default_rng(seed)
    t = len(battles)
    orders = np.stack([rng.permutation(t) for _ in range(n_permutations)])  # (P, T)
    ratings = np.full((n_permutations, m), INIT_RATING)
    rows = np.arange(n_permutations)
    # One step plays the t-th battle of every permutation at once.
    for step in range(t):
        idx = orders[:, step]
        ia, ib, sc = a[idx], b[idx], s[idx]
        ra, rb = ratings[rows, ia], ratings[rows, ib]
        expected = 1.0 / (1.0 + ELO_BASE ** ((rb - ra) / ELO_SCALE))
        delta = k * (sc - expected)
        ratings[rows, ia] = ra + delta
        ratings[rows, ib] = rb - delta
    counts = np.bincount(a, minlength=m) + np.bincount(b, minlength=m)
    mean = ratings.mean(axis=0)
    lo, hi = np.quantile(ratings, [alpha / 2, 1 - alpha / 2], axis=0)
    return {x: {"rating": float(mean[i]), "order_low": float(lo[i]), "order_high": float(hi[i]), "n": int(counts[i])}
            for i, x in enumerate(names)}


# --------------------------------------------------------------------------------------------
# Bradley-Terry
# --------------------------------------------------------------------------------------------
TieModel = Literal["half", "davidson"]


def _bt_cells(a: np.ndarray, b: np.ndarray, s: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct battle kinds and how often each occurs: ``(cells, counts)``.

    A cell is ``a * 3m + b * 3 + outcome_code``. Resampling battles with replacement
    is the same as drawing the cell counts from a multinomial, which makes a
    bootstrap replicate cost O(distinct cells) instead of O(battles).
    """
    code = np.rint(s * 2).astype(np.int64)  # 0 loss, 1 tie, 2 win for model_a
    keys = a * (3 * m) + b * 3 + code
    cells, counts = np.unique(keys, return_counts=True)
    return cells, counts.astype(float)


def _bt_counts(cells: np.ndarray, weights: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """``(wins, ties)``: ``wins[i, j]`` battles i won against j; ``ties[i, j]`` ties between them (symmetric)."""
    a, rest = np.divmod(cells, 3 * m)
    b, code = np.divmod(rest, 3)
    wins = np.zeros((m, m))
    ties = np.zeros((m, m))
    np.add.at(wins, (a, b), weights * (code == 2))
    np.add.at(wins, (b, a), weights * (code == 0))
    np.add.at(ties, (a, b), weights * (code == 1))
    np.add.at(ties, (b, a), weights * (code == 1))
    return wins, ties


def _prior(beta: np.ndarray, virtual_ties: float) -> tuple[float, np.ndarray]:
    """Log-density and gradient of "one virtual tie against an average player" per model."""
    if virtual_ties <= 0:
        return 0.0, np.zeros_like(beta)
    lp = virtual_ties * 0.5 * (special.log_expit(beta) + special.log_expit(-beta)).sum()
    grad = virtual_ties * 0.5 * (special.expit(-beta) - special.expit(beta))
    return float(lp), grad


def _fit_bt_half(wins: np.ndarray, ties: np.ndarray, virtual_ties: float, beta0: np.ndarray) -> tuple[np.ndarray, float]:
    """Newton's method on the (concave) log-likelihood; a tie is half a win for each side.

    Why Newton and not a generic optimiser: the problem has a handful of
    parameters and an exact Hessian, so it converges in a few steps, which keeps
    a 1000-replicate bootstrap fast.
    """
    w = wins + 0.5 * ties
    n = w + w.T

    def loglik(beta: np.ndarray) -> float:
        return float((w * special.log_expit(beta[:, None] - beta[None, :])).sum()) + _prior(beta, virtual_ties)[0]

    beta = beta0.copy()
    current = loglik(beta)
    for _ in range(100):
        sig = special.expit(beta[:, None] - beta[None, :])  # sig[i, j] = P(i beats j)
        grad = (w * sig.T).sum(axis=1) - (w.T * sig).sum(axis=1) + _prior(beta, virtual_ties)[1]
        c = n * sig * sig.T
        hess = c - np.diag(c.sum(axis=1))
        if virtual_ties > 0:
            hess -= np.diag(virtual_ties * special.expit(beta) * special.expit(-beta))
        # Without a prior the Hessian is singular along "add a constant to everyone": lstsq takes the minimum-norm step.
        step = -np.linalg.lstsq(hess, grad, rcond=None)[0]
        t = 1.0
        while True:
            cand = beta + t * step
            value = loglik(cand)
            if value >= current - 1e-12 or t < 1e-6:
                break
            t *= 0.5
        beta, improvement, current = cand, value - current, value
        if np.max(np.abs(t * step)) < 1e-9 or abs(improvement) < 1e-13:
            break
    return beta, math.nan


def _fit_bt_davidson(wins: np.ndarray, ties: np.ndarray, virtual_ties: float, beta0: np.ndarray,
                     log_nu0: float) -> tuple[np.ndarray, float]:
    m = wins.shape[0]
    iu = np.triu_indices(m, 1)
    w_ij, w_ji, t_ij = wins[iu], wins.T[iu], ties[iu]
    n_ij = w_ij + w_ji + t_ij
    keep = n_ij > 0
    i_idx, j_idx = iu[0][keep], iu[1][keep]
    w_ij, w_ji, t_ij, n_ij = w_ij[keep], w_ji[keep], t_ij[keep], n_ij[keep]

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        beta, log_nu = theta[:m], theta[m]
        bi, bj = beta[i_idx], beta[j_idx]
        mid = 0.5 * (bi + bj)
        terms = np.stack([bi, bj, log_nu + mid])
        log_d = special.logsumexp(terms, axis=0)
        ll = float((w_ij * bi + w_ji * bj + t_ij * (log_nu + mid) - n_ij * log_d).sum())
        p_i, p_j, p_t = np.exp(terms - log_d)
        g_i = w_ij + 0.5 * t_ij - n_ij * (p_i + 0.5 * p_t)
        g_j = w_ji + 0.5 * t_ij - n_ij * (p_j + 0.5 * p_t)
        grad = np.zeros(m + 1)
        np.add.at(grad, i_idx, g_i)
        np.add.at(grad, j_idx, g_j)
        grad[m] = float((t_ij - n_ij * p_t).sum())
        lp, gp = _prior(beta, virtual_ties)
        grad[:m] += gp
        return -(ll + lp), -grad

    theta0 = np.concatenate([beta0, [log_nu0]])
    # BFGS (pure numpy) is much faster than L-BFGS-B's Fortran driver for a handful of parameters.
    res = optimize.minimize(nll, theta0, jac=True, method="BFGS", options={"maxiter": 1000, "gtol": 1e-7})
    return res.x[:m], float(res.x[m])


def _to_elo_scale(beta: np.ndarray, anchor: Optional[int]) -> np.ndarray:
    centre = beta[anchor] if anchor is not None else beta.mean()
    return INIT_RATING + ELO_SCALE / _LN_BASE * (beta - centre)


def bradley_terry(
    battles: Sequence[Battle],
    *,
    ties: TieModel = "half",
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    virtual_ties: float = 1.0,
    baseline: Optional[str] = None,
    models: Optional[Sequence[str]] = None,
) -> dict:
    """Bradley-Terry maximum-likelihood ratings with percentile-bootstrap intervals.

    Model: ``P(i beats j) = 1 / (1 + 10 ** ((R_j - R_i) / 400))`` on the Elo scale.
    Unlike online Elo it does not depend on battle order and it has a likelihood,
    hence a proper interval: the battles are resampled with replacement
    ``n_boot`` times and the model refitted.

    Ties (``ties``):

    * ``"half"`` (default): a tie counts as half a win for each side, the
      convention of the Chatbot Arena leaderboard; ties pull ratings together.
    * ``"davidson"``: Davidson's (1970) extension with a tie parameter ``nu``:
      ``P(i ~ j) = nu * sqrt(pi_i pi_j) / (pi_i + pi_j + nu * sqrt(pi_i pi_j))``.
      Ratings keep the same meaning and ``nu`` (reported) measures how tie-prone
      the judge is; use it when a judge calls many ties.

    ``virtual_ties`` gives every model that many ties against an imaginary
    player of rating 1000 (a weak prior). Without it a model that wins or loses
    every battle has an infinite rating; with the default of one tie its pull is
    one battle's worth, negligible once a model has tens of battles.

    Ratings are centred on a mean of 1000, or so that ``baseline`` sits at 1000.
    Returns ``{"ratings": {model: {"rating", "ci_low", "ci_high", "n"}}, "ties", "nu", "n_battles", "n_boot"}``.
    """
    if ties not in ("half", "davidson"):
        raise AligngoalsError(f"Unknown tie model {ties!r}.", hint="Use 'half' or 'davidson'.")
    names = _models_of(battles, models)
    if baseline is not None and baseline not in names:
        raise AligngoalsError(f"Baseline {baseline!r} is not among the models ({', '.join(names)}).")
    anchor = names.index(baseline) if baseline is not None else None
    m = len(names)
    if m == 0:
        return {"ratings": {}, "ties": ties, "nu": None, "n_battles": 0, "n_boot": n_boot}
    a, b, s = _encode(battles, names)
    counts = np.bincount(a, minlength=m) + np.bincount(b, minlength=m)
    cells, cell_counts = _bt_cells(a, b, s, m)

    def fit(weights: np.ndarray, beta0: np.ndarray, log_nu0: float) -> tuple[np.ndarray, float]:
        wins, tie_counts = _bt_counts(cells, weights, m)
        if ties == "half":
            return _fit_bt_half(wins, tie_counts, virtual_ties, beta0)
        return _fit_bt_davidson(wins, tie_counts, virtual_ties, beta0, log_nu0)

    beta, log_nu = fit(cell_counts, np.zeros(m), 0.0)
    point = _to_elo_scale(beta, anchor)
    t = len(battles)
    if t > 1 and n_boot > 0:
        rng = np.random.default_rng(seed)
        probs = cell_counts / t
        boot = np.empty((n_boot, m))
        for r in range(n_boot):
            # Resampling t battles with replacement = multinomial counts over the distinct battle kinds.
            weights = rng.multinomial(t, probs).astype(float)
            bb, _ = fit(weights, beta, 0.0 if math.isnan(log_nu) else log_nu)
            boot[r] = _to_elo_scale(bb, anchor)
        lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    else:
        lo, hi = point.copy(), point.copy()
    ratings = {x: {"rating": float(point[i]), "ci_low": float(lo[i]), "ci_high": float(hi[i]), "n": int(counts[i])}
               for i, x in enumerate(names)}
    return {"ratings": ratings, "ties": ties, "nu": None if math.isnan(log_nu) else math.exp(log_nu),
            "n_battles": t, "n_boot": n_boot if t > 1 else 0}


def expected_score(rating_a: float, rating_b: float) -> float:
    """Probability that a player rated ``rating_a`` beats one rated ``rating_b`` (Elo scale)."""
    return 1.0 / (1.0 + ELO_BASE ** ((rating_b - rating_a) / ELO_SCALE))


# --------------------------------------------------------------------------------------------
# leaderboard
# --------------------------------------------------------------------------------------------
@dataclass
class LeaderboardRow:
    model: str
    rank: int
    """1 + the number of models whose interval lies entirely above this one's (ties share a rank)."""
    rating: float
    ci_low: float
    ci_high: float
    elo: float
    elo_order_low: float
    elo_order_high: float
    n: int
    wins: int
    ties: int
    losses: int
    score_rate: dict
    """Share of all its battles won (ties half) with a Wilson interval; depends on the opponents met."""
    vs_baseline: Optional[dict] = None
    """``{"win_rate": {...}, "lc_win_rate": {...}}`` against the baseline, when one is named."""


@dataclass
class Leaderboard:
    rows: list[LeaderboardRow]
    n_battles: int
    ties: str
    nu: Optional[float]
    elo_k: float
    n_boot: int
    baseline: Optional[str] = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "n_battles": self.n_battles,
            "method": {"bradley_terry": {"ties": self.ties, "nu": self.nu, "n_boot": self.n_boot,
                                         "interval": "95% percentile bootstrap over battles"},
                       "elo": {"k": self.elo_k, "averaged_over": "random battle orders"}},
            "baseline": self.baseline,
            "models": [asdict(r) for r in self.rows],
            **self.extra,
        }


def rank_by_intervals(low: dict[str, float], high: dict[str, float]) -> dict[str, int]:
    """Rank = 1 + the number of models that are better beyond doubt (their lower bound above this upper bound)."""
    return {m: 1 + sum(1 for o in low if o != m and low[o] > high[m]) for m in low}


def leaderboard(
    battles: Sequence[Battle],
    *,
    baseline: Optional[str] = None,
    ties: TieModel = "half",
    elo_k: float = 16.0,
    n_permutations: int = 100,
    n_boot: int = 1000,
    seed: int = 0,
    models: Optional[Sequence[str]] = None,
) -> Leaderboard:
    """Bradley-Terry ratings with intervals, Elo, win counts and, with a baseline, (length-controlled) win rates."""
    if not battles:
        raise AligngoalsError("No battles to rate.",
                              hint="Every comparison was a parse failure or no runs shared items; see the judge summary.")
    names = _models_of(battles, models)
    bt = bradley_terry(battles, ties=ties, n_boot=n_boot, seed=seed, baseline=baseline, models=names)
    elo = elo_ratings(battles, k=elo_k, n_permutations=n_permutations, seed=seed, models=names)
    ranks = rank_by_intervals({x: r["ci_low"] for x, r in bt["ratings"].items()},
                              {x: r["ci_high"] for x, r in bt["ratings"].items()})
    rows = []
    for x in names:
        mine = [bb if bb.model_a == x else bb.flipped() for bb in battles if x in (bb.model_a, bb.model_b)]
        wr = win_rate([bb.outcome for bb in mine])
        vs = None
        if baseline is not None and x != baseline:
            against = outcomes_vs(battles, x, baseline)
            vs = {"win_rate": win_rate([bb.outcome for bb in against])}
            if against and all(bb.len_a is not None and bb.len_b is not None for bb in against):
                vs["lc_win_rate"] = length_controlled_win_rate(against, n_boot=n_boot, seed=seed)
        r = bt["ratings"][x]
        e = elo[x]
        rows.append(LeaderboardRow(
            model=x, rank=ranks[x], rating=r["rating"], ci_low=r["ci_low"], ci_high=r["ci_high"],
            elo=e["rating"], elo_order_low=e["order_low"], elo_order_high=e["order_high"], n=r["n"],
            wins=wr["wins"], ties=wr["ties"], losses=wr["losses"],
            score_rate={k: wr[k] for k in ("value", "ci_low", "ci_high", "n")}, vs_baseline=vs,
        ))
    rows.sort(key=lambda r: (-r.rating, r.model))
    return Leaderboard(rows=rows, n_battles=len(battles), ties=ties, nu=bt["nu"], elo_k=elo_k,
                       n_boot=bt["n_boot"], baseline=baseline)


# --------------------------------------------------------------------------------------------
# agreement with human labels
# --------------------------------------------------------------------------------------------
LABELS = ("A", "B", "tie")


def _norm_label(x: Any) -> Optional[str]:
    if x is None:
        return None
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return {1.0: "A", 0.0: "B", 0.5: "tie"}.get(float(x))
    v = str(x).strip().lower()
    return {"a": "A", "model_a": "A", "b": "B", "model_b": "B", "tie": "tie", "c": "tie", "draw": "tie"}.get(v)


def cohen_kappa(a: Sequence[str], b: Sequence[str], labels: Sequence[str] = LABELS) -> Optional[float]:
    """Cohen's kappa of two raters over the same items: (p_o - p_e) / (1 - p_e); None when p_e = 1."""
    if len(a) != len(b):
        raise AligngoalsError("Cohen's kappa needs two label lists of the same length.")
    n = len(a)
    if n == 0:
        return None
    idx = {l: i for i, l in enumerate(labels)}
    conf = np.zeros((len(labels), len(labels)))
    for x, y in zip(a, b):
        conf[idx[x], idx[y]] += 1
    p_o = np.trace(conf) / n
    p_e = float((conf.sum(axis=1) / n) @ (conf.sum(axis=0) / n))
    if p_e >= 1.0:
        return None
    return float((p_o - p_e) / (1 - p_e))


def agreement(judge: Sequence[Any], human: Sequence[Any]) -> dict:
    """Agreement of judge verdicts with human labels on the same, identically oriented, comparisons.

    Labels are ``"A"``, ``"B"`` or ``"tie"`` (also ``model_a``/``model_b``/``C`` or
    outcomes 1/0.5/0); None (a parse failure, a missing label) drops the item and
    is counted in ``n_missing``. As in the MT-Bench paper (Zheng et al. 2023):

    * ``with_ties``: share of items where both give the same label, ties included;
    * ``without_ties``: the same over items where neither says tie;
    * ``kappa``: Cohen's kappa over the three labels (chance-corrected agreement).
    """
    if len(judge) != len(human):
        raise AligngoalsError(f"Judge and human label lists differ in length ({len(judge)} vs {len(human)}).")
    pairs = []
    missing = 0
    for j, h in zip(judge, human):
        jl, hl = _norm_label(j), _norm_label(h)
        if jl is None or hl is None:
            missing += 1
        else:
            pairs.append((jl, hl))
    n = len(pairs)
    no_tie = [(x, y) for x, y in pairs if x != "tie" and y != "tie"]
    return {
        "n": n,
        "n_missing": missing,
        "with_ties": (sum(x == y for x, y in pairs) / n) if n else None,
        "n_without_ties": len(no_tie),
        "without_ties": (sum(x == y for x, y in no_tie) / len(no_tie)) if no_tie else None,
        "kappa": cohen_kappa([x for x, _ in pairs], [y for _, y in pairs]),
    }
