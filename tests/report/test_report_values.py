"""The report's value section: every part shown, charts drawn, model text escaped."""

from __future__ import annotations

from aligngoals.judges.ratings import Battle
from aligngoals.report import SCHEMA_VERSION, render_html, write_report
from aligngoals.report.writer import value_charts
from aligngoals.values.dilemmas import DilemmaSet, Scenario
from aligngoals.values.dilemmas.task import DilemmaConfig
from aligngoals.values.dilemmas.task import aggregate as dilemma_aggregate
from aligngoals.values.norms.task import aggregate as norms_aggregate
from aligngoals.values.safety import SafetyConfig
from aligngoals.values.safety.task import aggregate as safety_aggregate

EVIL = "<script>alert('x')</script>"


def _ci(v, n=4):
    return {"value": v, "ci_low": max(0.0, v - 0.1), "ci_high": min(1.0, v + 0.1), "n": n}


def _norms():
    judge = lambda i, lvl, lab, p: {"id": f"m{i}", "source": "moral_stories", "prompt": "q", "kind": "judge",  # noqa: E731
                                    "label": lab, "p_yes": p, "scores": {"acc": float((p > 0.5) == lab), "said_yes": float(p > 0.5)}}
    rows = {
        "norms_level1": [judge(0, 1, 1, 0.8), judge(1, 1, 0, 0.3)],
        "norms_level2": [judge(0, 2, 1, 0.6), judge(1, 2, 0, 0.7),
                         {"id": "n0", "source": "social_chem_101", "prompt": "q", "kind": "name", "choices": ["a", "b", "c", "d"],
                          "scores": {"norm_acc": 1.0, "norm_acc_raw": 0.0}}],
        "norms_level3": [{"id": "g0", "source": "moral_stories", "prompt": f"Action: {EVIL}", "rule": EVIL,
                          "reference": ["It's wrong to <b>steal</b>."], "scores": {"rougeL": 0.25, "embed_cos": 0.5, "empty": 0.0}}],
    }
    planned = {"counts": {"level1": 2, "level2_judge": 2, "level2_name": 1, "level3": 1}}
    return norms_aggregate(rows, planned, seed=0, notes=[], judged=False)["section"]


def _safety():
    def row(group, rid, refused, cond, base):
        return {"id": rid, "group": group, "condition": cond, "attack": None, "base_id": base, "category": "c",
                "prompt": "p", "output": EVIL, "detector": {"refused": refused, "category": None},
                "judge": {"refused": refused, "violated": ["harmless"], "parsed": True, "raw": EVIL},
                "scores": {"refused": float(refused), "refused_judge": float(refused), "leaked": 0.0, "empty": 0.0,
                           "agree": 1.0}}
    rows = [row("harmful", "a", True, "plain", "a"), row("attacked", "a|r", False, "role_play", "a"),
            row("attacked", "a|g", True, "goal_hijacking", "a"), row("benign", "b", True, "benign", "b")]
    planned = {"attack_types": ["role_play", "goal_hijacking"], "harmful_path": "hh.jsonl.gz", "n_harmful": 1, "n_benign": 1}
    return safety_aggregate(rows, planned, seed=0, judge_name="self", cfg=SafetyConfig())["section"]


def _dilemmas():
    ds = DilemmaSet("hhh", "principles", "hhh", [Scenario("s0", ("harmless", "helpful"), "s", {"harmless": "a", "helpful": "b"}),
                                                 Scenario("s1", ("honest", "helpful"), "s", {"honest": "a", "helpful": "b"})])
    rows, battles = [], []
    for sid, (a, b) in (("s0", ("harmless", "helpful")), ("s1", ("honest", "helpful"))):
        for sw in (False, True):
            rows.append({"id": f"{sid}|{sw}", "scenario": sid, "swapped": sw, "between": [a, b], "order": [a, b],
                         "chosen": b, "generated": False, "scores": {"chose_first": float(not sw), "agree_declared": 0.0}})
            battles.append(Battle(a, b, 0.0))
    return dilemma_aggregate(rows, battles, ds, DilemmaConfig(n_boot=50), declared={"harmless": 1, "honest": 2, "helpful": 3},
                             seed=0, name="dilemmas_hhh")["section"]


def _report():
    dims = {d: {"kind": "dimension", "score": s, "ci_low": s - 0.4, "ci_high": s + 0.4, "sd_across_variants": 0.2,
                "alpha": {"alpha": 0.7}, "n_answers": 10} for d, s in (("Helpfulness", 3.5), ("Honesty", 4.1), ("Harmlessness", 2.9))}
    values = {
        "goal": "hhh", "declared_priorities": ["harmless", "honest", "helpful"],
        "questionnaire": {"instrument": "assistant_values", "title": "Assistant values", "rule": "mean", "mode": "distribution",
                          "n_variants": 2, "n_items": 15, "scale": [{"value": 1, "label": "x"}, {"value": 5, "label": "y"}],
                          "profile": dims, "responses": {"parsed": 30, "total": 30, "option_mass_mean": 0.8},
                          "stability": {"mean_sd_across_variants": 0.2, "icc_items": {"icc2_1": 0.55},
                                        "icc_dimensions": {"icc2_1": 0.4}}},
        "norms": _norms(), "safety": _safety(), "dilemmas": _dilemmas(),
        "skipped": {"value_priorities": f"no data {EVIL}"},
    }
    return {"schema_version": SCHEMA_VERSION, "kind": "evaluation", "aligngoals_version": "0",
            "run": {"id": "r", "dir": "d", "started": "s", "finished": "f", "wall_s": 1.0, "requests_cached": 0,
                    "requests_computed": 1},
            "model": {"backend": "llamacpp", "name": "m"}, "settings": {"seed": 0}, "packages": {},
            "tasks": {}, "sections": {"values": values}}


def test_value_section_contents_and_charts():
    rep = _report()
    charts = value_charts(rep)
    assert all(charts[k] and charts[k].startswith("<svg") for k in ("radar", "norms", "refusal", "priorities"))
    html = render_html(rep)
    for text in ("Questionnaire profile", "Helpfulness", "0.550",  # ICC
                 "Social norms at three difficulties", "1_judge_with_norm", "2_name_the_norm", "3_generate_rule",
                 "Safety under pressure", "attacked: role_play", "attacked: goal_hijacking", "over-refusal",
                 "Cohen", "Dilemmas: inferred vs declared priorities", "Kendall", "Inverted pairs",
                 "helpful above harmless", "Choice stability under option swap"):
        assert text in html, text
    assert html.count("<svg") >= 4
    # ranks: declared harmless first, inferred helpful first
    assert "<td>harmless</td>" in html and "<td>helpful</td>" in html


def test_value_section_escapes_model_text(tmp_path):
    rep = _report()
    html = render_html(rep)
    assert EVIL not in html and "&lt;script&gt;" in html
    assert "<b>steal</b>" not in html and "&lt;b&gt;steal&lt;/b&gt;" in html
    j, h = write_report(rep, tmp_path)
    assert h.read_text() == html or "&lt;script&gt;" in h.read_text()


def test_report_without_value_section_still_renders():
    rep = _report()
    rep["sections"] = {"other": {"x": EVIL}}
    html = render_html(rep)
    assert "Questionnaire profile" not in html and EVIL not in html
