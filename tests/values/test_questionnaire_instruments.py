"""Instrument files, ValueBench inventories and their scoring keys (no model)."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest

from aligngoals.data.records import QuestionnaireItem
from aligngoals.errors import AligngoalsError, ConfigError, DataError
from aligngoals.values.questionnaires import Scorer, keyed_matrix, load_valuebench, resolve_instrument, to_records
from aligngoals.values.questionnaires.valuebench import VALUEBENCH_RELPATH, list_inventories


@pytest.fixture(scope="module")
def vb_csv(shared_data):
    p = shared_data / VALUEBENCH_RELPATH
    if not p.is_file():
        pytest.skip(f"needs ValueBench's item bank at {p}")
    return p


def _rows(path, inventory):
    with open(path, newline="", encoding="utf-8") as fh:
        return [r for r in csv.DictReader(fh) if r["questionnaire"] == inventory]


def test_pvq40_key_matches_the_published_item_assignment(vb_csv):
    inst = load_valuebench(vb_csv, "PVQ40")
    assert inst.scoring.rule == "centered" and len(inst.items) == 40
    by_dim = {d: [int(it.id[3:]) for it in inst.items if it.dimension == d] for d in inst.item_dimensions}
    # Schwartz (2003) PVQ-40 key
    assert by_dim == {
        "Self-Direction": [1, 11, 22, 34], "Power": [2, 17, 39], "Universalism": [3, 8, 19, 23, 29, 40],
        "Achievement": [4, 13, 24, 32], "Security": [5, 14, 21, 31, 35], "Stimulation": [6, 15, 30],
        "Conformity": [7, 16, 28, 36], "Tradition": [9, 20, 25, 38], "Hedonism": [10, 26, 37],
        "Benevolence": [12, 18, 27, 33],
    }
    assert not any(it.reverse for it in inst.items)
    assert inst.scale.values == [1, 2, 3, 4, 5, 6]
    assert set(inst.scoring.groups) == {"Openness to Change", "Self-Enhancement", "Conservation", "Self-Transcendence"}


def test_mfq_keys_have_six_items_per_foundation(vb_csv):
    mfq30 = load_valuebench(vb_csv, "MFT08")
    assert Counter(it.dimension for it in mfq30.items) == {d: 6 for d in ["Care", "Fairness", "Loyalty", "Authority", "Purity"]}
    # the MFQ30 item numbers: Care = 1 7 12 17 23 28 (moralfoundations.org key)
    assert sorted(it.meta["mfq"] for it in mfq30.items if it.dimension == "Care") == [1, 7, 12, 17, 23, 28]
    assert sorted(it.meta["mfq"] for it in mfq30.items if it.dimension == "Purity") == [5, 11, 16, 21, 27, 32]
    assert mfq30.scale.values == [0, 1, 2, 3, 4, 5] and mfq30.scoring.rule == "mean"
    mfq2 = load_valuebench(vb_csv, "MFT23")
    assert Counter(it.dimension for it in mfq2.items) == {d: 6 for d in
                                                          ["Care", "Equality", "Proportionality", "Loyalty", "Authority", "Purity"]}


def test_vsm13_key_maps_rows_to_vsm_items_and_formulas(vb_csv):
    inst = load_valuebench(vb_csv, "VSM13")
    assert [it.id for it in inst.items] == [f"m{i:02d}" for i in range(1, 25)]
    assert inst.dimensions == ["PDI", "IDV", "MAS", "UAI", "LTO", "IVR"]
    # every answer code runs opposite to agreement except question 20 (1 = never ... 5 = always)
    assert [it.id for it in inst.items if not it.reverse] == ["m20"]
    # ValueBench's agreement column disagrees with the manual on exactly that item
    assert [c["item"] for c in inst.source["keying_check"]] == ["m20"]
    # Score a respondent by hand: agreement answers a -> VSM codes 6 - a (m20: a).
    a = np.array([5, 4, 3, 2, 1, 5, 4, 3, 2, 1, 5, 4, 3, 2, 1, 5, 4, 3, 2, 1, 5, 4, 3, 2], dtype=float)
    codes = 6 - a
    codes[19] = a[19]
    m = {f"m{i + 1:02d}": codes[i] for i in range(24)}
    X = keyed_matrix(inst, [a])
    assert X[0].tolist() == codes.tolist()
    s = Scorer(inst).score(X[0])
    assert s["PDI"] == pytest.approx(35 * (m["m07"] - m["m02"]) + 25 * (m["m20"] - m["m23"]))
    assert s["IDV"] == pytest.approx(35 * (m["m04"] - m["m01"]) + 35 * (m["m09"] - m["m06"]))
    assert s["MAS"] == pytest.approx(35 * (m["m05"] - m["m03"]) + 35 * (m["m08"] - m["m10"]))
    assert s["UAI"] == pytest.approx(40 * (m["m18"] - m["m15"]) + 25 * (m["m21"] - m["m24"]))
    assert s["LTO"] == pytest.approx(40 * (m["m13"] - m["m14"]) + 25 * (m["m19"] - m["m22"]))
    assert s["IVR"] == pytest.approx(35 * (m["m12"] - m["m11"]) + 40 * (m["m17"] - m["m16"]))
    # concretely: a07 = a02 = 4 -> m07 = m02 = 2; a20 = 1 -> m20 = 1 (as is); a23 = 3 -> m23 = 3:
    # PDI = 35(2 - 2) + 25(1 - 3) = -50
    assert s["PDI"] == pytest.approx(-50.0)


def test_names_and_aliases_resolve(vb_csv):
    assert resolve_instrument("schwartz", data_dir=vb_csv.parent.parent).name == "PVQ40"
    assert resolve_instrument("hofstede", data_dir=vb_csv.parent.parent).scoring.rule == "index"
    assert resolve_instrument(str(vb_csv), inventory="MFT23").name == "MFQ2"
    generic = resolve_instrument(None, inventory="SWLS", data_dir=vb_csv.parent.parent)
    assert generic.scoring.rule == "mean" and "generic" in generic.notes[0]
    assert "PVQ40" in list_inventories(vb_csv)
    # a key file given as the instrument takes its items from ValueBench in the data folder
    from aligngoals.values.questionnaires.valuebench import builtin_keys

    key_path = str(builtin_keys()["VSM13"])
    assert resolve_instrument(key_path, data_dir=vb_csv.parent.parent).source["key"] == key_path
    with pytest.raises(ConfigError, match="--inventory"):
        resolve_instrument(str(vb_csv))
    with pytest.raises(AligngoalsError, match="pvq40") as e:
        load_valuebench(vb_csv, "pvq40")
    assert "PVQ40" in (e.value.hint or "")


def _write_bank(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["questionnaire", "item", "value", "agreement", "question"])
        w.writeheader()
        w.writerows(rows)


def test_a_changed_item_bank_is_caught_with_file_line_and_field(vb_csv, tmp_path):
    rows = _rows(vb_csv, "PVQ40")
    bad = [dict(r) for r in rows]
    bad[6]["value"] = "Tradition"  # PVQ item 7 is Conformity
    _write_bank(tmp_path / "bank.csv", bad)
    with pytest.raises(DataError, match=r"bank\.csv: PVQ40 item 7 .*field 'value' is 'Tradition'.*Conformity"):
        load_valuebench(tmp_path / "bank.csv", "PVQ40")
    swapped = [dict(r) for r in rows]
    swapped[0], swapped[1] = swapped[1], swapped[0]
    _write_bank(tmp_path / "swapped.csv", swapped)
    with pytest.raises(DataError, match="does not start with"):
        load_valuebench(tmp_path / "swapped.csv", "PVQ40")
    bad_agree = [dict(r) for r in rows]
    bad_agree[2]["agreement"] = "yes"
    _write_bank(tmp_path / "agree.csv", bad_agree)
    with pytest.raises(DataError, match=r"agree\.csv:4\b.*field 'agreement'"):
        load_valuebench(tmp_path / "agree.csv", "PVQ40")


def test_user_key_overrides_the_packaged_one(vb_csv, tmp_path):
    key = tmp_path / "vsm_mean.yaml"
    key.write_text(
        "inventory: VSM13\nname: VSM13-means\n"
        "scale: {points: [{value: 1, label: Never}, {value: 2, label: Maybe}, {value: 3, label: Always}]}\n"
        "scoring: {rule: mean}\n", encoding="utf-8")
    inst = resolve_instrument(str(vb_csv), inventory="VSM13", key=str(key))
    assert inst.name == "VSM13-means" and inst.scoring.rule == "mean"
    # without an items list the keying comes from ValueBench's agreement column
    assert sum(it.reverse for it in inst.items) == sum(1 for r in _rows(vb_csv, "VSM13") if r["agreement"] == "-1")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(key.read_text().replace("VSM13\n", "PVQ40\n", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match="inventory"):
        resolve_instrument(str(vb_csv), inventory="VSM13", key=str(wrong))


def test_builtin_instrument_and_records():
    inst = resolve_instrument("assistant_values")
    assert len(inst.items) == 15 and inst.dimensions == ["Helpfulness", "Honesty", "Harmlessness"]
    assert Counter(it.dimension for it in inst.items if it.reverse) == {"Helpfulness": 2, "Honesty": 2, "Harmlessness": 2}
    recs = to_records(inst)
    assert isinstance(recs[0], QuestionnaireItem) and recs[3].reverse and recs[0].instrument == "assistant_values"


def test_instrument_file_errors_name_file_and_field(tmp_path):
    p = tmp_path / "inst.yaml"
    p.write_text("name: x\nscale: {points: [{value: 1, label: a}, {value: 2, label: b}]}\n"
                 "scoring: {rule: median}\nitems: [{id: q1, text: hi, dimension: D}]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"inst\.yaml: field 'scoring\.rule'"):
        resolve_instrument(str(p))
    p.write_text("name: x\nscale: {points: [{value: 1, label: a}, {value: 2, label: b}]}\n"
                 "scoring: {rule: mean}\nitems: [{id: q1, dimension: D}]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="key file"):
        resolve_instrument(str(p))
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_instrument(str(tmp_path / "missing.yaml"))
    with pytest.raises(AligngoalsError):
        resolve_instrument("no_such_instrument_name", data_dir=tmp_path)


def test_item_csv_with_key(tmp_path):
    (tmp_path / "items.csv").write_text("id,text,dimension,reverse\nq1,I like rules.,Order,\nq2,Rules are silly.,Order,true\n",
                                        encoding="utf-8")
    (tmp_path / "key.yaml").write_text("scale: {points: [{value: 1, label: No}, {value: 2, label: Yes}]}\nscoring: {rule: mean}\n",
                                       encoding="utf-8")
    with pytest.raises(ConfigError, match="quotes"):  # YAML reads No/Yes as booleans
        resolve_instrument(str(tmp_path / "items.csv"), key=str(tmp_path / "key.yaml"))
    (tmp_path / "key.yaml").write_text('scale: {points: [{value: 1, label: "No"}, {value: 2, label: "Yes"}]}\nscoring: {rule: mean}\n',
                                       encoding="utf-8")
    inst = resolve_instrument(str(tmp_path / "items.csv"), key=str(tmp_path / "key.yaml"))
    assert [it.reverse for it in inst.items] == [False, True]
    assert Scorer(inst).score(keyed_matrix(inst, [[2, 2]])[0]) == {"Order": 1.5}
    with pytest.raises(ConfigError, match="--key"):
        resolve_instrument(str(tmp_path / "items.csv"))


def test_limit_drops_index_formulas_that_lose_items(vb_csv):
    inst = load_valuebench(vb_csv, "VSM13").head(10)
    # items 1-10 carry IDV (01, 04, 06, 09) and MAS (03, 05, 08, 10) completely
    assert inst.dimensions == ["IDV", "MAS"]
    assert any("not scored" in n for n in inst.notes)
    with pytest.raises(ConfigError, match="no complete index"):
        load_valuebench(vb_csv, "VSM13").head(3)
