"""Questionnaire scoring rules and statistics against hand-computed and published numbers (no model)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aligngoals.values.questionnaires import Instrument, Scorer, cronbach_alpha, icc, js_distance
from aligngoals.values.questionnaires.prompts import (
    Variant,
    design_variants,
    label_distribution,
    parse_answer,
    present_options,
)
from aligngoals.values.questionnaires.scoring import keyed_matrix, pooled_scores
from aligngoals.values.questionnaires.stats import bootstrap_intervals, choose_resample, compare_profiles

AGREE5 = {"points": [{"value": v, "label": lab} for v, lab in
                     enumerate(["Strongly disagree", "Disagree", "Undecided", "Agree", "Strongly agree"], start=1)]}


def make(items, rule="mean", groups=None, indices=None, scale=AGREE5):
    return Instrument.model_validate({
        "name": "t", "scale": scale, "items": items,
        "scoring": {"rule": rule, "groups": groups or {}, "indices": indices or {}},
    })


def it(i, dim, rev=False):
    return {"id": i, "text": f"item {i}", "dimension": dim, "reverse": rev}


# --- rules ------------------------------------------------------------------------------------------
def test_mean_rule_with_reverse_keying_by_hand():
    inst = make([it("a1", "A"), it("a2", "A", rev=True), it("b1", "B"), it("b2", "B")])
    raw = [[5, 2, 4, 1]]
    X = keyed_matrix(inst, raw)
    # a2 is reversed on 1..5: 1 + 5 - 2 = 4
    assert X.tolist() == [[5, 4, 4, 1]]
    s = Scorer(inst).score(X[0])
    assert s == {"A": 4.5, "B": 2.5}  # (5+4)/2, (4+1)/2


def test_centered_rule_is_dimension_mean_minus_mrat():
    # PVQ-style: 6-point scale, no reversed items, three values with 2, 3 and 1 items.
    pvq6 = {"points": [{"value": v, "label": f"L{v}"} for v in range(1, 7)]}
    inst = make([it("p1", "Power"), it("p2", "Power"), it("u1", "Univ"), it("u2", "Univ"), it("u3", "Univ"), it("s1", "Sec")],
                rule="centered", groups={"Self-Transcendence": ["Univ"], "Mixed": ["Power", "Sec"]}, scale=pvq6)
    x = np.array([2, 4, 6, 5, 4, 3], dtype=float)
    s = Scorer(inst).score(x)
    mrat = (2 + 4 + 6 + 5 + 4 + 3) / 6  # 4.0
    assert s["Power"] == pytest.approx(3.0 - mrat)  # -1
    assert s["Univ"] == pytest.approx(5.0 - mrat)  # +1
    assert s["Sec"] == pytest.approx(3.0 - mrat)
    # groups pool the items of their members: Mixed = mean(2, 4, 3) = 3
    assert s["Self-Transcendence"] == pytest.approx(1.0)
    assert s["Mixed"] == pytest.approx(3.0 - mrat)
    raw = Scorer(inst).raw_means(x)
    assert raw["Univ"] == pytest.approx(5.0) and raw["Mixed"] == pytest.approx(3.0)
    # centering removes a constant shift in scale use (acquiescence); raw means keep it
    assert Scorer(inst).score(x - 1) == pytest.approx(s)
    assert Scorer(inst).raw_means(x - 1)["Univ"] == pytest.approx(4.0)


def test_index_rule_vsm_pdi_by_hand():
    # PDI = 35(m07 - m02) + 25(m20 - m23) + C; two respondents, answers in VSM codes.
    inst = make([it("m02", "PD"), it("m07", "PD"), it("m20", "PD"), it("m23", "PD")], rule="index",
                indices={"PDI": {"name": "Power Distance", "terms": {"m07": 35, "m02": -35, "m20": 25, "m23": -25},
                                 "constant": 20}})
    X = np.array([[1, 3, 4, 2],
                  [2, 4, 3, 2]], dtype=float)
    # item means: m02 = 1.5, m07 = 3.5, m20 = 3.5, m23 = 2.0
    expected = 35 * (3.5 - 1.5) + 25 * (3.5 - 2.0) + 20  # 70 + 37.5 + 20 = 127.5
    assert pooled_scores(Scorer(inst), X)["PDI"] == pytest.approx(expected)
    # a missing item makes the index undefined rather than silently biased
    assert math.isnan(Scorer(inst).score(np.array([1, 3, np.nan, 2]))["PDI"])


def test_missing_answers_are_left_out_not_imputed():
    inst = make([it("a1", "A"), it("a2", "A"), it("b1", "B")])
    s = Scorer(inst).score(np.array([2.0, np.nan, 5.0]))
    assert s["A"] == 2.0 and s["B"] == 5.0
    assert math.isnan(Scorer(inst).score(np.array([np.nan, np.nan, 5.0]))["A"])


def test_instrument_validation_names_the_problem():
    with pytest.raises(Exception, match="m99"):
        make([it("m01", "X")], rule="index", indices={"I": {"name": "I", "terms": {"m99": 1}}})
    with pytest.raises(Exception, match="unique"):
        make([it("a", "A"), it("a", "B")])
    with pytest.raises(Exception, match="increase"):
        make([it("a", "A")], scale={"points": [{"value": 2, "label": "x"}, {"value": 1, "label": "y"}]})


# --- statistics -----------------------------------------------------------------------------------------
# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges. Published: ICC(2,1) = .29,
# ICC(3,1) = .71, ICC(3,4) = .91 (ICC(3,k) equals Cronbach's alpha with judges as items).
SF = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], dtype=float)


def test_icc_matches_shrout_fleiss_1979():
    r = icc(SF)
    assert round(r["icc2_1"], 2) == 0.29
    assert round(r["icc3_1"], 2) == 0.71
    assert r["n_targets"] == 6 and r["n_raters"] == 4


def test_alpha_matches_icc3k_of_shrout_fleiss_and_a_hand_example():
    assert round(cronbach_alpha(SF)["alpha"], 2) == 0.91
    # hand example: 3 respondents x 2 items
    X = np.array([[1, 2], [2, 2], [3, 5]], dtype=float)
    # var(item1) = 1, var(item2) = 3, totals 3, 4, 8 -> var = 7; alpha = 2 * (1 - 4/7) = 6/7
    assert cronbach_alpha(X)["alpha"] == pytest.approx(6 / 7)
    flat = cronbach_alpha(np.array([[3, 3], [3, 3]], dtype=float))
    assert flat["alpha"] is None and "vary" in flat["reason"]
    assert cronbach_alpha(np.array([[1, 2]], dtype=float))["alpha"] is None
    # two respondents whose items all move the same way give alpha near 1 by construction; the survey refuses it
    two = np.array([[1, 2, 3], [2, 4, 3.5]], dtype=float)
    assert cronbach_alpha(two)["alpha"] > 0.8 and cronbach_alpha(two, min_respondents=3)["alpha"] is None


def test_icc_needs_two_variants_and_drops_incomplete_rows():
    assert icc(np.array([[1.0], [2.0]]))["icc2_1"] is None
    X = np.vstack([SF, [np.nan, 1, 1, 1]])
    assert icc(X)["n_targets"] == 6 and round(icc(X)["icc2_1"], 2) == 0.29


def test_js_distance_by_hand():
    assert js_distance([0.2, 0.8], [0.2, 0.8]) == pytest.approx(0.0, abs=1e-12)
    assert js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    # p = [1, 0], q = [.5, .5], m = [.75, .25]; KL(p||m) = log2(4/3), KL(q||m) = .5 log2(2/3) + .5 log2(2)
    jsd = 0.5 * math.log2(4 / 3) + 0.5 * (0.5 * math.log2(2 / 3) + 0.5)
    assert js_distance([1, 0], [0.5, 0.5]) == pytest.approx(math.sqrt(jsd))
    assert js_distance([2, 0], [1, 1]) == pytest.approx(math.sqrt(jsd))  # normalised first
    with pytest.raises(ValueError):
        js_distance([1, 0], [1, 0, 0])


def test_compare_profiles_by_hand():
    c = compare_profiles({"A": 1.0, "B": 2.0, "C": 4.0, "D": None}, {"A": 2.0, "B": 2.0, "C": 3.0, "D": 1.0})
    assert c["difference"] == {"A": -1.0, "B": 0.0, "C": 1.0}
    assert c["missing"] == ["D"]
    assert c["mean_abs_diff"] == pytest.approx(2 / 3)
    assert c["rmsd"] == pytest.approx(math.sqrt(2 / 3))
    # model (1,2,4) vs target (2,2,3): deviations (-4/3,-1/3,5/3), (-1/3,-1/3,2/3):
    # r = (15/9) / sqrt(42/9 * 6/9) = 15 / sqrt(252)
    assert c["pearson_r"] == pytest.approx(15 / math.sqrt(252))
    assert c["spearman_rho"] == pytest.approx(0.8660254, abs=1e-6)  # ranks (1,2,3) vs (1.5,1.5,3)


def test_bootstrap_intervals_and_resampling_choice():
    inst = make([it("a1", "A"), it("a2", "A"), it("b1", "B"), it("b2", "B")])
    sc = Scorer(inst)
    X = np.array([[5, 4, 2, 1], [5, 4, 2, 1], [5, 4, 2, 1]], dtype=float)
    same = bootstrap_intervals(sc, X, resample="variants", n_boot=200, seed=1)
    assert same["A"] == (4.5, 4.5)  # identical variants: no variance to show
    items = bootstrap_intervals(sc, X, resample="items", n_boot=400, seed=1)
    assert items["A"][0] == 4.0 and items["A"][1] == 5.0
    assert bootstrap_intervals(sc, X, resample="both", n_boot=300, seed=3) == bootstrap_intervals(sc, X, resample="both", n_boot=300, seed=3)
    assert choose_resample("auto", "mean", 4) == ("both", None)
    assert choose_resample("auto", "index", 1)[0] == "none"
    assert choose_resample("items", "index", 3)[0] == "variants"
    assert choose_resample("auto", "centered", 1) == ("items", None)


# --- prompts and parsing -------------------------------------------------------------------------------
PVQ = {"points": [{"value": v, "label": lab} for v, lab in enumerate(
    ["Not like me at all", "Not like me", "A little like me", "Somewhat like me", "Like me", "Very much like me"], start=1)]}


def test_descending_numeric_variant_flips_codes():
    inst = make([it("a", "A")], scale=PVQ)
    asc = present_options(inst, Variant(0, 0, 0, "ascending", "numeric"))
    desc = present_options(inst, Variant(1, 0, 0, "descending", "numeric"))
    assert [(o.code, o.value) for o in asc][:2] == [("1", 1.0), ("2", 2.0)]
    assert [(o.code, o.label) for o in desc][0] == ("1", "Very much like me")
    assert parse_answer("1", desc, "numeric").value == 6.0
    assert parse_answer("1", asc, "numeric").value == 1.0


def test_parse_answer_cases():
    inst = make([it("a", "A")], scale=PVQ)
    num = present_options(inst, Variant(0, 0, 0, "ascending", "numeric"))
    verbal = present_options(inst, Variant(1, 0, 0, "ascending", "verbal"))
    assert parse_answer("5", num, "numeric").value == 5.0
    assert parse_answer("**4** - Somewhat like me", num, "numeric").value == 4.0
    p = parse_answer("On a scale of 1 to 6, I would say 3 out of 6.", num, "numeric")
    assert (p.value, p.status) == (3.0, "ok")
    assert parse_answer("Not like me at all.", verbal, "verbal").value == 1.0  # not "Not like me"
    assert parse_answer("Very much like me", verbal, "verbal").value == 6.0  # not "Like me"
    assert parse_answer("Like me!", verbal, "verbal").value == 5.0
    assert parse_answer("4", verbal, "verbal").status == "unparseable"  # no numbers were shown
    assert parse_answer("It is somewhat like me, not like me at all otherwise", verbal, "verbal").status == "multiple"
    echo = "1 = Not like me at all\n2 = Not like me\n3 = A little like me"
    assert parse_answer(echo, num, "numeric").status == "ambiguous"
    assert parse_answer("As an AI, I don't have personal values.", num, "numeric").status == "refusal"
    assert parse_answer("What a lovely day.", num, "numeric").status == "unparseable"
    agree = present_options(make([it("a", "A")]), Variant(1, 0, 0, "ascending", "verbal"))
    assert parse_answer("I disagree.", agree, "verbal").value == 2.0  # "agree" inside "disagree" is no hit
    assert parse_answer("Strongly agree", agree, "verbal").value == 5.0


def test_label_distribution_subtracts_longer_labels():
    probs, mass, corrected = label_distribution(
        ["Not like me", "Not like me at all", "Like me"], [math.log(0.3), math.log(0.1), math.log(0.2)])
    # P(starts "Not like me") = .3 includes "Not like me at all" (.1): exclusive .2, .1, .2 -> mass .5
    assert corrected and mass == pytest.approx(0.5)
    assert probs == pytest.approx([0.4, 0.2, 0.4])
    probs, mass, corrected = label_distribution(["1", "2"], [math.log(0.6), math.log(0.2)])
    assert not corrected and probs == pytest.approx([0.75, 0.25]) and mass == pytest.approx(0.8)


def test_variant_design_cycles_every_factor():
    vs = design_variants(8, 3)
    assert [(v.order, v.labels) for v in vs[:4]] == [("ascending", "numeric"), ("descending", "verbal"),
                                                     ("descending", "numeric"), ("ascending", "verbal")]
    assert len({v.frame for v in vs}) == 5 and len({v.stem for v in vs}) == 3
    assert design_variants(8, 3) == vs  # deterministic, so runs resume from the store
