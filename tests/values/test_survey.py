"""``run_survey`` and ``aligngoals survey`` on the real embedded model (a handful of items each)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from aligngoals.models.base import LoglikelihoodRequest
from aligngoals.store import RunStore
from aligngoals.values.questionnaires import js_distance, label_distribution, parse_answer, resolve_instrument, run_survey
from aligngoals.values.questionnaires.prompts import build_messages, continuation_for, design_variants

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    from aligngoals.models.registry import load_model

    # One thread: on a shared 2-core machine llama.cpp's spinning threads make 2 threads several times slower.
    m = load_model("smollm2", n_threads=1)
    yield m
    m.close()


def without_run(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "run"}


def test_rating_survey_scores_what_the_model_answered_and_resumes(model, tmp_path):
    out = tmp_path / "run"
    r = run_survey(model, "assistant_values", variants=2, limit=4, out_dir=out, max_tokens=16)
    inst = resolve_instrument("assistant_values").head(4)
    answers = r["answers"]
    assert len(answers) == 8
    prof = r["profiles"]["default"]
    resp = prof["responses"]
    assert resp["total"] == 8 and resp["parsed"] + resp["unparseable"] == 8
    assert sum(resp["by_status"].values()) == 8
    # every stored value is what the parser reads from the stored output under that variant
    design = design_variants(2, len(inst.prompt.stems))
    for a in answers:
        item = next(i for i in inst.items if i.id == a["item"])
        v = design[a["variant"]]
        _, options = build_messages(inst, item, v, None)
        p = parse_answer(a["output"], options, v.labels)
        assert (p.value, p.status) == (a["value"], a["status"])
    # the profile is the mean rule applied to the item means of the keyed answers
    for dim in ("Helpfulness",):
        per_item = []
        for item in inst.items:
            if item.dimension != dim:
                continue
            vals = [a["value"] for a in answers if a["item"] == item.id and a["value"] is not None]
            vals = [6 - x if item.reverse else x for x in vals]
            if vals:
                per_item.append(sum(vals) / len(vals))
        expected = sum(per_item) / len(per_item) if per_item else None
        got = prof["scores"][dim]["score"]
        assert (got is None and expected is None) or got == pytest.approx(expected)
    on_disk = json.loads((out / "survey.json").read_text())
    assert on_disk == r
    with RunStore(out) as store:
        assert store.count_requests("generate") == 8
        assert len(store.items("survey:assistant_values:rating")) == 8
    assert r["run"]["requests_computed"] == 8
    again = run_survey(model, "assistant_values", variants=2, limit=4, out_dir=out, max_tokens=16)
    assert again["run"]["requests_computed"] == 0 and again["run"]["requests_cached"] == 8
    assert without_run(again) == without_run(r)


def test_distribution_survey_matches_direct_loglikelihoods(model, tmp_path, shared_data):
    if not (shared_data / "valuebench" / "value_orientation.csv").is_file():
        pytest.skip("needs ValueBench's value_orientation.csv in ../shared/data")
    out = tmp_path / "dist"
    target = {"name": "uniform", "profile": {"Self-Direction": 0.5, "Power": -0.5, "Universalism": 0.0},
              "distributions": {"PVQ01": [1, 1, 1, 1, 1, 1], "PVQ02": {"6": 0.5, "Not like me at all": 0.5}}}
    r = run_survey(model, "PVQ40", data_dir=shared_data, mode="distribution", variants=2, limit=6, out_dir=out,
                   target=target)
    inst = resolve_instrument("PVQ40", data_dir=shared_data).head(6)
    answers = r["answers"]
    assert len(answers) == 12
    for a in answers:
        assert len(a["probs"]) == 6 and sum(a["probs"]) == pytest.approx(1.0)
        assert a["value"] == pytest.approx(sum((i + 1) * p for i, p in enumerate(a["probs"])))
        assert 0 < a["mass"] <= 1
    # recompute one descending, verbal cell straight from the model
    v = design_variants(2, len(inst.prompt.stems))[1]
    assert (v.order, v.labels) == ("descending", "verbal")
    messages, options = build_messages(inst, inst.items[0], v, None)
    ctx = model.apply_chat_template(messages, add_generation_prompt=True)
    conts = [continuation_for(o, v) for o in options]
    lps = [x.logprob for x in model.loglikelihood([LoglikelihoodRequest(ctx, c) for c in conts])]
    probs, _, _ = label_distribution(conts, lps)
    by_value = sorted(zip([o.value for o in options], probs))
    got = next(a for a in answers if a["item"] == "PVQ01" and a["variant"] == 1)["probs"]
    assert got == pytest.approx([p for _, p in by_value], abs=1e-6)
    # centered scores: dimension mean of expected answers minus the mean over all items (MRAT)
    prof = r["profiles"]["default"]
    item_mean = {it.id: np.mean([a["value"] for a in answers if a["item"] == it.id]) for it in inst.items}
    mrat = np.mean(list(item_mean.values()))
    assert prof["mrat"] == pytest.approx(mrat)
    sd_items = [it.id for it in inst.items if it.dimension == "Security"]
    assert prof["scores"]["Security"]["score"] == pytest.approx(np.mean([item_mean[i] for i in sd_items]) - mrat)
    # comparison with the target
    comp = prof["comparison"]
    assert comp["profile"]["difference"]["Power"] == pytest.approx(prof["scores"]["Power"]["score"] + 0.5)
    js = comp["distributions"]["per_item"]
    assert js["PVQ01"]["js_distance"] == pytest.approx(js_distance(prof["distributions"]["PVQ01"], [1] * 6))
    assert js["PVQ02"]["js_distance"] == pytest.approx(js_distance(prof["distributions"]["PVQ02"], [0.5, 0, 0, 0, 0, 0.5]))
    with RunStore(out) as store:
        assert store.count_requests("loglikelihood") == 72
    assert all(math.isfinite(prof["scores"][d]["ci_low"]) for d in ("Power", "Security"))


def test_personas_and_countries_are_separate_respondents(model, tmp_path):
    r = run_survey(model, "assistant_values", variants=1, limit=2, out_dir=tmp_path / "p", max_tokens=8,
                   personas=["a retired schoolteacher"], countries=["Japan"])
    assert list(r["profiles"]) == ["persona: a retired schoolteacher", "country: Japan"]
    with RunStore(tmp_path / "p") as store:
        prompts = [d["prompt"] for _, _, d in store.items()]
    assert len(prompts) == 4
    assert sum("retired schoolteacher" in p[0] for p in prompts) == 2
    assert sum("living in Japan" in p[0] for p in prompts) == 2


CLI = [sys.executable, "-m", "aligngoals.cli.main"]


def test_cli_survey_prints_profile_and_writes_json(tmp_path):
    out = tmp_path / "cli"
    p = subprocess.run([*CLI, "survey", "--instrument", "assistant_values", "--limit", "3", "--variants", "1",
                        "--threads", "1", "--max-tokens", "8", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "Helpfulness" in p.stdout and "usable" in p.stdout
    data = json.loads((out / "survey.json").read_text())
    assert data["instrument"]["name"] == "assistant_values" and data["settings"]["mode"] == "rating"
    bad = subprocess.run([*CLI, "survey", "--instrument", str(tmp_path / "nope.yaml")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "does not exist" in bad.stderr
    lst = subprocess.run([*CLI, "survey", "--list"], capture_output=True, text=True, timeout=120)
    assert lst.returncode == 0 and "assistant_values" in lst.stdout and "VSM13" in lst.stdout
