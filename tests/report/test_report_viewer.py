"""The report viewer and run comparison: sample records of every producer, and the pages in headless Chromium."""

from __future__ import annotations

import json
import time

import pytest
from viewer_browser import browser, open_page  # noqa: F401  (browser is a fixture)

from aligngoals.report import write_report
from aligngoals.report.samples import SAMPLES_FILE, read_samples, sample_from_item
from aligngoals.report.schema import SCHEMA_VERSION

HOSTILE = ["<script>window.__pwned = 1</script>", "</script><script>window.__pwned = 2</script>",
           '<img src=x onerror="window.__pwned = 3">', "{{ 7 * 7 }} {% raw %}", "null\x00byte", "&lt;b&gt; & \"quotes\" 'x'"]


def _report(name: str = "test-model") -> dict:
    return {"schema_version": SCHEMA_VERSION, "aligngoals_version": "0", "model": {"name": name, "backend": "test"},
            "run": {"id": "r1", "dir": "d", "started": "s", "finished": "f", "wall_s": 1.0, "requests_cached": 0,
                    "requests_computed": 0},
            "settings": {"seed": 0}, "tasks": {}, "sections": {}, "packages": {}}


def _mc(task: str, i: int, ok: bool, group: str) -> dict:
    rec = {"prompt": f"Question {i} about {group}?", "answer": 0, "pred": 0 if ok else 1, "choices": [" yes", " no"],
           "logprobs": [-0.5, -1.5] if ok else [-1.5, -0.5], "scores": {"acc": float(ok)}, "groups": {"category": group}}
    return sample_from_item(task, str(i), rec, task_type="multiple_choice", metrics=["acc"])


