"""The built-in preference and instruction suites on what ../shared/data holds (small limits)."""

from __future__ import annotations

import json
import subprocess
import sys

from aligngoals.evaluate.runner import EvalSettings, run_evaluation
from aligngoals.evaluate.suites import resolve_selection
from aligngoals.store import RunStore


def test_preferences_suite_cli_runs_and_reports_missing_datasets_as_skipped(shared_data, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "aligngoals.cli.main", "eval", "--model", "smollm2", "--suite", "preferences",
         "--data-dir", str(shared_data), "--limit", "3", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    tasks = report["tasks"]
    for name in ("truthfulqa_mc1", "truthfulqa_mc2", "truthfulqa_gen", "bbq", "crows_pairs"):
        assert tasks[name]["n"] == 0 and "not found" in tasks[name]["skipped"]
    for name in ("hh_rlhf_helpful", "hh_rlhf_harmless"):
        assert tasks[name]["n"] == 3
        assert set(tasks[name]["metrics"]) == {"pref_acc", "pref_acc_per_token", "logprob_margin"}
        for m in tasks[name]["metrics"].values():
            assert m["n"] == 3 and m["ci_low"] <= m["value"] <= m["ci_high"]
    assert "skipped" in proc.stdout and "hh_rlhf_helpful" in proc.stdout
    html = (out / "report.html").read_text()
    assert "skipped" in html and "bbq" in html
    with RunStore(out) as store:
        items = [d for _, _, d in store.items("hh_rlhf_helpful")]
    assert all(it["prompt"].rstrip().endswith("Assistant:") for it in items)


def test_instructions_suite_reports_generalization_levels(shared_data, llama_model, tmp_path):
    _, specs, limits = resolve_selection(suite="instructions")
    for s in specs:  # keep generation short in tests
        s.generation = s.generation.model_copy(update={"max_tokens": 16})
    report = run_evaluation(llama_model, specs, tmp_path / "run",
                            EvalSettings(data_dir=str(shared_data), limit=2, limits=limits), log=lambda _: None)
    levels = report["sections"]["generalization"]
    assert set(levels) == {"held_out_categories", "new_data_known_types", "held_out_samples"}
    assert set(levels["held_out_samples"]) == {"instr_seed_tasks", "instr_seed_tasks_3shot"}
    assert set(levels["held_out_categories"]) == {"instr_user_oriented"}
    seed0 = report["tasks"]["instr_seed_tasks"]
    assert seed0["n"] == 2 and seed0["fewshot"] == 0 and report["tasks"]["instr_seed_tasks_3shot"]["fewshot"] == 3
    with RunStore(tmp_path / "run") as store:
        zero = {i for _, i, _ in store.items("instr_seed_tasks")}
        three = {i: d for _, i, d in store.items("instr_seed_tasks_3shot")}
    assert zero == set(three), "zero- and few-shot score the same items"
    for d in three.values():
        msgs = d["model_input"]
        assert [m["role"] for m in msgs] == ["user", "assistant"] * 3 + ["user"]
        assert msgs[-1]["content"] == d["prompt"]
        assert d["prompt"] not in [m["content"] for m in msgs[:-1]], "no item is its own exemplar"
    m = seed0["metrics"]["rougeL"]
    assert m["n"] == 2 and 0.0 <= m["value"] <= 1.0
