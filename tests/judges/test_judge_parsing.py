"""Judge verdict parsing, templates, rubrics from goals, and how the two orders of a pair combine."""

from __future__ import annotations

import pytest

from aligngoals.errors import AligngoalsError, ConfigError
from aligngoals.judges import (
    Judgment,
    Rubric,
    Verdict,
    combine_orders,
    default_templates,
    load_templates,
    parse_pairwise,
    parse_rating,
)
from aligngoals.judges.templates import builtin_templates, load_mt_bench_templates


@pytest.mark.parametrize(
    "text, label, method",
    [
        ("Both are fine but A is more precise.\n[[A]]", "A", "brackets"),
        ("[[b]]", "B", "brackets"),
        ("Neither is better. [[C]]", "tie", "brackets"),
        ("[[A]] would be wrong here.\nFinal verdict: [[B]]", "B", "brackets-last"),
        ('{"verdict": "Assistant B", "principles": ["honest"]}', "B", "json"),
        ('Here you go: {"winner": "tie"}', "tie", "json"),
        ("Final verdict: Assistant A", "A", "label"),
        ("**Verdict:** B", "B", "label"),
        ("The better answer is B.", "B", "label"),
        ("Judgment: a tie", "tie", "label"),
        ("Assistant B is clearly better than assistant A.", "B", "words"),
        ("A: A is better than B.", "A", "words"),
        ("Both responses are equally helpful.", "tie", "words"),
    ],
)
def test_pairwise_verdicts(text, label, method):
    v = parse_pairwise(text)
    assert (v.label, v.method, v.error) == (label, method, None)


@pytest.mark.parametrize(
    "text, error",
    [
        ("Output [[A]] if A is better, [[B]] if B is better, [[C]] for a tie.", "ambiguous"),
        ('{"verdict": "A"} then {"verdict": "B"}', "ambiguous"),
        ("Assistant A is better. Assistant B is better.", "ambiguous"),
        ("I like turtles.", "unparseable"),
        ("", "unparseable"),
        ("Decision: a good question about Mars", "unparseable"),  # lower-case 'a' is not a verdict
    ],
)
def test_pairwise_failures_are_reported_not_guessed(text, error):
    v = parse_pairwise(text)
    assert v.label is None and v.error.startswith(error) and not v.ok


@pytest.mark.parametrize(
    "text, rating, method",
    [
        ("Clear and correct. Rating: [[8]]", 8.0, "brackets"),
        ("[[7.5]]", 7.5, "brackets"),
        ('{"rating": 3, "principles": []}', 3.0, "json"),
        ("Score: 6/10", 6.0, "label"),
        ("I would give it 9 out of 10.", 9.0, "words"),
        ("Rating (1-10): 8", 8.0, "label"),  # the scale named after the label is not the rating
        ("Score (out of 10): 6", 6.0, "label"),
    ],
)
def test_ratings(text, rating, method):
    v = parse_rating(text)
    assert (v.rating, v.method, v.error) == (rating, method, None)


@pytest.mark.parametrize(
    "text, error",
    [
        ("Rating: [[N]] where N is from 1 to 10", "unparseable"),  # an echoed instruction
        ("Rating: [[0]]", "out of range"),
        ("[[75]]", "out of range"),
        ("[[5]] or maybe [[6]]", "ambiguous"),
        ("no number here", "unparseable"),
        ("Grade (1-10): [[2 + 3 = 5]]", "unparseable"),  # a range and a sum are not ratings
    ],
)
def test_rating_failures(text, error):
    v = parse_rating(text)
    assert v.rating is None and v.error.startswith(error)


def test_principles_are_read_where_asked_and_mapped_to_rubric_ids():
    ids = ["harmless", "honest", "no_serious_harm"]
    v = parse_pairwise("Principles: Honest, no-serious-harm, kindness\n[[A]]", ids)
    assert v.principles == ["honest", "no_serious_harm"] and v.unknown_principles == ["kindness"]
    v = parse_rating('{"rating": 4, "principles": ["harmless"]}', ids)
    assert v.principles == ["harmless"]
    # Prose mentioning a principle is not a citation.
    assert parse_pairwise("The honest answer is A. [[A]]", ids).principles == []
    assert parse_pairwise("Principles: honest\n[[A]]", None).principles == []


