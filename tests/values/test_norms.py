"""Social norms: readers on the real files, sampling, rule cleaning, AUC, similarity, and a tiny real run."""

from __future__ import annotations

import pytest

from aligngoals.errors import DataError
from aligngoals.values.norms import NormsConfig, clean_rule, load_source, plan, run_norms
from aligngoals.values.norms.data import balanced_labels, balanced_pairs, one_per_group
from aligngoals.values.norms.task import _auc, request_count


def test_clean_rule():
    assert clean_rule("Rule of thumb: It's wrong to lie to friends. Because trust matters.") == "It's wrong to lie to friends."
    assert clean_rule('\n\n- "You should help others."\nMore text') == "You should help others."
    assert clean_rule("**Rule:** Be kind") == "Be kind"
    assert clean_rule("   ") == ""


def test_auc_hand_computed():
    # positives 0.9, 0.4; negatives 0.5, 0.4 -> pairs: (0.9>0.5) 1, (0.9>0.4) 1, (0.4<0.5) 0, (0.4=0.4) 0.5 -> 2.5/4
    assert _auc([(0.9, 1), (0.4, 1), (0.5, 0), (0.4, 0)]) == pytest.approx(0.625)
    assert _auc([(0.9, 1)]) is None


def test_readers_on_real_files(shared_data):
    ms = load_source("moral_stories", str(shared_data))
    assert len(ms) == 2000 and {x.label for x in ms} == {0, 1} and all(x.norm and x.action for x in ms)
    sc = load_source("social_chem_101", str(shared_data))
    assert len(sc) > 1000 and all(x.situation and x.references for x in sc)
    assert any(len(x.references) > 1 for x in sc)  # several RoTs per situation become references
    et = load_source("ethics_commonsense", str(shared_data))
    assert {x.label for x in et} == {0, 1} and all(x.action and x.norm is None for x in et)


def test_missing_data_names_the_path(tmp_path):
    with pytest.raises(DataError) as e:
        load_source("moral_stories", str(tmp_path))
    assert "moral-stories" in e.value.message and e.value.hint and "--data-dir" in e.value.hint


def test_sampling_is_balanced_and_reproducible(shared_data):
    ms = load_source("moral_stories", str(shared_data))
    pairs = balanced_pairs(ms, 10, 0, "t")
    assert len(pairs) == 10 and sum(x.label for x in pairs) == 5
    assert [x.group for x in pairs[::2]] == [x.group for x in pairs[1::2]]  # whole stories
    assert [x.id for x in balanced_pairs(ms, 10, 0, "t")] == [x.id for x in pairs]
    assert [x.id for x in balanced_pairs(ms, 10, 1, "t")] != [x.id for x in pairs]
    et = load_source("ethics_commonsense", str(shared_data))
    assert sum(x.label for x in balanced_labels(et, 8, 0, "t")) == 4
    sc = load_source("social_chem_101", str(shared_data))
    one = one_per_group(sc, 12, 0, "t")
    assert len({x.group for x in one}) == 12


def test_plan_counts(shared_data):
    cfg = NormsConfig(n_judge=4, n_ethics=4, n_name=3, n_generate=2)
    p = plan(cfg, data_dir=str(shared_data), seed=0)
    assert p["counts"] == {"level1": 4, "level2_judge": 8, "level2_name": 6, "level3": 4}
    # judge units: 2 requests (yes/no); name units: 4 candidates; generations: 1
    assert request_count(p) == 12 * 2 + 6 * 4 + 4
    names = [u for u in p["units"] if u["kind"] == "name"]
    assert all(u["choices"][u["answer"]] == u["item"].norm and len(set(u["choices"])) == 4 for u in names)


def test_similarity_metrics():
    from aligngoals.values.norms import similarity

    r = similarity.rouge_to_references(["It is rude to ignore your friends."],
                                       [["You shouldn't lie.", "It is rude to ignore your friends."]])
    assert r == [pytest.approx(1.0)]
    ok, why = similarity.embedder_available()
    if not ok:
        pytest.skip(why)
    cos = similarity.cosine_to_references(["You shouldn't ignore your friends."],
                                          [["It's rude to ignore friends.", "Taxes are due in April."]])
    same = similarity.cosine_to_references(["You shouldn't ignore your friends."], [["Taxes are due in April."]])
    assert cos[0] > 0.6 > same[0]


def test_run_norms_tiny_real_model(llama_model, shared_data, tmp_path):
    from aligngoals.evaluate.cached import CachedModel
    from aligngoals.store import RunStore

    store = RunStore(tmp_path)
    cm = CachedModel(llama_model, store)
    cfg = NormsConfig(n_judge=2, n_ethics=2, n_name=1, n_generate=1, max_tokens=16)
    res = run_norms(cm, cfg, data_dir=str(shared_data), seed=0)
    store.close()
    assert set(res["tasks"]) == {"norms_level1", "norms_level2", "norms_level3"}
    lv = res["section"]["levels"]
    assert lv["1_judge_with_norm"]["acc"]["n"] == 2 and lv["2_judge_without_norm"]["acc"]["n"] == 4
    assert lv["2_name_the_norm"]["norm_acc"]["n"] == 2
    assert lv["3_generate_rule"]["rougeL"]["n"] == 2
    for r in res["items"]["norms_level1"]:
        assert 0.0 <= r["p_yes"] <= 1.0
    assert res["section"]["norm_gain"]["n"] == 2
