"""Data synthesis on the real embedded model (small, short generations)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from rouge_score import rouge_scorer

from aligngoals.errors import AligngoalsError, DataError
from aligngoals.evaluate.cached import CachedModel
from aligngoals.goals import load_goal
from aligngoals.store import RunStore
from aligngoals.synth import (
    ai_feedback_pairs,
    critique_and_revise,
    load_prompts,
    principles_prompt,
    red_team_prompts,
    self_align,
    self_instruct,
)
from aligngoals.synth.constitutional import EXEMPLARS as CAI_EXEMPLARS
from aligngoals.synth.self_align import EXEMPLARS, split_thoughts
from aligngoals.synth.self_instruct import BLOCKED, instruction_filter, is_classification

PROMPTS = ["How can I get back at a coworker who annoyed me?", "Give me one tip for sleeping better."]


@pytest.fixture()
def cached(llama_model, tmp_path):
    store = RunStore(tmp_path / "store")
    yield CachedModel(llama_model, store)
    store.close()


def test_constitutional_traces_name_principles_and_pairs_prefer_revisions(cached, tmp_path):
    goal = load_goal("hhh")
    ids = {p.id for p in goal.principles_in_priority_order()}
    res = critique_and_revise(cached, goal, PROMPTS, rounds=2, max_tokens=40)
    assert len(res.traces) == len(res.sft) == 2
    for trace, sft in zip(res.traces, res.sft):
        assert [r["principle"] for r in trace["rounds"]] == sft.meta["principles"]
        assert set(sft.meta["principles"]) <= ids and len(trace["rounds"]) == 2
        assert sft.output == trace["final"]
    for pair, trace in zip(res.pairs, [t for t in res.traces if t["final"].strip() != t["initial"].strip()]):
        assert pair.chosen == trace["final"] and pair.rejected == trace["initial"]
    assert res.stats["pairs"] + res.stats["unchanged"] == 2
    paths = res.write(tmp_path / "out")
    rows = [json.loads(line) for line in paths["sft"].read_text().splitlines()]
    assert rows[0]["record_type"] == "instruction" and rows[0]["instruction"] == PROMPTS[0]
    # A second run is answered from the store: no new model calls.
    before = cached.stats["computed"]
    critique_and_revise(cached, goal, PROMPTS, rounds=2, max_tokens=40)
    assert cached.stats["computed"] == before


def test_self_align_prompt_has_principles_in_order_and_five_exemplars(cached):
    goal = load_goal("self_align_16")
    assert len(goal.principles) == 16
    system = principles_prompt(goal)
    order = [p.id for p in goal.principles_in_priority_order()]
    positions = [system.index(f"{n}. {i}:") for n, i in enumerate(order, 1)]
    assert positions == sorted(positions)
    assert system.count("Internal thoughts:") == 6 and system.count("\nUser: ") == 5  # instruction + 5 exemplars
    assert principles_prompt(goal, 2).count("\nUser: ") == 2
    res = self_align(cached, goal, PROMPTS, exemplars=5, max_tokens=30)
    assert res.stats["exemplars"] == 5 and res.stats["kept"] + res.stats["empty"] + res.stats["thoughts_only"] == 2
    # The principle-driven request carries the prompt; the engraved SFT data carries none of it.
    statements = [p.statement for p in goal.principles] + [e.answer for e in EXEMPLARS]
    for rec in res.sft:
        blob = json.dumps(rec.model_dump())
        assert rec.instruction in PROMPTS
        assert not any(s in blob for s in statements) and "Internal thoughts" not in blob
    with pytest.raises(AligngoalsError):
        principles_prompt(goal, 6)


def test_split_thoughts_keeps_only_the_answer():
    assert split_thoughts("Internal thoughts: ethical applies.\nAnswer: I can't help.") == (
        "ethical applies.", "I can't help.", "formatted")
    assert split_thoughts("Internal thoughts: only thinking")[2] == "thoughts_only"
    assert split_thoughts("Plain reply.") == (None, "Plain reply.", "unformatted")


def test_red_team_crosses_question_types_with_proposed_topics(cached):
    res = red_team_prompts(cached, topics_per_type=3, types=["factual", "harmful_request"], questions_per_topic=2,
                           max_tokens=24)
    assert res.stats["types"] == 2 and res.stats["asked"] == len(res.traces) == 2 * res.stats["topics"]
    assert 2 < res.stats["topics"] <= 6  # topic lists are re-sampled until each type has 3 (or rounds run out)
    for t in ("factual", "harmful_request"):
        topics = [r["topic"] for r in res.traces if r["type"] == t]
        assert len(set(topics)) <= 3 and all(topics.count(x) == 2 for x in topics)
    assert {t["type"] for t in res.traces} <= {"factual", "harmful_request"}
    kept = [t["question"] for t in res.traces if t["kept"]]
    assert len(kept) == len({q.lower() for q in kept}) == res.stats["questions"]
    with pytest.raises(AligngoalsError, match="Unknown question type"):
        red_team_prompts(cached, types=["nope"])


def test_ai_feedback_accounts_for_every_prompt(cached):
    goal = load_goal("hhh")
    res = ai_feedback_pairs(cached, cached, goal, PROMPTS, max_tokens=30, margin=0.0)
    s = res.stats
    assert s["pairs"] + s["inconsistent_or_weak"] + s["identical_samples"] == len(PROMPTS)
    for t in res.traces:
        if "p_a_shown_first" in t:
            assert 0.0 <= t["p_a_shown_first"] <= 1.0 and 0.0 <= t["p_a_shown_second"] <= 1.0
    for pair in res.pairs:
        assert pair.chosen != pair.rejected and 0.5 <= pair.meta["p_chosen"] <= 1.0
    # RL-CAI: keeping order-inconsistent pairs labels them by the averaged soft label
    keep = ai_feedback_pairs(cached, cached, goal, PROMPTS, max_tokens=30, margin=0.0, drop_inconsistent=False)
    assert keep.stats["pairs"] + keep.stats["identical_samples"] + keep.stats["inconsistent_or_weak"] == len(PROMPTS)
    assert keep.stats["pairs"] >= s["pairs"]
    for t, pair in zip([t for t in keep.traces if t.get("outcome") == "pair"], keep.pairs):
        soft = (t["p_a_shown_first"] + t["p_a_shown_second"]) / 2
        assert abs(pair.meta["p_chosen"] - max(soft, 1 - soft)) < 1e-9
    with pytest.raises(AligngoalsError):
        ai_feedback_pairs(cached, cached, goal, PROMPTS, margin=0.7)


SEEDS = ["Write a poem about the sea.", "Translate 'good morning' into Spanish.", "List three uses of a brick.",
         "Explain why the sky is blue.", "Suggest a name for a bakery.", "Is this review positive or negative?",
         "Summarise the plot of a fairy tale in two sentences.", "Give a synonym for the word happy.",
         "Convert 10 miles to kilometres.", "Write a haiku about coffee."]


def test_self_instruct_shows_six_human_and_two_machine_tasks_and_filters(cached):
    res = self_instruct(cached, SEEDS, num=4, max_attempts=10, instances=2, seed=1)
    prompts = [t for t in res.traces if t.get("kind") == "generation_prompt"]
    assert prompts and all(p["human"] + p["machine"] == 8 for p in prompts)
    for p in prompts:
        listed = [ln.split(": ", 1)[1] for ln in p["prompt"].splitlines() if ln.startswith("Task ") and ": " in ln]
        assert len(listed) == 8 and sum(x in SEEDS for x in listed) == p["human"]
        assert p["machine"] in (0, 2)
    # once two machine instructions exist, later prompts show exactly 2 of them
    assert all(p["machine"] == 2 for p in prompts[next((i for i, p in enumerate(prompts) if p["machine"]), len(prompts)):])
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    pool = list(SEEDS)
    instructions = list(dict.fromkeys(r.instruction for r in res.sft))
    for ins in instructions:
        assert max(scorer.score(p, ins)["rougeL"].fmeasure for p in pool) < 0.7
        assert 3 <= len(ins.split()) <= 150 and ins[0].isalnum() and not BLOCKED.search(ins)
        pool.append(ins)
    removed = res.stats["removed"]
    assert res.stats["instructions"] + sum(removed[k] for k in ("empty", "length", "keyword", "punctuation_start",
                                                                "rouge_similar")) == res.stats["attempts"]
    instances = [t for t in res.traces if t.get("kind") == "instance"]
    assert len(instances) == 2 * res.stats["instructions"]
    assert res.stats["instances"] + removed["duplicate_input"] + removed["empty_output"] == len(instances)
    for t in instances:
        assert t["order"] == ("output_first" if t["is_classification"] else "input_first")


def test_self_instruct_filters_remove_what_they_say():
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    pool = ["Write a poem about the sea."]
    assert instruction_filter("Write a poem about the sea today.", pool, scorer) == "rouge_similar"
    assert instruction_filter("Draw a picture of a cat.", pool, scorer) == "keyword"
    assert instruction_filter("Hello there", pool, scorer) == "length"
    assert instruction_filter("- List three kinds of cheese.", pool, scorer) == "punctuation_start"
    assert instruction_filter("List three kinds of cheese.", pool, scorer) is None
    # instruction only: a different input does not make a copied instruction new
    assert instruction_filter("Write a poem about the sea.", pool, scorer) == "rouge_similar"


def test_self_instruct_classification_detection(cached):
    flags = is_classification(cached, ["Is the following sentence positive or negative?",
                                       "Write a long story about a dragon who learns to cook."])
    assert flags == [True, False]


def test_constitutional_critique_prompts_carry_exemplars(cached):
    goal = load_goal("hhh")
    res = critique_and_revise(cached, goal, PROMPTS[:1], exemplars=2, max_tokens=24)
    prompt = res.traces[0]["critique_prompt"]
    for ex in CAI_EXEMPLARS[:2]:
        assert ex["critique"] in prompt and ex["prompt"] in prompt
    assert CAI_EXEMPLARS[2]["critique"] not in prompt
    assert CAI_EXEMPLARS[0]["critique"] not in critique_and_revise(cached, goal, PROMPTS[:1], exemplars=0,
                                                                   max_tokens=24).traces[0]["critique_prompt"]


def test_prompt_file_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_prompts(tmp_path / "missing.jsonl")
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"prompt": "ok"}\nnot json\n')
    with pytest.raises(DataError, match="p.jsonl:2"):
        load_prompts(bad)


def test_synth_cli_end_to_end(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    out = tmp_path / "synth"
    res = subprocess.run([sys.executable, "-m", "aligngoals.cli.main", "synth", "self-align", "--goal", "hhh",
                          "--prompts", str(prompts), "--out", str(out), "--max-tokens", "24"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (out / "sft.jsonl").is_file() and (out / "traces.jsonl").is_file()
    missing_goal = subprocess.run([sys.executable, "-m", "aligngoals.cli.main", "synth", "constitutional",
                                   "--prompts", str(prompts), "--out", str(out)], capture_output=True, text=True)
    assert missing_goal.returncode == 2 and "needs --goal" in missing_goal.stderr


def test_synth_out_must_be_a_folder(tmp_path):
    """The README once showed ``--out revised.jsonl``; --out is a folder, and a file-like path is refused."""
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "Hi"}) + "\n")
    res = subprocess.run([sys.executable, "-m", "aligngoals.cli.main", "synth", "constitutional", "--goal", "hhh",
                          "--prompts", str(prompts), "--out", str(tmp_path / "revised.jsonl")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "takes a folder" in res.stderr
    assert not (tmp_path / "revised.jsonl").exists()
