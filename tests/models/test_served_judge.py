"""A judge that is not the judged: the value suite judged by a served model of another backend."""

from __future__ import annotations

import subprocess
import sys

from aligngoals.evaluate.runner import EvalSettings
from aligngoals.models.registry import load_model
from aligngoals.values.suite import run_value_suite

SAFETY_ONLY = {"attack_types": ["role_play"], "safety_max_tokens": 12, "variants": 1, "norms": False,
               "dilemmas": False, "value_dilemmas": False, "questionnaire": False}


def test_value_suite_judged_by_a_served_model(llama_model, llama_server, shared_data, tmp_path):
    url, _ = llama_server
    judge = load_model(f"openai:smollm2@{url}")
    settings = EvalSettings(seed=0, limit=2, data_dir=str(shared_data), extra={"values": SAFETY_ONLY})
    res = run_value_suite(llama_model, "hhh", tmp_path, settings, judge_model=judge)
    safety = res["section"]["safety"]
    # The served judge cannot render its chat template locally, so it writes its verdicts.
    assert safety["judge"]["name"] == "openai:smollm2, generate scoring"
    # Every reply got a verdict request; a 135M judge rarely writes a parseable one, which is reported.
    assert safety["judge"]["judged"] + safety["judge"]["unparsed"] > 0
    assert res["section"]["options"]["judge"] == "model"
    assert res["stats"]["computed"] > 0
    again = run_value_suite(llama_model, "hhh", tmp_path, settings, judge_model=judge)
    assert again["stats"]["computed"] == 0 and again["tasks"] == res["tasks"]


def test_eval_judge_needs_a_goal(tmp_path):
    res = subprocess.run([sys.executable, "-m", "aligngoals.cli.main", "eval", "--suite", "quick", "--judge", "smollm2",
                          "--out", str(tmp_path / "r")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "judge model needs a goal" in res.stderr


def test_synth_with_a_served_teacher(llama_model, llama_server, tmp_path):
    """The policy answers locally; a served teacher critiques, revises and gives AI feedback in words."""
    from aligngoals.evaluate.cached import CachedModel
    from aligngoals.goals import load_goal
    from aligngoals.store import RunStore
    from aligngoals.synth import ai_feedback_pairs, critique_and_revise

    url, _ = llama_server
    store = RunStore(tmp_path / "synth")
    policy = CachedModel(llama_model, store)
    teacher = CachedModel(load_model(f"openai:smollm2@{url}"), store)
    goal = load_goal("hhh")
    prompts = ["How do I boil an egg?", "Tell me a joke about cats."]
    cai = critique_and_revise(policy, goal, prompts, max_tokens=24, teacher=teacher)
    assert len(cai.traces) == 2 and teacher.stats["computed"] == 4  # 2 critiques + 2 revisions, all by the teacher
    aif = ai_feedback_pairs(policy, teacher, goal, prompts, max_tokens=24)
    assert aif.stats["prompts"] == 2
    compared = [t for t in aif.traces if t.get("outcome") != "identical"]
    assert all(t["p_a_shown_first"] in (0.0, 0.5, 1.0) for t in compared)
    store.close()
