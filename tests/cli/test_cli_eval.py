"""End-to-end: ``aligngoals eval`` on the embedded model, resume after SIGKILL, errors, report."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "aligngoals.cli.main"]


def run_cli(*args, cwd=None, timeout=300):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def comparable(report: dict) -> dict:
    """Everything but timings and cache counts must equal between runs."""
    r = dict(report)
    r.pop("run")
    r["settings"] = {k: v for k, v in r["settings"].items()}
    return r


def count_requests(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
def test_eval_quick_then_resume_from_store(tmp_path):
    out = tmp_path / "run"
    first = run_cli("eval", "--model", "smollm2", "--suite", "quick", "--out", str(out))
    assert first.returncode == 0, first.stderr
    report = json.loads((out / "report.json").read_text())
    assert set(report["tasks"]) == {"quick_instructions", "quick_preferences", "quick_values"}
    assert report["tasks"]["quick_values"]["level"] == "values"
    for task in report["tasks"].values():
        for m in task["metrics"].values():
            assert m["n"] == task["n"] > 0
            assert m["ci_low"] <= m["value"] <= m["ci_high"]
    assert report["model"]["file_sha256"] and report["packages"]["llama_cpp_python"]
    assert report["run"]["requests_computed"] == 213 and report["run"]["requests_cached"] == 0
    assert "quick_instructions" in first.stdout and "95% CI" in first.stdout
    html = (out / "report.html").read_text()
    assert "quick_preferences" in html and "<svg" in html

    again = run_cli("eval", "--model", "smollm2", "--suite", "quick", "--out", str(out))
    assert again.returncode == 0, again.stderr
    report2 = json.loads((out / "report.json").read_text())
    assert report2["run"]["requests_computed"] == 0 and report2["run"]["requests_cached"] == 213
    assert comparable(report2) == comparable(report)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_gives_the_same_report(tmp_path):
    reference = tmp_path / "reference"
    assert run_cli("eval", "--model", "smollm2", "--suite", "quick", "--out", str(reference)).returncode == 0
    expected = json.loads((reference / "report.json").read_text())

    out = tmp_path / "killed"
    db = out / "store.sqlite"
    # --no-prefix-reuse slows the run down so that the kill surely lands mid-run.
    args = ["eval", "--model", "smollm2", "--suite", "quick", "--out", str(out)]
    proc = subprocess.Popen([*CLI, *args, "--no-prefix-reuse"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while count_requests(db) < 40 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = count_requests(db)
    assert 0 < done_before < 213, f"the kill should land mid-run ({done_before} stored)"
    assert not (out / "report.json").exists()

    # Resume: note the fingerprint excludes prefix reuse, which changes no answer.
    resumed = run_cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["run"]["requests_cached"] >= done_before
    assert report["run"]["requests_computed"] == 213 - report["run"]["requests_cached"]
    assert comparable(report) == comparable(expected)


def test_unknown_model_is_a_short_error(tmp_path):
    res = run_cli("eval", "--model", "gpt-17", "--suite", "quick", "--out", str(tmp_path / "r"))
    assert res.returncode == 2
    assert "Unknown model 'gpt-17'" in res.stderr and "Fix:" in res.stderr
    assert "Traceback" not in res.stderr


def test_missing_gguf_is_a_short_error(tmp_path):
    res = run_cli("eval", "--model", f"gguf:{tmp_path}/missing.gguf", "--out", str(tmp_path / "r"))
    assert res.returncode == 2 and "does not exist" in res.stderr and "Traceback" not in res.stderr
    dbg = run_cli("--debug", "eval", "--model", f"gguf:{tmp_path}/missing.gguf", "--out", str(tmp_path / "r"))
    assert "Traceback" in dbg.stderr


def test_malformed_task_file_names_the_field(tmp_path):
    task = tmp_path / "bad_task.yaml"
    task.write_text("name: bad\nlevel: feelings\ndata: {path: items.jsonl}\n")
    res = run_cli("eval", "--model", "smollm2", "--tasks", str(task), "--out", str(tmp_path / "r"))
    assert res.returncode == 2
    assert "bad_task.yaml" in res.stderr and "level" in res.stderr and "Traceback" not in res.stderr


def test_malformed_data_line_names_file_and_line(tmp_path):
    (tmp_path / "items.jsonl").write_text(
        '{"question": "2+2?", "choices": ["4", "5"], "answer": 0}\n{"question": "x", "choices": ["a"], "answer": "zero"}\n'
    )
    task = tmp_path / "t.yaml"
    task.write_text("name: t\nlevel: instructions\ndata: {path: items.jsonl}\n")
    res = run_cli("eval", "--model", "smollm2", "--tasks", str(task), "--out", str(tmp_path / "r"))
    assert res.returncode == 2
    assert "items.jsonl:2" in res.stderr and "answer" in res.stderr


def test_run_dir_of_another_evaluation_is_refused(tmp_path):
    out = tmp_path / "r"
    ok = run_cli("eval", "--model", "smollm2", "--tasks", "quick_values", "--limit", "3", "--out", str(out))
    assert ok.returncode == 0, ok.stderr
    res = run_cli("eval", "--model", "smollm2", "--tasks", "quick_instructions", "--limit", "3", "--out", str(out))
    assert res.returncode == 2 and "different evaluation" in res.stderr


def test_help_explains():
    res = run_cli("eval", "--help")
    assert res.returncode == 0 and "resume" in res.stdout.lower()


def test_small_breakdown_groups_print_only_on_request():
    """TruthfulQA's categories gave 132 breakdown rows of n = 1-4; groups under SMALL_GROUP_N items are hidden
    (with a note) unless --all-groups, and report.json keeps them all."""
    from aligngoals.cli.common import console, out
    from aligngoals.cli.eval_cmd import SMALL_GROUP_N, print_breakdowns

    m = {"value": 0.5, "ci_low": 0.1, "ci_high": 0.9}
    report = {"tasks": {"truthfulqa_gen": {"breakdown": {
        "Health": {"bleu_acc": {**m, "n": SMALL_GROUP_N + 5}},
        "Tiny": {"bleu_acc": {**m, "n": 2}}}}}}
    with out.capture() as shown, console.capture() as notes:
        print_breakdowns(report)
    assert "Health" in shown.get() and "Tiny" not in shown.get()
    assert "1 breakdown groups with fewer than" in notes.get() and "--all-groups" in notes.get()
    with out.capture() as shown_all:
        print_breakdowns(report, all_groups=True)
    assert "Tiny" in shown_all.get()
