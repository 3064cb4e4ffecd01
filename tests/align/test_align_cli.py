"""End to end on the embedded SmolLM2 model: ``aligngoals align dpo --lora`` from the CLI, the
trained directory loaded with ``hf:DIR``, ``aligngoals compare``, and the in-context goal wrapper."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "aligngoals.cli.main"]


def run_cli(*args, timeout=600):
    env = {**os.environ, "OMP_NUM_THREADS": "2", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_lora_dpo_on_smollm2_from_the_cli(tmp_path, shared_data):
    pytest.importorskip("trl")
    out = tmp_path / "dpo"
    # the 6 shortest of the first 300 HH harmless pairs, kept in HH's own format (short = a fast test)
    with gzip.open(shared_data / "hh-rlhf" / "harmless-base-test.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(300), fh)]
    rows.sort(key=lambda r: len(r["chosen"]) + len(r["rejected"]))
    hh = tmp_path / "hh_short.jsonl"
    hh.write_text("".join(json.dumps(r) + "\n" for r in rows[:6]))
    res = run_cli("align", "dpo", "--model", "smollm2", "--data", str(hh), "--format", "hh_rlhf", "--lora",
                  "--steps", "2", "--batch-size", "1", "--eval-n", "2", "--max-length", "128",
                  "--max-prompt-length", "96", "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "held-out before → after" in res.stdout and "heldout_p" in res.stdout
    cfg = json.loads((out / "align_config.json").read_text())
    assert cfg["method"] == "dpo" and cfg["lora"] is True and cfg["resolved"]["lr"] == 1e-4
    train = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in train if r["event"] == "train"] == [1, 2]
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["n_heldout"] == 2

    from aligngoals.models.base import LoglikelihoodRequest
    from aligngoals.models.registry import load_model

    m = load_model(f"hf:{out}", device="cpu")
    try:
        (r,) = m.loglikelihood([LoglikelihoodRequest("The capital of France is", " Paris")])
        assert -10 < r.logprob < 0  # a trained-from-SmolLM2 model, not random weights
    finally:
        m.close()

    cmp = run_cli("compare", str(out / "eval" / "before"), str(out / "eval" / "after"), "--json")
    assert cmp.returncode == 0, cmp.stderr
    rows = json.loads(cmp.stdout)["metrics"]
    assert {r["metric"] for r in rows} == {"acc", "acc_norm"} and all(r["n_paired"] == 2 for r in rows)

    again = run_cli("align", "dpo", "--model", "smollm2", "--data", str(hh), "--lora", "--steps", "2", "--out", str(out))
    assert again.returncode == 2 and "already holds an alignment run" in again.stderr and "--resume" in again.stderr


def test_unknown_method_and_missing_reward_model(tmp_path):
    res = run_cli("align", "grpo", "--data", "x.jsonl", "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and "Unknown alignment method" in res.stderr
    res = run_cli("align", "ppo", "--data", "x.jsonl", "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and "reward_model" in res.stderr and "--reward-model" in res.stderr


def test_in_context_goal_wrapper_on_llama_cpp(llama_model):
    from aligngoals.align.in_context import InContextGoalModel
    from aligngoals.models.base import ChatMessage, GenerationRequest, GenerationSettings, LoglikelihoodRequest

    wrapped = InContextGoalModel(llama_model, "hhh")
    assert wrapped.identity != llama_model.identity and wrapped.identity["in_context_goal"]["name"] == "hhh"
    assert wrapped.name == "smollm2+goal:hhh"
    first = wrapped.goal.principles_in_priority_order()[0].statement
    rendered = wrapped.apply_chat_template([ChatMessage("user", "Hi")])
    assert "<|im_start|>system" in rendered and first in rendered and rendered.index(first) < rendered.index("Hi")
    # a system message of the task is kept, after the principles
    both = wrapped.apply_chat_template([ChatMessage("system", "Answer in French."), ChatMessage("user", "Hi")])
    assert both.index(first) < both.index("Answer in French.") and both.count("<|im_start|>system") == 1
    # raw contexts get the preamble once, and chat contexts already rendered by the wrapper are not prefixed again
    assert wrapped.with_goal_prefix("Q: 2+2?\nA:").startswith(wrapped.principles_text)
    assert wrapped.with_goal_prefix(rendered) == rendered
    req = [LoglikelihoodRequest("Is it fine to steal? Answer:", " No")]
    plain, goal = llama_model.loglikelihood(req)[0], wrapped.loglikelihood(req)[0]
    assert plain.n_tokens == goal.n_tokens and plain.logprob != goal.logprob
    settings = GenerationSettings(max_tokens=8, temperature=0.0)
    (text,) = wrapped.generate([GenerationRequest(messages=[ChatMessage("user", "Say hello.")], settings=settings)])
    assert isinstance(text, str) and text
