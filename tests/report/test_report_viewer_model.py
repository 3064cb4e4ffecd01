"""End-to-end on the embedded model: every item of the quick suite, a survey and a judging is in
report.html, and the comparison of two real runs opens in the browser. Small --limit throughout."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from viewer_browser import browser, open_page  # noqa: F401  (browser is a fixture)

from aligngoals.report.samples import read_samples
from aligngoals.store import RunStore

CLI = [sys.executable, "-m", "aligngoals.cli.main"]
pytestmark = pytest.mark.slow


def run_cli(*args, timeout=600):
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """The quick suite, plain and with the hhh principles in the system prompt (three items a task)."""
    base = tmp_path_factory.mktemp("viewer-runs")
    run_cli("eval", "--model", "smollm2", "--suite", "quick", "--limit", "3", "--out", str(base / "plain"))
    run_cli("eval", "--model", "smollm2", "--suite", "quick", "--limit", "3", "--in-context-goal", "hhh",
            "--out", str(base / "hhh"))
    return base / "plain", base / "hhh"


def test_quick_suite_report_shows_every_item(browser, quick_runs):  # noqa: F811
    run = quick_runs[0]
    report = json.loads((run / "report.json").read_text())
    n_items = sum(t["n"] for t in report["tasks"].values())
    samples = read_samples(run)
    with RunStore(run, readonly=True) as store:
        stored = {(t, i): d for t, i, d in store.items()}
    assert len(samples) == n_items == len(stored) == 9
    for s in samples:  # each sample says what was asked, what was picked, and how it was scored
        rec = stored[(s["task"], s["id"])]
        assert s["input"] == rec["prompt"] and [c["text"] for c in s["choices"]] == rec["choices"]
        assert s["scores"]["acc"] == rec["scores"]["acc"] and s["correct"] is (rec["scores"]["acc"] == 1.0)
    page = open_page(browser, run / "report.html")
    assert page.text_content("#v-count") == f"{n_items} of {n_items} samples"
    page.select_option("#f-task", "quick_values")
    assert page.text_content("#v-count") == f"3 of {n_items} samples"
    first = next(s for s in samples if s["task"] == "quick_values")
    page.fill("#f-search", first["input"][:40])
    page.locator("#v-list details.sample summary").first.click()
    assert first["input"] in page.locator("#v-list .sample-body").first.text_content()
    assert page.errors == []  # type: ignore[attr-defined]


def test_compare_two_real_runs(browser, quick_runs, tmp_path):  # noqa: F811
    plain, hhh = quick_runs
    run_cli("compare", str(plain), str(hhh), "--out", str(tmp_path / "cmp"))
    comparison = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    a, b = ({(s["task"], s["id"]): s for s in read_samples(r)} for r in quick_runs)
    expected = {k for k in a if a[k]["correct"] != b[k]["correct"]}
    assert {(c["task"], c["id"]) for c in comparison["changed"]} == expected
    assert all(d["diffs"][0]["method"] == "paired_bootstrap" for d in comparison["metrics"])
    page = open_page(browser, tmp_path / "cmp" / "compare.html", viewer=bool(expected))
    assert page.locator("#metrics tr").count() == 1 + len(comparison["metrics"])
    if expected:
        page.locator("#v-list details.sample summary").first.click()
        assert page.locator("#v-list .side-by-side .col").count() == 2
    assert page.errors == []  # type: ignore[attr-defined]


def test_survey_report_shows_every_answer(browser, tmp_path):  # noqa: F811
    out = tmp_path / "survey"
    run_cli("survey", "--model", "smollm2", "--instrument", "assistant_values", "--limit", "2", "--variants", "2",
            "--out", str(out))
    survey = json.loads((out / "survey.json").read_text())
    samples = read_samples(out)
    assert len(samples) == len(survey["answers"]) == 4 and not (out / "report.json").exists()
    assert {s["groups"]["variant"] for s in samples} == {"v0: ascending, numeric", "v1: descending, verbal"}
    page = open_page(browser, out / "report.html")
    assert page.text_content("#v-count") == "4 of 4 samples"
    assert "Questionnaire answers per prompt variant" in page.text_content("body")
    page.locator("#v-list details.sample summary").first.click()
    body = page.locator("#v-list .sample-body").first.text_content()
    assert "parsed answer" in body and samples[0]["output"].strip()[:20] in body
    assert page.errors == []  # type: ignore[attr-defined]


def test_judge_report_shows_both_orders(browser, tmp_path, shared_data):  # noqa: F811
    runs = []
    for name, extra in (("plain", []), ("hhh", ["--in-context-goal", "hhh"])):
        run_cli("eval", "--model", "smollm2", "--tasks", "instr_seed_tasks", "--limit", "2", "--data-dir", str(shared_data),
                "--out", str(tmp_path / name), *extra)
        runs.append(str(tmp_path / name))
    run_cli("judge", *runs, "--judge", "smollm2", "--limit", "2", "--max-tokens", "48", "--out", str(tmp_path / "judge"))
    samples = read_samples(tmp_path / "judge")
    assert len(samples) == 2 and all(s["kind"] == "judge_pairwise" for s in samples)
    page = open_page(browser, tmp_path / "judge" / "report.html")
    page.locator("#v-list details.sample summary").first.click()
    body = page.locator("#v-list .sample-body").first.text_content()
    assert "order 1" in body and "order 2" in body and "rationale" in body and "answer 1 (plain)" in body
    assert page.errors == []  # type: ignore[attr-defined]
