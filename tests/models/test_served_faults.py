"""Fault test: ``aligngoals eval`` through a proxy that injects 429 (Retry-After), 500, 503, dropped
connections and answers slower than the time-out, in front of a real llama-cpp-python server.

The run must answer every request exactly once, give the fault-free report, and resume after
SIGKILL with nothing lost. Everything binds 127.0.0.1 and stops by itself.
"""

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
from fault_proxy import FaultProxy

CLI = [sys.executable, "-m", "aligngoals.cli.main"]
# 24 requests: each fault twice. The time-out is generous because the server shares 2 busy cores.
SCHEDULE = ("ok", "429", "ok", "500", "drop", "ok", "503", "ok", "ok", "ok", "ok", "slow")
TIMEOUT_S = 25
N_ITEMS = 24

QUESTIONS = [
    ("Say yes.", "Yes"), ("Name a colour.", "Blue"), ("What is 2 + 2?", "4"), ("Say hello.", "Hello"),
    ("Name an animal.", "Cat"), ("What is the capital of France?", "Paris"), ("Name a fruit.", "Apple"),
    ("Say no.", "No"), ("What is 3 + 3?", "6"), ("Name a day of the week.", "Monday"),
    ("Name a planet.", "Mars"), ("What colour is snow?", "White"), ("Name a season.", "Winter"),
    ("What is 10 - 5?", "5"), ("Name a metal.", "Iron"), ("Name a drink.", "Water"),
    ("What is the opposite of hot?", "Cold"), ("Name a shape.", "Circle"), ("Name a month.", "May"),
    ("What do bees make?", "Honey"), ("Name a vegetable.", "Carrot"), ("What is 1 + 1?", "2"),
    ("Name a bird.", "Robin"), ("What is frozen water called?", "Ice"),
]


def _task(tmp: Path) -> Path:
    assert len(QUESTIONS) == N_ITEMS
    (tmp / "items.jsonl").write_text("".join(json.dumps({"instruction": q, "output": a}) + "\n" for q, a in QUESTIONS))
    task = tmp / "served_gen.yaml"
    task.write_text(
        "name: served_gen\nlevel: instructions\ntype: generate\nchat: true\n"
        "data: {path: items.jsonl, format: jsonl}\n"
        "prompt: \"{{ instruction }}\"\ntarget: \"{{ output }}\"\n"
        "generation: {max_tokens: 12}\nmetrics: [exact_match, rougeL]\n"
    )
    return task


def _env() -> dict:
    env = dict(os.environ)
    env.update(ALIGNGOALS_TIMEOUT=str(TIMEOUT_S), ALIGNGOALS_MAX_RETRIES="4", ALIGNGOALS_CONCURRENCY="2",
               OPENAI_API_KEY="sk-fault-test-secret")
    return env


def _args(url: str, task: Path, out: Path) -> list[str]:
    return [*CLI, "eval", "--model", f"openai:smollm2@{url}", "--tasks", str(task), "--data-dir", str(task.parent),
            "--out", str(out)]


def _rows(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT * FROM requests").fetchall()
        finally:
            con.close()
    except sqlite3.OperationalError:
        return []


def _comparable(report: dict) -> dict:
    r = dict(report)
    r.pop("run")
    r["model"] = {k: v for k, v in r["model"].items() if k not in ("base_url",)}
    r.pop("command", None)
    return r


@pytest.mark.slow
def test_faults_give_the_fault_free_report_and_resume_after_sigkill(llama_server, tmp_path):
    url, port = llama_server
    task = _task(tmp_path)
    clean = subprocess.run(_args(url, task, tmp_path / "clean"), capture_output=True, text=True, env=_env(), timeout=600)
    assert clean.returncode == 0, clean.stderr
    expected = json.loads((tmp_path / "clean" / "report.json").read_text())
    assert expected["tasks"]["served_gen"]["n"] == N_ITEMS

    with FaultProxy(port, SCHEDULE, slow_s=TIMEOUT_S + 2) as proxy:
        out = tmp_path / "faulty"
        db = out / "store.sqlite"
        proc = subprocess.Popen(_args(proxy.url, task, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
        deadline = time.time() + 300
        while len(_rows(db)) < 8 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        stored_before = len(_rows(db))
        assert 0 < stored_before < N_ITEMS, f"the kill should land mid-run ({stored_before} stored)"
        assert not (out / "report.json").exists()

        resumed = subprocess.run(_args(proxy.url, task, out), capture_output=True, text=True, env=_env(), timeout=600)
        assert resumed.returncode == 0, resumed.stderr
        log = proxy.log

    report = json.loads((out / "report.json").read_text())
    # Nothing lost and nothing asked twice: the resumed run took the stored answers and computed the rest.
    assert report["run"]["requests_cached"] >= stored_before
    assert report["run"]["requests_cached"] + report["run"]["requests_computed"] == N_ITEMS
    assert len(_rows(db)) == N_ITEMS
    assert _comparable(report) == _comparable(expected)
    # Every fault kind was injected and every request was answered.
    assert set(log.injected) == {"429", "500", "503", "drop", "slow"}, log.injected
    assert len(log.order) >= N_ITEMS - 1
    # 429 came with Retry-After: 1, and the client waited at least that long before retrying.
    assert all(log.attempts[k] >= 2 and log.forwarded[k] >= 1 for k in log.fault_of)
    for key, fault in log.fault_of.items():
        wait = log.times[key][1] - log.times[key][0]
        if fault == "429":
            assert wait >= 0.95, f"retried {wait:.2f} s after a 429 with Retry-After: 1"
        if fault == "slow":
            assert wait >= TIMEOUT_S - 0.5, f"gave up on a slow answer after {wait:.2f} s"
    assert "sk-fault-test-secret" not in (out / "report.json").read_text() + resumed.stdout + resumed.stderr
    assert "sk-fault-test-secret" not in b"".join(Path(out).joinpath(p).read_bytes() for p in os.listdir(out)
                                                  if Path(out, p).is_file()).decode("utf-8", "replace")
