"""Judging with the real embedded model: position swap, parse-failure accounting, resume, CLI.

The runs being compared are made by real generation with the embedded model
(through CachedModel into a RunStore, in the schema generation tasks use). The
135M judge is weak on purpose: its verdicts are often unparseable or follow the
position, which is exactly what the accounting must report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aligngoals.errors import AligngoalsError, ConfigError, DataError
from aligngoals.evaluate.cached import CachedModel
from aligngoals.judges import (
    PairInput,
    PairwiseJudge,
    battles_from_records,
    judge_leaderboard,
    judge_runs,
    load_judge_run,
    load_templates,
    match_items,
    open_runs,
)
from aligngoals.models.base import GenerationSettings
from aligngoals.store import RunStore

pytestmark = pytest.mark.slow

PROMPTS = [
    ("q1", "Name one primary colour.", None),
    ("q2", "What is 2 + 3?", "5"),
    ("q3", "Say hello in French.", "Bonjour"),
]
TASK = "gen_small"
CLI = [sys.executable, "-m", "aligngoals.cli.main"]
TASK_YAML = """name: gen_small
level: instructions
type: generate
data: {{path: questions.jsonl, format: mt_bench}}
chat: true
system: "{system}"
prompt: "{{{{ instruction }}}}"
references: meta.reference.0
generation: {{max_tokens: {max_tokens}}}
metrics: [rougeL]
"""


def cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}  # wide enough that rich does not cut table cells
    r = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def make_run(root: Path, name: str, system: str, max_tokens: int) -> Path:
    """A real ``aligngoals eval`` run of a tiny generation task (the same prompts, another system prompt)."""
    data = root / "data"
    data.mkdir(exist_ok=True)
    (data / "questions.jsonl").write_text("".join(
        json.dumps({"question_id": i, "category": "demo", "turns": [p], **({"reference": [ref]} if ref else {})}) + "\n"
        for i, p, ref in PROMPTS))
    task = root / name / "gen_small.yaml"
    task.parent.mkdir()
    task.write_text(TASK_YAML.format(system=system, max_tokens=max_tokens))
    cli("eval", "--model", "smollm2", "--tasks", str(task), "--data-dir", str(data), "--out", str(root / "runs" / name))
    return root / "runs" / name


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("judge_runs")
    a = make_run(root, "terse", "Answer in one or two words.", 8)
    b = make_run(root, "chatty", "Answer in a full, friendly sentence.", 16)
    return a, b


@pytest.fixture(scope="module")
def pairwise_judged(tmp_path_factory, two_runs):
    """``aligngoals judge`` end to end on the embedded model (the tiny judge answers with a verdict-first prompt)."""
    out = tmp_path_factory.mktemp("judged") / "j"
    r = cli("judge", "--runs", str(two_runs[0]), str(two_runs[1]), "--judge", "smollm2", "--mode", "pairwise",
            "--templates", "verdict-first", "--max-tokens", "4", "--n-ctx", "2048", "--out", str(out))
    assert "6 computed" in r.stderr and "self-preference" in r.stderr
    return out, json.loads((out / "judge.json").read_text())


def test_runs_share_items_and_labels(two_runs, tmp_path):
    runs = open_runs([f"t={two_runs[0]}", str(two_runs[1])])
    assert [r.label for r in runs] == ["t", "chatty"]
    assert runs[0].model["backend"] == "llamacpp"
    items, stats = match_items(runs)
    assert [i.item_id for i in items] == ["q1", "q2", "q3"] and stats["shared"] == 3
    assert items[1].reference == "5" and items[0].reference is None
    assert match_items(runs, limit=2)[1]["selected"] == 2
    with pytest.raises(ConfigError, match="both labelled"):
        open_runs([str(two_runs[0]), str(two_runs[0])])
    with pytest.raises(ConfigError, match="at least two"):
        open_runs([str(two_runs[0])])
    with pytest.raises(DataError, match="task"):
        match_items(runs, tasks=["no_such_task"])
    # A third run whose prompts differ for the same ids is not comparable: left out, counted.
    odd = RunStore(tmp_path / "odd")
    odd.put_items(TASK, [(i, {"prompt": p + " Please.", "output": "x"}) for i, p, _ in PROMPTS[:2]]
                  + [("q3", {"prompt": PROMPTS[2][1], "output": "Salut"})])
    odd.close()
    items, stats = match_items(open_runs([str(two_runs[0]), str(two_runs[1]), str(tmp_path / "odd")]))
    assert stats["prompt_mismatch"] == 2 and [i.item_id for i in items] == ["q3"]


def test_pairwise_judges_both_orders_and_accounts_for_every_verdict(pairwise_judged, two_runs):
    out, summary = pairwise_judged
    config, records = load_judge_run(out)
    assert len(records) == 3 and config["mode"] == "pairwise"
    with RunStore(out, readonly=True) as store:
        prompts = [req["prompt"] for _, req, _ in store.iter_requests("generate")]
    for r in records:
        assert r["model_a"] == "terse" and r["model_b"] == "chatty"
        if r["status"] == "identical":
            continue
        first, second = r["judgments"]
        assert (first["shown_as_a"], second["shown_as_a"]) == ("1", "2")
        # Every raw text is kept, starting with the reply prefix the judge was given.
        assert first["raw"].startswith("Verdict: [[") and second["raw"].startswith("Verdict: [[")
        # The second order really shows answer 2 first: find both prompts of this item.
        with RunStore(two_runs[0], readonly=True) as s1, RunStore(two_runs[1], readonly=True) as s2:
            ans1 = dict((i, d["output"]) for _, i, d in s1.items(TASK))[r["item_id"]]
            ans2 = dict((i, d["output"]) for _, i, d in s2.items(TASK))[r["item_id"]]
        mine = [p for p in prompts if r["prompt"] in p and ans1.strip() in p and ans2.strip() in p]
        assert len(mine) == 2
        orders = sorted(p.index(ans1.strip()) < p.index(ans2.strip()) for p in mine)
        assert orders == [False, True]
        # The combined outcome follows MT-Bench's rule.
        w1, w2 = first["winner"], second["winner"]
        if w1 is None or w2 is None:
            assert r["status"] == "parse_failure" and r["outcome"] is None
        elif w1 == w2:
            assert r["status"] == "consistent" and r["outcome"] == {"1": 1.0, "2": 0.0, "tie": 0.5}[w1]
        else:
            assert r["status"] == "inconsistent" and r["outcome"] == 0.5
            assert r["flip"] == ({w1, w2} == {"1", "2"})
    judgments = [j for r in records for j in r["judgments"]]
    failed = [j for j in judgments if j["verdict"]["error"]]
    assert summary["judgments"]["n"] == len(judgments)
    assert summary["judgments"]["parse_failures"] == len(failed)
    for j in failed:
        assert j["raw"] is not None and j["verdict"]["label"] is None
    p = summary["pairs"]
    assert p["consistent"] + p["inconsistent"] + p["parse_failures"] + p["identical"] + p["too_long"] == p["n"] == 3
    decided = p["consistent"] + p["inconsistent"]
    if decided:
        assert p["inconsistency_rate"] == pytest.approx(p["inconsistent"] / decided)
    pos = summary["position"]
    assert pos["A"] + pos["B"] + pos["tie"] == summary["judgments"]["parsed"]
    # The judge is the same weights as both contestants: flagged.
    assert summary["self_preference_risk"] == ["terse", "chatty"]
    assert json.loads((out / "judge.json").read_text())["pairs"] == p
    battles = battles_from_records(config, records)
    assert len(battles) == sum(1 for r in records if r["outcome"] is not None)


def test_judging_resumes_from_the_store(pairwise_judged, two_runs, llama_model):
    out, summary = pairwise_judged
    # The Python API resumes what the CLI stored: nothing is asked again.
    again = judge_runs(open_runs([str(p) for p in two_runs]), llama_model, out,
                       templates=load_templates("verdict-first"), max_tokens=4)
    assert again["requests"]["computed"] == 0 and again["requests"]["cached"] == summary["requests"]["computed"] == 6
    strip = lambda s: {k: v for k, v in s.items() if k != "requests"}  # noqa: E731
    assert strip(again) == strip(summary)
    with pytest.raises(AligngoalsError, match="different judging"):
        judge_runs(open_runs([str(p) for p in two_runs]), llama_model, out, max_tokens=4)


def test_unparseable_verdicts_are_stored_and_counted(two_runs, llama_model, tmp_path):
    # The reason-first default prompt with 6 tokens of room: the tiny judge cannot reach a verdict.
    runs = open_runs([str(p) for p in two_runs])
    summary = judge_runs(runs, llama_model, tmp_path / "j", max_tokens=6, limit=1)
    config, records = load_judge_run(tmp_path / "j")
    judgments = [j for r in records for j in r["judgments"]]
    assert len(judgments) == 2
    failed = [j for j in judgments if j["verdict"]["error"]]
    assert summary["judgments"]["parse_failures"] == len(failed)
    assert sum(summary["judgments"]["failure_kinds"].values()) == len(failed)
    for j in failed:
        assert j["raw"].strip() and j["verdict"]["error"].split(":")[0] in ("unparseable", "ambiguous")
    if failed:
        assert records[0]["status"] == "parse_failure" and records[0]["outcome"] is None
        assert summary["pairs"]["parse_failure_rate"] == 1.0
        with pytest.raises(AligngoalsError, match="No battles"):
            judge_leaderboard([tmp_path / "j"], n_boot=10)


def test_single_grading_with_goal_principles(two_runs, llama_model, tmp_path):
    from aligngoals.goals import load_goal

    runs = open_runs([str(p) for p in two_runs])
    summary = judge_runs(runs, llama_model, tmp_path / "s", mode="single", goal=load_goal("hhh"),
                         templates=load_templates("verdict-first"), max_tokens=4, limit=2)
    config, records = load_judge_run(tmp_path / "s")
    assert config["rubric"]["principle_ids"] == ["harmless", "honest", "helpful"]
    assert len(records) == 4 and {r["model"] for r in records} == {"terse", "chatty"}
    for r in records:
        v = r["judgment"]["verdict"]
        assert (r["rating"] is None) == (v["error"] is not None) == (r["status"] == "parse_failure")
        if r["rating"] is not None:
            assert 1 <= r["rating"] <= 10
    # The rubric (with the principles) reached the judge.
    with RunStore(tmp_path / "s", readonly=True) as store:
        assert all("[harmless] (priority 1)" in req["prompt"] for _, req, _ in store.iter_requests("generate"))
    assert summary["principles"]["ids"] == ["harmless", "honest", "helpful"]
    assert sum(s["n_graded"] for s in summary["ratings"].values()) == 4
    assert sum(s["parse_failures"] for s in summary["ratings"].values()) == summary["judgments"]["parse_failures"]


def test_long_answers_are_truncated_to_fit_and_identical_answers_skip_the_judge(tmp_path):
    from aligngoals.models.registry import load_model

    small = load_model("smollm2", n_ctx=512)
    try:
        store = RunStore(tmp_path / "j")
        judge = PairwiseJudge(CachedModel(small, store), templates=load_templates("verdict-first"),
                              settings=GenerationSettings(max_tokens=4))
        long_answer = "Paris is the capital of France. " * 200
        res = judge.judge([PairInput("What is the capital of France?", long_answer, "Paris."),
                           PairInput("Same?", "Yes.", "Yes.")])
        assert res[0].truncated and len(res[0].judgments) == 2
        assert res[1].status == "identical" and res[1].outcome == 0.5 and res[1].judgments == []
        prompts = [req["prompt"] for _, req, _ in store.iter_requests("generate")]
        assert len(prompts) == 2 and all("truncated by aligngoals" in p for p in prompts)
        assert all(len(small.tokenize(p)) <= 512 - 4 for p in prompts)
    finally:
        small.close()


def test_cli_judge_resumes_then_leaderboard(pairwise_judged, two_runs, tmp_path):
    out, _ = pairwise_judged
    # Start from a copy of the judged store: the CLI must resume it (nothing recomputed).
    judged = tmp_path / "judged"
    shutil.copytree(out, judged)
    r = cli("judge", "--runs", str(two_runs[0]), str(two_runs[1]), "--judge", "smollm2",
            "--templates", "verdict-first", "--max-tokens", "4", "--n-ctx", "2048", "--out", str(judged))
    assert "0 computed" in r.stderr
    human = tmp_path / "human.jsonl"
    human.write_text("".join(json.dumps({"task": TASK, "item_id": i, "model_a": "chatty", "model_b": "terse",
                                         "winner": "model_a"}) + "\n" for i, _, _ in PROMPTS))
    config, records = load_judge_run(judged)
    # The verdict-first prompt gets a parseable verdict out of the greedy 135M judge on these items.
    assert battles_from_records(config, records)
    r = cli("leaderboard", str(judged), "--baseline", "terse", "--n-boot", "50", "--elo-k", "8",
            "--human", str(human), "--json", str(tmp_path / "lb.json"), timeout=300)
    assert "Leaderboard" in r.stdout and "chatty" in r.stdout and "Elo K=8" in r.stdout
    assert "Agreement with human labels" in r.stderr
    lb = json.loads((tmp_path / "lb.json").read_text())
    models = {m["model"]: m for m in lb["leaderboard"]["models"]}
    assert set(models) == {"terse", "chatty"} and models["terse"]["rating"] == pytest.approx(1000)
    assert models["chatty"]["ci_low"] <= models["chatty"]["rating"] <= models["chatty"]["ci_high"]
    vs = models["chatty"]["vs_baseline"]
    assert vs["win_rate"]["n"] == len(battles_from_records(config, records)) and "lc_win_rate" in vs
    assert lb["leaderboard"]["method"]["elo"]["k"] == 8
    ha = lb["human_agreement"]
    assert ha["n"] + ha["n_missing"] == 3 and ha["n_unmatched"] == 0
    assert lb["judges"][0]["pairs"]["n"] == 3


def test_a_run_without_generations_fails_clearly(two_runs, tmp_path):
    mc = RunStore(tmp_path / "mc_only")
    mc.put_items("arc_easy", [("1", {"choices": ["a", "b"], "pred": 0, "scores": {"acc": 1.0}})])
    mc.close()
    runs = open_runs([str(two_runs[0]), str(tmp_path / "mc_only")])
    with pytest.raises(DataError, match=r"mc_only .* no stored generations.*arc_easy \(1 items\)"):
        match_items(runs)
    with pytest.raises(AligngoalsError, match="run directory|does not exist|store"):
        open_runs([str(two_runs[0]), str(tmp_path / "nowhere")])