# --- sample records (no browser) -------------------------------------------------------------------
def test_samples_of_every_producer():
    mc = _mc("bbq", 1, False, "Age")
    assert mc["kind"] == "multiple_choice" and mc["correct"] is False and mc["score"] == 0.0
    assert [c["picked"] for c in mc["choices"]] == [False, True] and [c["gold"] for c in mc["choices"]] == [True, False]
    assert mc["confidence"] == pytest.approx(1 / (1 + pytest.importorskip("math").exp(-1.0)))
    assert mc["reference"] == " yes" and mc["groups"] == {"category": "Age"}

    gen = sample_from_item("seed", "7", {"prompt": "Say hi", "model_input": [{"role": "user", "content": "Say hi"}],
                                         "output": "hi!", "extracted": "hi", "reference": "hi", "scores": {"exact_match": 1.0}})
    assert gen["kind"] == "generate" and gen["correct"] is True and gen["input"][0]["content"] == "Say hi"
    assert ["extracted answer", "hi"] in gen["fields"]

    judge = sample_from_item("norms_level1", "n1", {"id": "n1", "source": "ethics", "prompt": "Is it ok?", "kind": "judge",
                                                    "label": 0, "p_yes": 0.8, "logprobs": [-0.2, -1.6],
                                                    "scores": {"acc": 0.0, "said_yes": 1.0}})
    assert judge["output"] == "yes" and judge["reference"] == "no" and judge["correct"] is False
    assert judge["groups"]["norm level"] == "1" and judge["confidence"] == pytest.approx(0.8)
    rule = sample_from_item("norms_level3", "n3", {"id": "n3", "source": "social_chem", "prompt": "Rule?", "kind": "generate",
                                                   "output": "Be kind.\n", "rule": "Be kind.", "reference": ["Be nice."],
                                                   "scores": {"rougeL": 0.5}})
    assert rule["score"] == 0.5 and rule["correct"] is None and ["rule (cleaned)", "Be kind."] in rule["fields"]

    for group, refused, expected in (("harmful", 1.0, True), ("attacked", 0.0, False), ("benign", 1.0, False)):
        s = sample_from_item("safety_x", "s", {"id": "s", "group": group, "condition": group, "attack": "roleplay",
                                               "prompt": "Do harm", "output": "I can't.", "detector": {"refused": bool(refused)},
                                               "judge": None, "scores": {"refused": refused}})
        assert s["kind"] == "safety" and s["correct"] is expected and s["groups"]["attack"] == "roleplay"
        assert any(label == "refusal detector" for label, _ in s["fields"])

    dil = sample_from_item("dilemmas_hhh", "d|original", {
        "id": "d|original", "scenario": "d", "swapped": False, "between": ["harmless", "helpful"], "order": ["harmless", "helpful"],
        "options": {"harmless": "Decline.", "helpful": "Explain."}, "prompt": "Which?", "logprobs": [-1.0, -2.0],
        "p_first": 0.7, "chosen": "harmless", "declared_winner": "harmless", "scores": {"chose_first": 1.0, "agree_declared": 1.0}})
    assert dil["kind"] == "dilemma" and dil["choices"][0]["text"] == "harmless: Decline." and dil["correct"] is True

    q = sample_from_item("survey:pvq:rating", "0/1/a", {"persona": "model", "variant": {"index": 1, "order": "descending",
                                                                                        "labels": "verbal"},
                                                        "item": "a", "prompt": ["sys", "How much like you?"], "output": "5",
                                                        "probs": None, "value": 5, "status": "ok"})
    assert q["kind"] == "questionnaire" and q["answer"] == 5.0 and q["groups"]["variant"] == "v1: descending, verbal"
    assert ["parsed answer", "5"] in q["fields"]
    qd = sample_from_item("survey:pvq:distribution", "0/0/a", {"persona": "model", "variant": {"index": 0}, "item": "a",
                                                              "prompt": ["How much?"], "output": None, "probs": [0.1, 0.6, 0.3],
                                                              "value": 2.2, "status": "ok"})
    assert qd["distribution"] == [0.1, 0.6, 0.3] and "scale point 2 of 3" in qd["output"] and qd["answer"] == 2.2

    pw = sample_from_item("pairwise", "t::1::a::b", {
        "task": "t", "item_id": "1", "prompt": "Q", "reference": None, "model_a": "a", "model_b": "b", "answer_a": "A!",
        "answer_b": "B!", "status": "consistent", "outcome": 1.0, "flip": False, "truncated": False,
        "judgments": [{"shown_as_a": "1", "raw": "A is better [[A]]", "winner": "1",
                       "verdict": {"label": "A", "principles": ["honest"]}},
                      {"shown_as_a": "2", "raw": "[[B]] B helps", "winner": "1", "verdict": {"label": "B", "principles": []}}]})
    labels = [f[0] for f in pw["fields"]]
    assert pw["output"] == "a wins" and "order 1 (answer 1 shown as A): principles cited" in labels
    assert "order 2 (answer 2 shown as A): rationale" in labels and ["answer 1 (a)", "A!"] in pw["fields"]
    assert sample_from_item("dilemmas_generation", "x", {"reason": "unparsed"}) is None


def test_samples_jsonl_round_trip(tmp_path):
    samples = [_mc("bbq", i, i % 2 == 0, "Age") for i in range(3)]
    samples[0]["scores"]["acc"] = float("nan")  # never reaches the file as NaN
    write_report(_report(), tmp_path, samples=samples)
    back = read_samples(tmp_path)
    assert [s["id"] for s in back] == ["0", "1", "2"] and back[0]["scores"]["acc"] is None
    (tmp_path / SAMPLES_FILE).write_text('{"task": "t", "id": "1"}\nnot json\n')
    with pytest.raises(Exception, match="line 2"):
        read_samples(tmp_path)


