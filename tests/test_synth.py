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
from aligngoals.synth import ai_feedback_pairs, critique_and_revise, load_prompts, self_align, self_instruct

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


def test_self_align_uses_principles_in_priority_order(cached):
    goal = load_goal("hhh")
    res = self_align(cached, goal, PROMPTS, max_tokens=30)
    system = res.traces[0]["system"]
    order = [p.id for p in goal.principles_in_priority_order()]
    positions = [system.index(f"[{i}]") for i in order]
    assert positions == sorted(positions)
    assert res.stats["kept"] + res.stats["empty"] == 2


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
    with pytest.raises(AligngoalsError):
        ai_feedback_pairs(cached, cached, goal, PROMPTS, margin=0.7)


def test_self_instruct_filters_by_rouge(cached):
    seeds = ["Write a poem about the sea.", "Translate 'good morning' into Spanish.", "List three uses of a brick.",
             "Explain why the sky is blue.", "Suggest a name for a bakery."]
    res = self_instruct(cached, seeds, num=3, max_attempts=8, answer=False, seed=1)
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    pool = list(seeds)
    for rec in res.sft:
        assert max(scorer.score(p, rec.instruction)["rougeL"].fmeasure for p in pool) < 0.7
        assert 3 <= len(rec.instruction.split()) <= 150
        pool.append(rec.instruction)
    assert res.stats["accepted"] + sum(res.stats["rejected"].values()) == res.stats["attempts"]


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
