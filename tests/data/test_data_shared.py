"""Readers on the real datasets in ../shared/data (read in place, never copied), counted independently.

Expected counts come from the files themselves (non-empty lines, CSV rows via the
csv module) and from SOURCES.md, not from the readers under test.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from aligngoals.data import PreferencePair, QuestionnaireItem, SocialNormExample, detect_format, load_records

# file (relative to shared/data) -> (format, header rows, records per row)
FILES = {
    "ethics/commonsense/cm_test.csv.gz": ("ethics_commonsense", 1),
    "ethics/commonsense/cm_test_hard.csv.gz": ("ethics_commonsense", 1),
    "ethics/deontology/deontology_test.csv.gz": ("ethics_deontology", 1),
    "ethics/deontology/deontology_test_hard.csv.gz": ("ethics_deontology", 1),
    "ethics/justice/justice_test.csv.gz": ("ethics_justice", 1),
    "ethics/justice/justice_test_hard.csv.gz": ("ethics_justice", 1),
    "ethics/utilitarianism/util_test.csv.gz": ("ethics_utilitarianism", 0),
    "ethics/utilitarianism/util_test_hard.csv.gz": ("ethics_utilitarianism", 0),
    "ethics/virtue/virtue_test.csv.gz": ("ethics_virtue", 1),
    "ethics/virtue/virtue_test_hard.csv.gz": ("ethics_virtue", 1),
    "hh-rlhf/harmless-base-test.jsonl.gz": ("hh_rlhf", 0),
    "hh-rlhf/helpful-base-test.jsonl.gz": ("hh_rlhf", 0),
    "moral-stories/norm_distance_action_norm_dev.jsonl": ("moral_stories", 0),
    "moral-stories/norm_distance_action_norm_test.jsonl": ("moral_stories", 0),
    "mt-bench/question.jsonl": ("mt_bench", 0),
    "self-instruct/seed_tasks.jsonl": ("self_instruct", 0),
    "self-instruct/user_oriented_instructions.jsonl": ("self_instruct", 0),
    "social-chem-101/obligatory_sc101_first5000.csv": ("social_chem_101", 1),
    "social-chem-101/optional_sc101.csv": ("social_chem_101", 1),
    "valuebench/value_orientation.csv": ("valuebench", 1),
}
# rows that map to no record type without a mapping: inspect reports raw rows
RAW = {
    "mt-bench/judge_prompts.jsonl": "jsonl",
    "mt-bench/reference_answer_gpt-4.jsonl": "jsonl",
    "valuebench/value_definitions.csv": "csv",
}
# rows stated in SOURCES.md
SOURCES_ROWS = {
    "hh-rlhf/harmless-base-test.jsonl.gz": 2312,
    "hh-rlhf/helpful-base-test.jsonl.gz": 2354,
    "self-instruct/seed_tasks.jsonl": 175,
    "self-instruct/user_oriented_instructions.jsonl": 252,
    "mt-bench/question.jsonl": 80,
    "moral-stories/norm_distance_action_norm_dev.jsonl": 2000,
    "moral-stories/norm_distance_action_norm_test.jsonl": 2000,
    "social-chem-101/obligatory_sc101_first5000.csv": 5000,
    "social-chem-101/optional_sc101.csv": 3288,
    "valuebench/value_orientation.csv": 1988,
    "valuebench/value_definitions.csv": 582,
    "mt-bench/judge_prompts.jsonl": 8,
    "mt-bench/reference_answer_gpt-4.jsonl": 30,
}


def _text(p: Path) -> str:
    raw = p.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8")


def independent_rows(p: Path, header_rows: int) -> int:
    """Rows counted with the standard library only: non-empty JSONL lines or csv-module rows."""
    text = _text(p)
    if ".jsonl" in p.name:
        return sum(1 for line in text.splitlines() if line.strip())
    return sum(1 for r in csv.reader(io.StringIO(text, newline="")) if r) - header_rows


def test_every_shared_file_is_covered(shared_data):
    data_files = {
        str(p.relative_to(shared_data))
        for p in shared_data.rglob("*")
        if p.is_file() and not p.name.startswith("LICENSE") and p.suffix not in (".md", ".xlsx")
    }
    assert data_files == set(FILES) | set(RAW), "a new file in shared/data needs an entry here"


@pytest.mark.parametrize("rel", sorted(FILES))
def test_real_file_detected_and_counted(shared_data, rel):
    p = shared_data / rel
    fmt, header = FILES[rel]
    assert detect_format(p) == fmt
    recs = load_records(p)
    n = independent_rows(p, header)
    assert recs.report.rows == n and len(recs) == n
    assert recs.report.skipped == 0 and recs.report.filtered == 0
    if rel in SOURCES_ROWS:
        assert n == SOURCES_ROWS[rel]
    assert len({r.id for r in recs}) == len(recs), "ids must be unique within a file"


@pytest.mark.parametrize("rel", sorted(RAW))
def test_raw_files_detected_as_generic(shared_data, rel):
    assert detect_format(shared_data / rel) == RAW[rel]
    assert independent_rows(shared_data / rel, 1 if rel.endswith(".csv") else 0) == SOURCES_ROWS[rel]


# ---------------------------------------------------------------------------------
# content checks
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["harmless-base-test", "helpful-base-test"])
def test_hh_rlhf_split_reconstructs_the_transcripts(shared_data, name):
    p = shared_data / "hh-rlhf" / f"{name}.jsonl.gz"
    originals = [json.loads(line) for line in _text(p).splitlines() if line.strip()]
    recs = load_records(p)
    irregular_expected = 0
    for rec, orig in zip(recs, originals):
        assert isinstance(rec, PreferencePair)
        assert rec.prompt.endswith("\n\nAssistant:") and rec.prompt.startswith("\n\nHuman:")
        for answer, full in ((rec.chosen, orig["chosen"]), (rec.rejected, orig["rejected"])):
            rest = full[len(rec.prompt):]
            assert full.startswith(rec.prompt) and rest in (answer, " " + answer)
        assert rec.prompt_messages[0].role == "user" and rec.prompt_messages[-1].role == "user"
        # one message per turn marker, in order (a few released transcripts have two assistant turns in a row)
        markers = re.findall(r"\n\n(Human|Assistant):", rec.prompt)[:-1]
        assert [m.role for m in rec.prompt_messages] == ["user" if m == "Human" else "assistant" for m in markers]
        c, r = orig["chosen"], orig["rejected"]
        if c[: c.rfind("\n\nAssistant:")] != r[: r.rfind("\n\nAssistant:")]:
            irregular_expected += 1
            assert rec.meta.get("answers_span_turns") is True
    assert sum(1 for r in recs if r.meta.get("answers_span_turns")) == irregular_expected
    first = originals[0]
    assert recs[0].chosen == first["chosen"][first["chosen"].rfind("\n\nAssistant: ") + len("\n\nAssistant: "):]


def test_ethics_labels_and_groups(shared_data):
    cm = shared_data / "ethics/commonsense/cm_test.csv.gz"
    raw = list(csv.DictReader(io.StringIO(_text(cm), newline="")))
    recs = load_records(cm)
    assert [r.action for r in recs] == [r["input"] for r in raw]
    assert [r.label for r in recs] == [1 - int(r["label"]) for r in raw]  # 1 = acceptable
    for sub, key, size in (("virtue/virtue_test.csv.gz", "action", 5), ("deontology/deontology_test.csv.gz", "situation", 4)):
        recs = load_records(shared_data / "ethics" / sub)
        groups = defaultdict(list)
        for r in recs:
            groups[r.meta["group"]].append(r)
        assert all(len(g) == size for g in groups.values())
        assert all(len({getattr(r, key) for r in g}) == 1 for g in groups.values()), "a group shares its scenario"
    virtue = load_records(shared_data / "ethics/virtue/virtue_test.csv.gz")
    assert all(" [SEP] " not in r.action and r.meta["trait"] for r in virtue)
    util = load_records(shared_data / "ethics/utilitarianism/util_test.csv.gz")
    first = next(csv.reader(io.StringIO(_text(shared_data / "ethics/utilitarianism/util_test.csv.gz"), newline="")))
    assert (util[0].chosen, util[0].rejected) == (first[0], first[1])


def test_moral_stories_classification_split(shared_data):
    recs = load_records(shared_data / "moral-stories/norm_distance_action_norm_test.jsonl")
    assert all(isinstance(r, SocialNormExample) and r.rule_of_thumb for r in recs)
    assert Counter(r.label for r in recs) == {1: 1000, 0: 1000}
    by_story = defaultdict(set)
    for r in recs:
        by_story[r.meta["story_id"]].add(r.meta["action_kind"])
    assert len(by_story) == 1000 and all(kinds == {"moral", "immoral"} for kinds in by_story.values())


def test_social_chem_rows(shared_data):
    p = shared_data / "social-chem-101/obligatory_sc101_first5000.csv"
    raw = list(csv.DictReader(io.StringIO(_text(p), newline="")))
    recs = load_records(p)
    assert [r.rule_of_thumb for r in recs] == [r["rot"] for r in raw]
    assert [r.meta["foundations"] for r in recs[:3]] == [[f for f in r["rot-moral-foundations"].split("|") if f] for r in raw[:3]]
    assert [r.label for r in recs] == [int(float(r["action-moral-judgment"]) >= 0) for r in raw]
    assert recs[0].judgment == "It's good" and recs[0].situation == raw[0]["situation"]


def test_valuebench_questionnaires(shared_data):
    p = shared_data / "valuebench/value_orientation.csv"
    raw = [r for r in csv.DictReader(io.StringIO(_text(p), newline="")) if r["questionnaire"] == "PVQ40"]
    pvq = load_records(p, inventory="PVQ40")
    assert len(pvq) == 40 == len(raw) and pvq.report.filtered == 1988 - 40
    assert all(isinstance(r, QuestionnaireItem) and r.instrument == "PVQ40" for r in pvq)
    assert [r.text for r in pvq] == [r["item"] for r in raw]
    assert [r.reverse for r in pvq] == [r["agreement"] == "-1" for r in raw]
    assert [r.item_id for r in pvq[:2]] == ["PVQ40_01", "PVQ40_02"]
    assert [r.meta["position"] for r in pvq] == list(range(1, 41))
    three = load_records(p, inventory="PVQ40,MFT08,VSM13")
    assert Counter(r.instrument for r in three) == {"PVQ40": 40, "MFT08": 30, "VSM13": 24}
    # ids do not depend on the filter
    assert [r.item_id for r in three if r.instrument == "PVQ40"] == [r.item_id for r in pvq]


def test_mt_bench_and_self_instruct(shared_data):
    mt = load_records(shared_data / "mt-bench/question.jsonl")
    assert Counter(r.meta["category"] for r in mt) == {c: 10 for c in ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")}
    assert all(len(r.meta["turns"]) == 2 and r.instruction == r.meta["turns"][0] for r in mt)
    with_ref = [r for r in mt if "reference" in r.meta]
    assert with_ref and all(r.output == r.meta["reference"][0] for r in with_ref)
    seed = load_records(shared_data / "self-instruct/seed_tasks.jsonl")
    raw = [json.loads(line) for line in _text(shared_data / "self-instruct/seed_tasks.jsonl").splitlines() if line.strip()]
    assert sum(r.is_classification for r in seed) == sum(r["is_classification"] for r in raw)
    assert [r.output for r in seed] == [r["instances"][0]["output"] for r in raw]