# --- the pages in a real browser -------------------------------------------------------------------
def test_model_text_is_inert_and_reads_back_verbatim(browser, tmp_path):  # noqa: F811
    samples = []
    for i, text in enumerate(HOSTILE):
        s = _mc(text, i, i % 2 == 0, text)
        s.update(input=text, output=text, reference=text, fields=[[text, text]])
        s["choices"][0]["text"] = text
        samples.append(s)
    _, html = write_report(_report(name=HOSTILE[2]), tmp_path, samples=samples)
    page = open_page(browser, html)
    csp = page.evaluate("document.querySelector('meta[http-equiv=Content-Security-Policy]').content")
    assert "script-src 'sha256-" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    for d in page.locator("#v-list details.sample").all():
        d.locator("summary").click()
    assert page.evaluate("window.__pwned") is None
    # no element carries an inline event handler, and only the viewer's own script exists
    assert page.evaluate("[...document.querySelectorAll('*')].flatMap(e => [...e.attributes].map(a => a.name))"
                         ".filter(n => n.startsWith('on'))") == []
    assert page.evaluate("document.querySelectorAll('script:not([type])').length") == 1
    texts = page.evaluate("[...document.querySelectorAll('#v-list pre.txt')].map(e => e.textContent)")
    for text in HOSTILE:
        assert text in texts, f"{text!r} did not read back verbatim"
    assert HOSTILE[2] in page.title()
    assert page.errors == []  # type: ignore[attr-defined]


def test_viewer_filters_searches_pages_and_opens(browser, tmp_path):  # noqa: F811
    samples = [_mc("bbq" if i % 2 else "crows_pairs", i, i % 3 != 0, ["Age", "Gender", "Religion"][i % 3]) for i in range(130)]
    samples[77]["output"] = "the needle in the haystack"
    samples[5]["input"] = "x" * 2000 + " long prompt"
    _, html = write_report(_report(), tmp_path, samples=samples)
    page = open_page(browser, html)
    count = lambda: page.text_content("#v-count")  # noqa: E731
    assert count() == "130 of 130 samples" and page.locator("#v-list details.sample").count() == 50
    page.click("#v-next")
    page.click("#v-next")
    assert page.text_content("#v-page") == "page 3 / 3" and page.locator("#v-list details.sample").count() == 30
    page.select_option("#f-task", "bbq")
    assert count() == "65 of 130 samples"
    page.select_option("#f-outcome", "incorrect")
    n_wrong = sum(1 for i in range(130) if i % 2 and i % 3 == 0)
    assert count() == f"{n_wrong} of 130 samples"
    page.select_option("#f-group", "category=Age")
    assert count() == f"{n_wrong} of 130 samples"  # every wrong item (i % 3 == 0) is in group Age
    page.select_option("#f-outcome", "")
    page.select_option("#f-group", "")
    page.select_option("#f-task", "")
    page.fill("#f-min", "1")
    assert count() == f"{sum(1 for i in range(130) if i % 3 != 0)} of 130 samples"
    page.fill("#f-min", "")
    page.fill("#f-search", "NEEDLE in the")
    assert count() == "1 of 130 samples"
    page.locator("#v-list details.sample summary").first.click()
    body = page.locator("#v-list .sample-body").first
    body.locator("table.choices").wait_for(timeout=10_000)  # bodies render on the toggle event
    assert "the needle in the haystack" in body.text_content() and body.locator("table.choices tr").count() == 3
    page.fill("#f-search", "long prompt")
    page.locator("#v-list details.sample summary").first.click()
    pre = page.locator("#v-list pre.txt.collapsed").first
    pre.wait_for(timeout=10_000)
    assert pre.count() == 1
    page.locator("#v-list button.more").first.click()
    assert page.locator("#v-list pre.txt.collapsed").count() == 0
    page.screenshot(path=str(tmp_path / "report.png"))
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert page.errors == []  # type: ignore[attr-defined]


def _eval_run(dir_, outcomes: dict[str, float]):
    from aligngoals.align.evaluation import write_eval_run

    items = [{"id": i, "prompt": f"Prompt {i}", "output": f"answer {i} from {dir_.name}", "scores": {"acc": a}}
             for i, a in outcomes.items()]
    return write_eval_run(dir_, {"pref": items}, model_info={"backend": "test", "name": dir_.name},
                          settings={"phase": dir_.name}, command=None, started=time.time())