def _j(shown: str, label: str | None) -> Judgment:
    v = Verdict(label=label, error=None if label else "unparseable: no verdict found")
    mapping = {"A": shown, "B": "2" if shown == "1" else "1", "tie": "tie"}
    return Judgment(shown, "raw", v, mapping.get(label or ""))


def test_combining_the_two_orders():
    # Answer 1 wins in both orders (shown first, then second): a consistent win.
    r = combine_orders(_j("1", "A"), _j("2", "B"))
    assert (r.status, r.outcome, r.flip) == ("consistent", 1.0, False)
    r = combine_orders(_j("1", "B"), _j("2", "A"))
    assert (r.status, r.outcome) == ("consistent", 0.0)
    # Always "A": the verdict follows the position, a flip, counted as a tie.
    r = combine_orders(_j("1", "A"), _j("2", "A"))
    assert (r.status, r.outcome, r.flip) == ("inconsistent", 0.5, True)
    # A win one way and a tie the other way: inconsistent, but not a position flip.
    r = combine_orders(_j("1", "A"), _j("2", "tie"))
    assert (r.status, r.outcome, r.flip) == ("inconsistent", 0.5, False)
    r = combine_orders(_j("1", "tie"), _j("2", "tie"))
    assert (r.status, r.outcome) == ("consistent", 0.5)
    # One order unparseable: the pair is a parse failure with no outcome (not a half-judged win).
    r = combine_orders(_j("1", "A"), _j("2", None))
    assert (r.status, r.outcome) == ("parse_failure", None) and len(r.judgments) == 2


def test_default_and_builtin_templates_render_with_braces_left_alone():
    t = default_templates()
    for kind in ("pairwise", "pairwise_reference", "single", "single_reference"):
        assert t.get(kind).uses_rubric()
    system, user = t.pairwise.render({"question": "Q {x}?", "answer_a": "one", "answer_b": '{"json": 1}',
                                      "rubric": "R"})
    assert "Q {x}?" in user and '{"json": 1}' in user and "{answer_a}" not in user
    assert user.index("one") < user.index('{"json": 1}')
    vf = builtin_templates("verdict-first")
    assert vf.pairwise.reply_prefix == "Verdict: [[" and load_templates("verdict-first") == vf
    assert t.fingerprint() != vf.fingerprint()


def test_user_template_file_overrides_some_kinds(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("single:\n  system: Be strict.\n  prompt: 'Q: {question}\\nA: {answer}\\nRating: [[N]]'\n")
    t = load_templates(f)
    assert t.single.system == "Be strict." and t.single.source == str(f)
    assert t.pairwise == default_templates().pairwise
    bad = tmp_path / "bad.yaml"
    bad.write_text("pairwise:\n  prompt: 'Only {question} and {answer_a}'\n")
    with pytest.raises(ConfigError, match=r"\{answer_b\}"):
        load_templates(bad)
    with pytest.raises(ConfigError, match="unknown template kind"):
        (tmp_path / "k.yaml").write_text("pairwize:\n  prompt: x\n")
        load_templates(tmp_path / "k.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_templates(tmp_path / "missing.yaml")


def test_mt_bench_judge_prompts_load_from_shared(shared_data):
    t = load_mt_bench_templates(shared_data / "mt-bench" / "judge_prompts.jsonl")
    assert t.pairwise.source.endswith("pair-v2") and t.single_reference.source.endswith("single-math-v1")
    _, user = t.pairwise_reference.render({"question": "2+2?", "answer_a": "4", "answer_b": "5", "reference": "4"})
    assert "[The Start of Reference Answer]\n4" in user
    assert not t.pairwise.uses_rubric()


def test_rubric_from_goal_lists_principles_in_priority_order():
    from aligngoals.goals import load_goal

    goal = load_goal("hhh")
    r = Rubric.from_goal(goal)
    ids = [p.id for p in goal.principles_in_priority_order()]
    assert list(r.principle_ids) == ids
    positions = [r.text.index(f"[{i}]") for i in ids]
    assert positions == sorted(positions)
    assert "Principles:" in r.text and r.goal == "hhh"


def test_goal_rubric_needs_a_template_with_a_rubric_slot(shared_data, llama_model):
    from aligngoals.goals import load_goal
    from aligngoals.judges import PairwiseJudge

    mt = load_mt_bench_templates(shared_data / "mt-bench" / "judge_prompts.jsonl")
    with pytest.raises(AligngoalsError, match="rubric"):
        PairwiseJudge(llama_model, templates=mt, rubric=Rubric.from_goal(load_goal("hhh")))
