"""Ratings on synthetic battles drawn from known strengths: BT recovers them, Elo agrees, intervals shrink."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from aligngoals.errors import AligngoalsError
from aligngoals.judges import ratings as R

TRUE = {"m0": 0.0, "m1": 0.6, "m2": 1.2, "m3": -0.8, "m4": 1.9}
NAMES = list(TRUE)
LN10_400 = math.log(10) / 400  # Elo points -> natural log-odds


def draw(n: int, seed: int, *, tie: float = 0.0, davidson_nu: float | None = None) -> list[R.Battle]:
    """Battles between random pairs: Bradley-Terry outcomes (optionally random ties, or Davidson's model)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        i, j = rng.choice(len(NAMES), 2, replace=False)
        bi, bj = TRUE[NAMES[i]], TRUE[NAMES[j]]
        if davidson_nu is not None:
            pi, pj, pt = math.exp(bi), math.exp(bj), davidson_nu * math.exp((bi + bj) / 2)
            u = rng.random() * (pi + pj + pt)
            o = 1.0 if u < pi else 0.0 if u < pi + pj else 0.5
        elif rng.random() < tie:
            o = 0.5
        else:
            o = float(rng.random() < 1 / (1 + math.exp(-(bi - bj))))
        out.append(R.Battle(NAMES[i], NAMES[j], o, item=str(len(out))))
    return out


def natural(bt: dict) -> np.ndarray:
    """BT ratings back on the natural log-odds scale, centred like TRUE."""
    est = np.array([bt["ratings"][m]["rating"] for m in NAMES]) * LN10_400
    truth = np.array(list(TRUE.values()))
    return est - est.mean() + truth.mean()


def test_bradley_terry_recovers_strengths_as_battles_grow():
    truth = np.array(list(TRUE.values()))
    errors = []
    for n in (200, 2000, 20000):
        bt = R.bradley_terry(draw(n, seed=n), n_boot=0)
        errors.append(float(np.abs(natural(bt) - truth).max()))
    assert errors[0] > errors[2], errors
    assert errors[2] < 0.1, errors
    big = R.bradley_terry(draw(20000, seed=1), n_boot=0)
    order = sorted(NAMES, key=lambda m: -big["ratings"][m]["rating"])
    assert order == sorted(NAMES, key=lambda m: -TRUE[m])


def test_intervals_shrink_and_cover_the_truth():
    small = R.bradley_terry(draw(400, seed=3), n_boot=300, seed=0, baseline="m0")
    large = R.bradley_terry(draw(4000, seed=4), n_boot=300, seed=0, baseline="m0")
    width = lambda bt: np.mean([r["ci_high"] - r["ci_low"] for m, r in bt["ratings"].items() if m != "m0"])  # noqa: E731
    # Ten times the battles: about sqrt(10) ~ 3.2 times narrower.
    assert width(large) < 0.45 * width(small)
    # Anchored at the baseline, each interval should contain the true difference to m0 (5 checks at 95%).
    covered = 0
    for m in NAMES[1:]:
        r = large["ratings"][m]
        true_pts = 1000 + (TRUE[m] - TRUE["m0"]) / LN10_400
        covered += r["ci_low"] <= true_pts <= r["ci_high"]
    assert covered >= 3
    assert large["ratings"]["m0"]["rating"] == pytest.approx(1000)


def test_elo_and_bradley_terry_agree_in_order():
    battles = draw(3000, seed=5)
    bt = R.bradley_terry(battles, n_boot=0)
    elo = R.elo_ratings(battles, k=8, n_permutations=30, seed=0)
    bt_order = sorted(NAMES, key=lambda m: -bt["ratings"][m]["rating"])
    elo_order = sorted(NAMES, key=lambda m: -elo[m]["rating"])
    assert bt_order == elo_order == sorted(NAMES, key=lambda m: -TRUE[m])
    assert sum(e["n"] for e in elo.values()) == 2 * len(battles)


def test_elo_is_averaged_over_orders_and_conserves_points():
    # Two equal players, alternating results: the order-averaged ratings sit at 1000.
    battles = [R.Battle("x", "y", float(i % 2)) for i in range(200)]
    elo = R.elo_ratings(battles, k=16, n_permutations=50, seed=1)
    assert elo["x"]["rating"] == pytest.approx(1000, abs=8)
    assert elo["x"]["rating"] + elo["y"]["rating"] == pytest.approx(2000)
    # One fixed order makes the last results dominate; averaging over orders removes that.
    wins_last = [R.Battle("x", "y", 0.0)] * 50 + [R.Battle("x", "y", 1.0)] * 50
    assert R.elo_ratings(wins_last, n_permutations=100)["x"]["rating"] == pytest.approx(1000, abs=15)
    with pytest.raises(AligngoalsError):
        R.elo_ratings(battles, k=0)


def test_ties_half_and_davidson():
    # All ties: every rating equal.
    ties = [R.Battle(a, b, 0.5) for a, b in [("a", "b"), ("b", "c"), ("a", "c")] * 10]
    bt = R.bradley_terry(ties, n_boot=50)
    assert {round(r["rating"], 6) for r in bt["ratings"].values()} == {1000.0}
    # Davidson recovers its tie parameter and the strengths from Davidson data.
    data = draw(20000, seed=6, davidson_nu=0.8)
    dv = R.bradley_terry(data, ties="davidson", n_boot=0)
    assert dv["nu"] == pytest.approx(0.8, abs=0.06)
    assert np.abs(natural(dv) - np.array(list(TRUE.values()))).max() < 0.12
    with pytest.raises(AligngoalsError, match="tie model"):
        R.bradley_terry(data, ties="nope")  # type: ignore[arg-type]


def test_undefeated_model_stays_finite_with_the_prior():
    battles = [R.Battle("champ", "other", 1.0)] * 8
    with_prior = R.bradley_terry(battles, n_boot=0)["ratings"]
    gap = with_prior["champ"]["rating"] - with_prior["other"]["rating"]
    assert 200 < gap < 1000
    without = R.bradley_terry(battles, n_boot=0, virtual_ties=0.0)["ratings"]
    assert without["champ"]["rating"] - without["other"]["rating"] > 2 * gap


def test_win_rate_counts_ties_as_half_with_wilson_interval():
    wr = R.win_rate([1, 1, 1, 1, 1, 1, 1, 1, 0, 0])
    assert wr["value"] == 0.8 and (wr["wins"], wr["ties"], wr["losses"]) == (8, 0, 2)
    # Wilson 95% for 8/10 (Wilson 1927; z = 1.95996): [0.4902, 0.9433].
    assert wr["ci_low"] == pytest.approx(0.4902, abs=1e-4) and wr["ci_high"] == pytest.approx(0.9433, abs=1e-4)
    wt = R.win_rate([1, 0.5, 0.5, 0])
    assert wt["value"] == 0.5 and wt["ties"] == 2
    # Ties count half: 1 win + 2 ties + 1 loss = 2 of 4; Wilson 95% for 2/4 is [0.1500, 0.8500].
    assert (wt["ci_low"], wt["ci_high"]) == (pytest.approx(0.1500, abs=1e-4), pytest.approx(0.8500, abs=1e-4))
    # 3 wins, 2 ties, 5 losses -> (3 + 1) / 10 = 0.4.
    assert R.win_rate([1, 1, 1, 0.5, 0.5, 0, 0, 0, 0, 0])["value"] == pytest.approx(0.4)
    allwin = R.win_rate([1] * 5)
    assert allwin["ci_high"] == 1.0 and allwin["ci_low"] < 0.6  # not degenerate at the edge
    assert R.win_rate([])["value"] is None
    with pytest.raises(AligngoalsError):
        R.win_rate([0.3])


def test_length_controlled_win_rate_removes_a_length_preference():
    rng = np.random.default_rng(7)
    battles = []
    for i in range(600):
        la, lb = rng.integers(100, 1500), rng.integers(100, 1500)
        # The model is usually longer than the baseline; the judge only likes length
        # (equal quality), so the honest answer is 0.5.
        la = la + 400
        p = 1 / (1 + math.exp(-2.5 * math.tanh((la - lb) / 500)))
        battles.append(R.Battle("model", "base", float(rng.random() < p), float(la), float(lb)))
    raw = R.win_rate([b.outcome for b in battles])["value"]
    lc = R.length_controlled_win_rate(battles, n_boot=200)
    assert raw > 0.65
    assert lc["value"] == pytest.approx(0.5, abs=0.08)
    assert lc["ci_low"] < lc["value"] < lc["ci_high"] and lc["length_coef"] > 1
    # When quality, not length, decides, the length-controlled rate stays near the raw one.
    fair = [R.Battle("model", "base", float(rng.random() < 0.7), float(rng.integers(100, 1500)),
                     float(rng.integers(100, 1500))) for _ in range(600)]
    lc2 = R.length_controlled_win_rate(fair, n_boot=100)
    assert lc2["value"] == pytest.approx(lc2["raw_win_rate"], abs=0.04)
    with pytest.raises(AligngoalsError, match="lengths"):
        R.length_controlled_win_rate([R.Battle("a", "b", 1.0)])


def test_length_controlled_win_rate_is_withheld_when_not_identified():
    """10 battles, 2 wins and 8 ties, the model always longer: the rate at equal length is an
    extrapolation (it moved from 0.35 to 0.98 with which items were the wins), so it is withheld."""
    few = [R.Battle("m", "b", 1.0 if i < 2 else 0.5, 300.0 + 10 * i, 100.0) for i in range(10)]
    lc = R.length_controlled_win_rate(few, n_boot=50)
    assert lc["value"] is None and "only 10 battles" in lc["withheld"] and lc["raw_win_rate"] == pytest.approx(0.6)
    one_sided = [R.Battle("m", "b", float(i % 3 == 0), 300.0 + i, 100.0) for i in range(200)]
    lc = R.length_controlled_win_rate(one_sided, n_boot=50)
    assert lc["value"] is None and "shorter in 0" in lc["withheld"]
    both = one_sided + [R.Battle("m", "b", float(i % 2), 50.0, 100.0 + i) for i in range(R.LC_MIN_PER_SIDE)]
    lc = R.length_controlled_win_rate(both, n_boot=50)
    assert lc["value"] is not None and lc["withheld"] is None


def test_outcomes_vs_orients_battles():
    bs = [R.Battle("a", "b", 1.0, 10, 20), R.Battle("b", "a", 1.0, 30, 5), R.Battle("a", "c", 0.0)]
    got = R.outcomes_vs(bs, "a", "b")
    assert [(b.model_a, b.outcome, b.len_a) for b in got] == [("a", 1.0, 10), ("a", 0.0, 5)]


def test_leaderboard_structure_and_ranks():
    battles = draw(1500, seed=8)
    battles = [R.Battle(b.model_a, b.model_b, b.outcome, 100.0, 120.0, b.item) for b in battles]
    board = R.leaderboard(battles, baseline="m0", n_boot=200, n_permutations=20)
    d = board.to_dict()
    json.dumps(d)  # JSON-ready
    assert [r["model"] for r in d["models"]] == sorted(NAMES, key=lambda m: -TRUE[m])
    assert d["models"][0]["rank"] == 1
    ranks = {r["model"]: r["rank"] for r in d["models"]}
    assert ranks["m3"] == 5  # clearly the weakest: every other interval lies above it
    base_row = next(r for r in d["models"] if r["model"] == "m0")
    assert base_row["rating"] == pytest.approx(1000) and base_row["vs_baseline"] is None
    m4 = next(r for r in d["models"] if r["model"] == "m4")
    assert m4["vs_baseline"]["win_rate"]["value"] > 0.75 and "lc_win_rate" in m4["vs_baseline"]
    assert m4["wins"] + m4["ties"] + m4["losses"] == m4["n"]
    with pytest.raises(AligngoalsError, match="No battles"):
        R.leaderboard([])


def test_rank_by_intervals_shares_ranks_when_intervals_overlap():
    ranks = R.rank_by_intervals({"a": 1100, "b": 1050, "c": 900}, {"a": 1200, "b": 1150, "c": 1000})
    assert ranks == {"a": 1, "b": 1, "c": 3}


def test_agreement_and_cohen_kappa():
    judge = ["A", "B", "tie", "A", "A", None, "B"]
    human = ["A", "B", "A", "B", "A", "A", "tie"]
    ag = R.agreement(judge, human)
    assert ag["n"] == 6 and ag["n_missing"] == 1
    assert ag["with_ties"] == pytest.approx(3 / 6)
    assert ag["n_without_ties"] == 4 and ag["without_ties"] == pytest.approx(3 / 4)
    # By hand: p_o = 3/6; both raters' marginals are A 3, B 2, tie 1, so p_e = (9 + 4 + 1) / 36 = 14/36;
    # kappa = (1/2 - 14/36) / (1 - 14/36) = (4/36) / (22/36) = 2/11.
    assert ag["kappa"] == pytest.approx(2 / 11)
    sk = pytest.importorskip("sklearn.metrics")
    pairs = [(j, h) for j, h in zip(judge, human) if j is not None]
    expected = sk.cohen_kappa_score([p[0] for p in pairs], [p[1] for p in pairs])
    assert ag["kappa"] == pytest.approx(expected)
    # Outcome numbers and winner words are accepted too.
    assert R.agreement([1, 0.5, 0], ["model_a", "tie", "B"])["with_ties"] == 1.0
    assert R.cohen_kappa(["A", "A"], ["A", "A"]) is None  # chance agreement is 1: undefined


def test_battle_validation():
    with pytest.raises(AligngoalsError):
        R.Battle("a", "a", 1.0)
    with pytest.raises(AligngoalsError):
        R.Battle("a", "b", 0.7)
    assert R.Battle.from_winner("a", "b", "model_b").outcome == 0.0
    assert R.Battle.from_winner("a", "b", "tie").flipped() == R.Battle("b", "a", 0.5)