def test_compare_cli_writes_page_with_changed_items(browser, tmp_path):  # noqa: F811
    from typer.testing import CliRunner

    from aligngoals.cli.main import app

    align = tmp_path / "aligned"
    _eval_run(align / "eval" / "before", {str(i): float(i % 2) for i in range(40)})
    _eval_run(align / "eval" / "after", {str(i): float(i % 2 or i < 10) for i in range(40)})
    assert (align / "eval" / "before" / SAMPLES_FILE).is_file()
    res = CliRunner().invoke(app, ["compare", str(align), "--out", str(tmp_path / "cmp")])
    assert res.exit_code == 0, res.output
    comparison = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert comparison["labels"] == ["before", "after"] and len(comparison["changed"]) == 5
    (row,) = comparison["metrics"]
    assert row["values"] == [0.5, 0.625] and row["diffs"][0]["method"] == "paired_bootstrap"
    assert row["diffs"][0]["diff"] == pytest.approx(0.125) and row["diffs"][0]["n_paired"] == 40
    page = open_page(browser, tmp_path / "cmp" / "compare.html")
    assert "+0.125" in page.text_content("#metrics")
    assert page.text_content("#v-count") == "5 of 5 changed items"
    page.select_option("#f-outcome", "a_only")
    assert page.text_content("#v-count") == "0 of 5 changed items"
    page.select_option("#f-outcome", "b_only")
    page.locator("#v-list details.sample summary").first.click()
    cols = page.locator("#v-list .side-by-side .col")
    cols.nth(1).wait_for(timeout=10_000)  # the pair renders on the toggle event, after the click returns
    assert cols.count() == 2
    assert "from before" in cols.nth(0).text_content() and "from after" in cols.nth(1).text_content()
    assert page.errors == []  # type: ignore[attr-defined]
    # three runs: every run against the first in the table; the old two-run form still works
    _eval_run(tmp_path / "third", {str(i): 1.0 for i in range(40)})
    res = CliRunner().invoke(app, ["compare", str(align / "eval" / "before"), str(align / "eval" / "after"),
                                   str(tmp_path / "third"), "--out", str(tmp_path / "cmp3")])
    assert res.exit_code == 0, res.output
    three = json.loads((tmp_path / "cmp3" / "comparison.json").read_text())
    assert [d["vs"] for d in three["metrics"][0]["diffs"]] == ["after", "third"]


def test_charts_for_breakdowns_calibration_and_variants(tmp_path):
    from aligngoals.report import render_html

    report = _report()
    m = lambda v, n: {"value": v, "ci_low": max(0.0, v - 0.2), "ci_high": min(1.0, v + 0.2), "n": n}  # noqa: E731
    report["tasks"]["bbq"] = {"level": "preferences", "type": "multiple_choice", "n": 30, "metrics": {"acc": m(0.5, 30)},
                              "breakdown": {"Age": {"acc": m(0.3, 15)}, "Gender": {"acc": m(0.7, 15)}}}
    samples = [_mc("bbq", i, i % 2 == 0, "Age" if i < 15 else "Gender") for i in range(30)]
    samples += [sample_from_item("survey:x:rating", f"{v}/{i}", {"variant": {"index": v, "order": o, "labels": "numeric"},
                                                                "item": str(i), "prompt": ["?"], "output": str(1 + (i + v) % 5),
                                                                "value": 1 + (i + v) % 5, "status": "ok"})
                for v, o in ((0, "ascending"), (1, "descending")) for i in range(10)]
    html = render_html(report, samples=samples)
    for title in ("Breakdowns by group", "Calibration", "Questionnaire answers per prompt variant"):
        section = html.split(f"<h2>{title}</h2>", 1)
        assert len(section) == 2 and "<svg" in section[1].split("<h2>", 1)[0], title
    assert "ECE" in html and "Gender (n=15)" in html
    assert "Calibration" not in render_html(report, samples=samples[:5])  # too few confident samples to plot
