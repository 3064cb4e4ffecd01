"""Judge-run accounting on hand-built verdict records: principles, position, battles, human agreement.

Pure logic: the records have the shape ``judge_runs`` stores (see test_judge_model.py for the
same accounting on verdicts of the real embedded model).
"""

from __future__ import annotations

import pytest

from aligngoals.judges import battles_from_records, combine_orders, human_agreement, summarize_records
from aligngoals.judges.judge import Judgment
from aligngoals.judges.parsing import parse_pairwise, parse_rating

IDS = ["harmless", "honest", "helpful"]
CONFIG = {"mode": "pairwise", "rubric": {"principle_ids": IDS}, "runs": [{"label": "base"}, {"label": "tuned"}],
          "judge": {"backend": "llamacpp", "file_sha256": "x"}}


def pair_record(item: str, raw_12: str, raw_21: str, len_a: int = 10, len_b: int = 20) -> dict:
    """A stored pairwise record built the way PairwiseJudge builds it, from two raw judge texts."""
    v12, v21 = parse_pairwise(raw_12, IDS), parse_pairwise(raw_21, IDS)
    j12 = Judgment("1", raw_12, v12, {"A": "1", "B": "2", "tie": "tie"}.get(v12.label or ""))
    j21 = Judgment("2", raw_21, v21, {"A": "2", "B": "1", "tie": "tie"}.get(v21.label or ""))
    res = combine_orders(j12, j21)
    return {"task": "t", "item_id": item, "prompt": "q", "reference": None, "model_a": "base", "model_b": "tuned",
            "len_a": len_a, "len_b": len_b, **res.to_dict()}


RECORDS = [
    # Both orders prefer answer 2 (tuned): consistent, tuned wins; the judge cites 'helpful' twice, 'honest' once.
    pair_record("1", "Principles: helpful, honest\n[[B]]", "Principles: helpful\n[[A]]"),
    # Each order picks whatever is shown first: a flip, counted as a tie.
    pair_record("2", "Principles: harmless\n[[A]]", "[[A]]"),
    # The second order is unparseable: a parse failure with no outcome, raw text kept.
    pair_record("3", "Principles: helpful\n[[B]]", "I cannot decide."),
]


def test_summary_counts_principles_flips_and_parse_failures():
    s = summarize_records(CONFIG, RECORDS)
    assert s["judgments"]["n"] == 6 and s["judgments"]["parse_failures"] == 1
    assert s["judgments"]["failure_kinds"] == {"unparseable": 1}
    p = s["pairs"]
    assert (p["consistent"], p["inconsistent"], p["flips"], p["parse_failures"]) == (1, 1, 1, 1)
    assert p["inconsistency_rate"] == pytest.approx(1 / 2) and p["parse_failure_rate"] == pytest.approx(1 / 3)
    # Parsed labels: B, A, A, A, B -> 3 of 5 first-position picks.
    assert s["position"] == {"A": 3, "B": 2, "tie": 0, "first_position_rate": pytest.approx(3 / 5)}
    pr = s["principles"]
    assert pr["cited"] == {"harmless": 1, "honest": 1, "helpful": 3}
    assert pr["most_cited"] == [{"id": "helpful", "n": 3}, {"id": "harmless", "n": 1}, {"id": "honest", "n": 1}]
    # Principles cited in verdicts a model lost: base lost item 1 twice and item 3's parsed order; tuned lost
    # item 2's first order (harmless).
    assert pr["by_model"] == {"base": {"helpful": 3, "honest": 1}, "tuned": {"harmless": 1}}
    assert pr["cite_rate"] == pytest.approx(4 / 5)
    # No contestant is the judge's model here.
    assert s["self_preference_risk"] == []


def test_battles_skip_parse_failures_and_keep_flips_as_ties():
    battles = battles_from_records(CONFIG, RECORDS)
    assert [(b.item, b.outcome, b.len_a, b.len_b) for b in battles] == [("t::1", 0.0, 10, 20), ("t::2", 0.5, 10, 20)]


def test_single_grades_become_battles_per_item():
    cfg = {"mode": "single", "rubric": {"principle_ids": []}, "runs": [{"label": "a"}, {"label": "b"}], "baseline": None}
    recs = []
    for item, ga, gb in [("1", "Rating: [[7]]", "Rating: [[4]]"), ("2", "Rating: [[5]]", "Rating: [[5]]"),
                         ("3", "Rating: [[2]]", "nothing")]:
        for model, raw in (("a", ga), ("b", gb)):
            v = parse_rating(raw)
            recs.append({"task": "t", "item_id": item, "model": model, "len": 5, "rating": v.rating,
                         "status": "ok" if v.ok else "parse_failure",
                         "judgment": {"shown_as_a": "-", "raw": raw, "verdict": v.to_dict(), "winner": None}})
    battles = battles_from_records(cfg, recs)
    assert [(b.item, b.model_a, b.model_b, b.outcome) for b in battles] == [("t::1", "a", "b", 1.0), ("t::2", "a", "b", 0.5)]
    s = summarize_records(cfg, recs)
    assert s["ratings"]["a"]["value"] == pytest.approx(14 / 3) and s["ratings"]["b"]["parse_failures"] == 1


def test_human_agreement_matches_pairs_in_either_orientation():
    human = [
        {"task": "t", "item_id": "1", "model_a": "tuned", "model_b": "base", "winner": "model_a"},  # judge: tuned wins
        {"task": "t", "item_id": "2", "model_a": "base", "model_b": "tuned", "winner": "model_b"},  # judge: tie (flip)
        {"task": "t", "item_id": "3", "model_a": "base", "model_b": "tuned", "winner": "tie"},  # judge: parse failure
        {"task": "t", "item_id": "9", "model_a": "base", "model_b": "tuned", "winner": "tie"},  # never judged
    ]
    ag = human_agreement(RECORDS, human)
    assert (ag["n"], ag["n_missing"], ag["n_unmatched"]) == (2, 1, 1)
    assert ag["with_ties"] == pytest.approx(1 / 2) and ag["without_ties"] == pytest.approx(1.0)
