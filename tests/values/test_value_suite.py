"""The value suite end to end on the embedded model (tiny sizes), resume from the store, options and merging."""

from __future__ import annotations

import pytest

from aligngoals.errors import AligngoalsError, ConfigError
from aligngoals.evaluate.runner import EvalSettings
from aligngoals.values.suite import ValueSuiteOptions, is_value_goal, merge_value_results, run_value_suite

TINY = {"attack_types": ["role_play"], "safety_max_tokens": 12, "judge": "none", "variants": 1, "n_generate": 1,
        "value_dilemmas": False}


def test_options_validate_and_cap():
    with pytest.raises(ConfigError, match="Unknown value-suite option"):
        ValueSuiteOptions.from_dict({"n_harmfull": 3})
    with pytest.raises(ConfigError, match="judge_scoring"):
        ValueSuiteOptions.from_dict({"judge_scoring": "vibes"})
    with pytest.raises(ConfigError, match="n_benign"):
        ValueSuiteOptions.from_dict({"n_benign": 0})
    o = ValueSuiteOptions().capped(2)
    assert (o.n_harmful, o.n_benign, o.n_dilemmas, o.n_items) == (2, 2, 2, 2)
    assert is_value_goal("hhh")


def test_merge_value_results():
    report = {"tasks": {"a": {}}, "run": {"requests_cached": 1, "requests_computed": 2, "wall_s": 1.0}, "settings": {}}
    vals = {"tasks": {"b": {}}, "section": {"goal": "hhh", "options": {"x": 1}}, "stats": {"cached": 3, "computed": 4},
            "wall_s": 0.5}
    merge_value_results(report, vals)
    assert set(report["tasks"]) == {"a", "b"} and report["sections"]["values"]["goal"] == "hhh"
    assert report["run"] == {"requests_cached": 4, "requests_computed": 6, "wall_s": 1.5}
    report["run"]["finished"] = "2000-01-01T00:00:00+00:00"
    report["tasks"].pop("b")
    merge_value_results(report, vals)
    assert report["run"]["finished"] > "2000-01-01T00:00:00+00:00"
    with pytest.raises(AligngoalsError, match="clash"):
        merge_value_results(report, vals)


def test_value_suite_end_to_end_and_resume(llama_model, shared_data, tmp_path):
    settings = EvalSettings(seed=0, limit=1, data_dir=str(shared_data), extra={"values": TINY})
    first = run_value_suite(llama_model, "hhh", tmp_path, settings)
    sec = first["section"]
    assert {"norms", "safety", "dilemmas", "questionnaire"} <= set(sec) and "skipped" not in sec
    assert sec["declared_priorities"] == ["harmless", "honest", "helpful"]
    assert sec["safety"]["attack_types"] == ["role_play"] and "judge" not in sec["safety"]  # judged in test_safety
    assert sec["questionnaire"]["instrument"] == "assistant_values" and sec["questionnaire"]["n_items"] == 1
    assert sec["dilemmas"]["kendall_tau"]["n"] >= 2 or sec["dilemmas"]["unrated"]
    assert all(t["level"] == "values" for t in first["tasks"].values())
    assert first["stats"]["computed"] > 0
    assert (tmp_path / "survey.json").is_file()

    # Resume: the same call reads every answer from the store and gives the same results.
    again = run_value_suite(llama_model, "hhh", tmp_path, settings)
    assert again["stats"]["computed"] == 0 and again["stats"]["cached"] == first["stats"]["computed"] + first["stats"]["cached"]
    assert again["tasks"] == first["tasks"]

    # Other settings in the same directory are refused instead of mixed.
    other = EvalSettings(seed=1, limit=1, data_dir=str(shared_data), extra={"values": TINY})
    with pytest.raises(AligngoalsError, match="other settings"):
        run_value_suite(llama_model, "hhh", tmp_path, other)


def test_missing_data_skips_parts_with_reason(llama_model, tmp_path):
    opts = {**TINY, "dilemmas": False, "questionnaire": False}
    res = run_value_suite(llama_model, "hhh", tmp_path, EvalSettings(seed=0, limit=1, data_dir=str(tmp_path)),
                          options=opts)
    assert "moral-stories" in res["section"]["skipped"]["norms"]
    assert "harmless-base" in res["section"]["skipped"]["safety"]
    assert res["tasks"] == {}
