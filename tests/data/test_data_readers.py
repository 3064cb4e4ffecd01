"""Every reader on small files written here (formats that /work/shared/data has no file for, and edge cases)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from aligngoals.data import (
    Conversation,
    InstructionExample,
    MultipleChoiceItem,
    PreferencePair,
    QuestionnaireItem,
    Ranking,
    Rating,
    SocialNormExample,
    binarize_ratings,
    detect_format,
    iter_records,
    list_formats,
    load_records,
    rankings_to_pairs,
    write_jsonl,
)
from aligngoals.errors import ConfigError, DataError


def jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def table(path: Path, header: list[str] | None, rows: list[list], delimiter: str = ",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        if header:
            w.writerow(header)
        w.writerows(rows)
    return path


# ---------------------------------------------------------------------------------
# instructions
# ---------------------------------------------------------------------------------


def test_alpaca_json_array_and_errors_name_line(tmp_path):
    rows = [
        {"instruction": "Give three tips for staying healthy.", "input": "", "output": "Eat well."},
        {"instruction": "Translate.", "input": "chat", "output": "cat", "text": "full prompt"},
    ]
    p = tmp_path / "alpaca_data.json"
    p.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    assert detect_format(p) == "alpaca"
    recs = load_records(p)
    assert [type(r) for r in recs] == [InstructionExample, InstructionExample]
    assert recs[1].input == "chat" and recs[1].output == "cat" and recs[1].meta == {"text": "full prompt"}
    assert recs[0].id == "alpaca_data:0"
    rows.append({"instruction": 5, "input": "", "output": "x"})
    p.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    with pytest.raises(DataError) as exc:
        load_records(p, "alpaca")
    # the third element starts on line 13 of the indented file
    assert exc.value.message == f"{p}:13 ([2]): field 'instruction': expected text, got number 5."


def test_self_instruct_tasks_and_per_instance(tmp_path):
    p = jsonl(tmp_path / "seed.jsonl", [
        {"id": "t0", "name": "n", "instruction": "Sort the list.", "instances": [{"input": "3,1", "output": "1,3"}, {"input": "b,a", "output": "a,b"}], "is_classification": False},
        {"id": "t1", "name": "m", "instruction": "Is it a fruit?", "instances": [{"input": "apple", "output": "yes"}], "is_classification": True},
    ])
    assert detect_format(p) == "self_instruct"
    recs = load_records(p)
    assert len(recs) == 2
    assert recs[0].input == "3,1" and recs[0].exemplars[0].input == "b,a" and recs[0].is_classification is False
    assert recs[1].is_classification is True and recs[1].meta["name"] == "m"
    per = load_records(p, per_instance="true")
    assert [r.id for r in per] == ["t0:0", "t0:1", "t1:0"]


def test_super_natural_instructions(tmp_path):
    task = {
        "Contributors": ["x"],
        "Source": ["squad"],
        "Categories": ["Question Answering"],
        "Definition": ["Answer the question using the passage."],
        "Positive Examples": [{"input": "P: sky is blue. Q: colour?", "output": "blue", "explanation": "stated"}],
        "Negative Examples": [{"input": "P: grass. Q: colour?", "output": "blue", "explanation": "wrong"}],
        "Instances": [
            {"id": "task1-a", "input": "P: snow is white. Q: colour?", "output": ["white", "White"]},
            {"id": "task1-b", "input": "P: coal. Q: colour?", "output": ["black"]},
        ],
    }
    p = tmp_path / "task001_demo.json"
    p.write_text(json.dumps(task, indent=1), encoding="utf-8")
    assert detect_format(p) == "super_natural_instructions"
    recs = load_records(p)
    assert [r.id for r in recs] == ["task1-a", "task1-b"]
    assert recs[0].instruction == "Answer the question using the passage." and recs[0].output == "white"
    assert recs[0].meta["outputs"] == ["white", "White"] and recs[0].meta["task"] == "task001_demo"
    assert recs[0].exemplars[0].output == "blue" and recs[0].meta["Negative Examples"][0]["output"] == "blue"
    minified = tmp_path / "task002_min.json"
    minified.write_text(json.dumps(task), encoding="utf-8")
    assert detect_format(minified) == "super_natural_instructions"
    assert [r.id for r in load_records(minified)] == ["task1-a", "task1-b"]
    task["Instances"][1]["output"] = []
    p.write_text(json.dumps(task, indent=1), encoding="utf-8")
    with pytest.raises(DataError, match=r"task001_demo.json:\d+ \(Instances\[1\]\): field 'output'"):
        load_records(p)


def test_sharegpt_and_openai_messages(tmp_path):
    p = jsonl(tmp_path / "sg.jsonl", [
        {"id": "c1", "system": "Be brief.", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]},
        {"id": "c2", "conversations": [{"from": "human", "value": "?"}, {"from": "robot", "value": "!"}]},
    ])
    assert detect_format(p) == "sharegpt"
    with pytest.raises(DataError) as exc:
        load_records(p)
    assert f"{p}:2" in exc.value.message and "conversations[1].from" in exc.value.message and "gpt" in exc.value.message
    recs = load_records(p, skip_bad=True)
    assert len(recs) == 1 and [m.role for m in recs[0].messages] == ["system", "user", "assistant"]
    assert recs.report.skipped == 1 and recs.report.rows == 2

    q = jsonl(tmp_path / "chat.jsonl", [
        {"messages": [{"role": "developer", "content": "Be kind."}, {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]}, {"role": "assistant", "content": "Hello"}]},
    ])
    assert detect_format(q) == "openai_messages"
    (c,) = load_records(q)
    assert isinstance(c, Conversation) and c.messages[0].role == "system" and c.messages[1].content == "Hi there"


# ---------------------------------------------------------------------------------
# preferences
# ---------------------------------------------------------------------------------


def test_hh_rlhf_split_and_gzip(tmp_path):
    rows = [
        {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Tell a joke\n\nAssistant: Why did the chicken...",
         "rejected": "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Tell a joke\n\nAssistant: No."},
        # the answers share their first word: the prompt must still stop at the last shared Assistant turn
        {"chosen": "\n\nHuman: Capital of France?\n\nAssistant: Paris.", "rejected": "\n\nHuman: Capital of France?\n\nAssistant: Paris is in Italy."},
    ]
    p = tmp_path / "test.jsonl.gz"
    with gzip.open(p, "wt", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    assert detect_format(p) == "hh_rlhf"
    a, b = load_records(p)
    assert a.prompt == "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Tell a joke\n\nAssistant:"
    assert a.chosen == "Why did the chicken..." and a.rejected == "No."
    assert [(m.role, m.content) for m in a.prompt_messages] == [("user", "Hi"), ("assistant", "Hello"), ("user", "Tell a joke")]
    assert b.prompt == "\n\nHuman: Capital of France?\n\nAssistant:" and b.chosen == "Paris." and b.rejected == "Paris is in Italy."
    assert "answers_span_turns" not in a.meta


def test_hh_rlhf_without_shared_assistant_turn_is_bad(tmp_path):
    p = jsonl(tmp_path / "hh.jsonl", [{"chosen": "\n\nHuman: A\n\nAssistant: B", "rejected": "\n\nHuman: C\n\nAssistant: D"}])
    with pytest.raises(DataError, match=r"hh.jsonl:1: field 'rejected': expected 'chosen' and 'rejected' to share"):
        load_records(p, "hh_rlhf")


def test_pairs_plain_and_conversational(tmp_path):
    p = jsonl(tmp_path / "pairs.jsonl", [
        {"id": "p1", "prompt": "2+2?", "chosen": "4", "rejected": "5", "source": "x"},
        {"prompt": "Hi", "chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
         "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away"}], "score_chosen": 8.0, "score_rejected": 3.5},
        {"prompt": [{"role": "user", "content": "Q?"}], "chosen": [{"role": "assistant", "content": "A"}], "rejected": [{"role": "assistant", "content": "B"}]},
    ])
    assert detect_format(p) == "pairs_jsonl"
    a, b, c = load_records(p)
    assert (a.id, a.prompt, a.chosen, a.rejected, a.meta) == ("p1", "2+2?", "4", "5", {"source": "x"})
    assert b.chosen == "Hello" and b.rejected == "Go away" and b.margin == 4.5 and b.prompt_messages[0].content == "Hi"
    assert c.prompt == "Q?" and c.chosen == "A" and [m.role for m in c.prompt_messages] == ["user"]


def test_rankings_to_pairs_is_all_k_choose_2_and_respects_ties():
    r = Ranking(id="r", prompt="p", responses=["a", "b", "c", "d"])
    pairs = rankings_to_pairs(r)
    assert len(pairs) == 6
    assert [(x.chosen, x.rejected) for x in pairs] == [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")]
    tied = Ranking(id="t", prompt="p", responses=["a", "b", "c"], ranks=[1, 1, 2])
    assert [(x.chosen, x.rejected) for x in rankings_to_pairs(tied)] == [("a", "c"), ("b", "c")]


def test_binarize_ratings_strategies():
    r = Rating(id="x", prompt="p", responses=["a", "b", "c", "d"], scores=[3.0, 9.0, 1.0, 9.0])
    (p,) = binarize_ratings(r, "best_vs_worst")
    assert (p.chosen, p.rejected, p.margin) == ("b", "c", 8.0)
    draws = {binarize_ratings(r, "best_vs_random", seed=s)[0].rejected for s in range(40)}
    assert draws == {"a", "c"}  # never the tied best "d", never "b" itself
    assert binarize_ratings(r, "best_vs_random", seed=3)[0].rejected == binarize_ratings(r, "best_vs_random", seed=3)[0].rejected
    assert len(binarize_ratings(r, "all_pairs")) == 5  # 9>3, 9>1 twice each, 3>1
    assert binarize_ratings(Rating(prompt="p", responses=["a", "b"], scores=[2, 2])) == []
    with pytest.raises(ValueError):
        binarize_ratings(r, "best_vs_best")


def test_ranking_and_ratings_jsonl(tmp_path):
    p = jsonl(tmp_path / "rank.jsonl", [{"prompt": "p", "responses": ["good", "ok", "bad"], "ranks": [1, 2, 3]}])
    assert detect_format(p) == "ranking_jsonl"
    (r,) = load_records(p)
    assert isinstance(r, Ranking) and r.ranks == [1, 2, 3]
    assert len(load_records(p, pairs="true")) == 3
    q = jsonl(tmp_path / "rate.jsonl", [{"prompt": "p", "responses": ["a", "b"], "scores": [1, "4.5"], "aspect": "helpfulness"}])
    assert detect_format(q) == "ratings_jsonl"
    (s,) = load_records(q)
    assert s.scores == [1.0, 4.5]
    (pair,) = load_records(q, binarize="best_vs_worst")
    assert pair.chosen == "b"
    with pytest.raises(ConfigError):
        load_records(q, binarize="nope")


def _oasst_tree():
    return {
        "message_tree_id": "t1",
        "tree_state": "ready_for_export",
        "prompt": {
            "message_id": "m1", "role": "prompter", "text": "What is 2+2?", "lang": "en",
            "replies": [
                {"message_id": "a2", "role": "assistant", "text": "5", "rank": 2, "replies": []},
                {"message_id": "a1", "role": "assistant", "text": "4", "rank": 0, "replies": [
                    {"message_id": "m2", "role": "prompter", "text": "Why?", "lang": "en", "replies": [
                        {"message_id": "b1", "role": "assistant", "text": "Counting.", "rank": 1},
                        {"message_id": "b2", "role": "assistant", "text": "Arithmetic.", "rank": 0},
                    ]},
                ]},
                {"message_id": "a3", "role": "assistant", "text": "four", "rank": 1, "replies": []},
                {"message_id": "a4", "role": "assistant", "text": "spam", "rank": None, "deleted": True},
            ],
        },
    }


def test_oasst_trees(tmp_path):
    p = jsonl(tmp_path / "trees.jsonl", [_oasst_tree(), {"message_tree_id": "t2", "prompt": {"message_id": "x", "role": "prompter", "text": "lonely", "replies": []}}])
    assert detect_format(p) == "oasst"
    recs = load_records(p)
    assert recs.report.filtered == 1  # the tree without ranked replies
    first, second = recs
    assert first.prompt == "What is 2+2?" and first.responses == ["4", "four", "5"] and first.ranks == [1, 2, 3]
    assert second.prompt == "Why?" and second.responses == ["Arithmetic.", "Counting."]
    assert [m.content for m in second.prompt_messages] == ["What is 2+2?", "4", "Why?"]
    pairs = load_records(p, output="pairs")
    assert len(pairs) == 3 + 1 and all(isinstance(x, PreferencePair) for x in pairs)


def test_oasst_flat_messages(tmp_path):
    msgs = [
        {"message_id": "m1", "parent_id": None, "role": "prompter", "text": "Hi", "lang": "en", "message_tree_id": "m1"},
        {"message_id": "a1", "parent_id": "m1", "role": "assistant", "text": "Hello", "rank": 1, "lang": "en"},
        {"message_id": "a2", "parent_id": "m1", "role": "assistant", "text": "Hey there!", "rank": 0, "lang": "en"},
        {"message_id": "z", "parent_id": "missing", "role": "assistant", "text": "orphan", "rank": 0},
    ]
    p = jsonl(tmp_path / "messages.jsonl", msgs)
    assert detect_format(p) == "oasst"
    with pytest.raises(DataError, match=r"messages.jsonl:4: field 'parent_id'"):
        load_records(p)
    recs = load_records(p, skip_bad=True)
    assert len(recs) == 1 and recs[0].responses == ["Hey there!", "Hello"] and recs.report.skipped == 1


def _uf_row(prompt, scored):
    return {
        "source": "evol", "instruction": prompt, "models": [m for m, _ in scored],
        "completions": [
            {"model": m, "response": f"answer by {m}", "fine-grained_score": s, "overall_score": 10 - s,
             "annotations": {a: {"Rating": str(int(s)), "Rationale": "."} for a in ("helpfulness", "honesty", "instruction_following", "truthfulness")}}
            for m, s in scored
        ],
    }


def test_ultrafeedback_ratings_and_binarize(tmp_path):
    p = jsonl(tmp_path / "uf.jsonl", [_uf_row("Q1", [("m1", 2.0), ("m2", 4.5), ("m3", 3.0)])])
    assert detect_format(p) == "ultrafeedback"
    (r,) = load_records(p)
    assert isinstance(r, Rating) and r.scores == [2.0, 4.5, 3.0] and r.aspect == "fine_grained" and r.meta["models"] == ["m1", "m2", "m3"]
    (o,) = load_records(p, aspect="overall")
    assert o.scores == [8.0, 5.5, 7.0]
    (h,) = load_records(p, aspect="honesty")
    assert h.scores == [2.0, 4.0, 3.0]
    (pair,) = load_records(p, binarize="best_vs_random", seed="1")
    assert pair.chosen == "answer by m2" and pair.rejected in ("answer by m1", "answer by m3")
    bad = _uf_row("Q2", [("m1", 2.0)])
    bad["completions"][0]["annotations"]["honesty"]["Rating"] = "N/A"
    jsonl(p, [bad])
    with pytest.raises(DataError, match=r"uf.jsonl:1: field 'completions\[0\].annotations.honesty.Rating': expected a number"):
        load_records(p, aspect="honesty")


# ---------------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------------


def test_ethics_small_files(tmp_path):
    cm = table(tmp_path / "cm.csv", ["label", "input", "is_short", "edited"], [[0, "I helped.", "True", "False"], [1, "I stole.", "True", "False"]])
    assert detect_format(cm) == "ethics_commonsense"
    a, b = load_records(cm)
    assert (a.label, b.label, a.meta["raw_label"], b.judgment) == (1, 0, 0, "wrong")
    vi = table(tmp_path / "virtue.csv", ["label", "scenario"], [[1, "She shared her lunch. [SEP] generous"], [0, "She shared her lunch. [SEP] selfish"]])
    assert detect_format(vi) == "ethics_virtue"
    v = load_records(vi)
    assert v[0].action == "She shared her lunch." and v[0].meta["trait"] == "generous" and v[1].label == 0
    ju = table(tmp_path / "j.csv", ["label", "scenario"], [[1, "I paid him because he worked."]])
    assert detect_format(ju) == "ethics_justice"
    ut = table(tmp_path / "util_x.csv", None, [["I won a prize at the fair.", "I lost my ticket at the fair."]])
    assert detect_format(ut) == "ethics_utilitarianism"
    (u,) = load_records(ut)
    assert (u.chosen, u.rejected) == ("I won a prize at the fair.", "I lost my ticket at the fair.")
    bad = table(tmp_path / "cm_bad.csv", ["label", "input", "is_short", "edited"], [[0, "ok", "True", "False"], ["maybe", "x", "True", "False"]])
    with pytest.raises(DataError) as exc:
        load_records(bad, "ethics_commonsense")
    assert exc.value.message == f"{bad}:3 (row 2): field 'label': expected 0 or 1, got text 'maybe'."
    with pytest.raises(DataError, match="lacks column"):
        load_records(cm, "ethics_deontology")


def test_moral_stories_full_story(tmp_path):
    story = {
        "ID": "S1", "norm": "It's good to keep promises.", "situation": "Ann promised to help Bo move.",
        "intention": "Ann wants to relax.", "moral_action": "Ann helps Bo move.", "moral_consequence": "Bo is grateful.",
        "immoral_action": "Ann goes to the beach.", "immoral_consequence": "Bo is let down.",
    }
    p = jsonl(tmp_path / "ms.jsonl", [story])
    assert detect_format(p) == "moral_stories"
    m, i = load_records(p)
    assert (m.id, m.label, m.action, m.rule_of_thumb, m.situation, m.intention) == (
        "S1:moral", 1, "Ann helps Bo move.", "It's good to keep promises.", "Ann promised to help Bo move.", "Ann wants to relax.")
    assert (i.id, i.label, i.meta["consequence"]) == ("S1:immoral", 0, "Bo is let down.")
    jsonl(p, [{"ID": "X1", "norm": "n", "immoral_action": "a", "label": "1"}])
    with pytest.raises(DataError, match="field 'label': expected 0 for a row with immoral_action"):
        load_records(p)


def test_social_chem_tsv(tmp_path):
    header = ["area", "split", "rot-moral-foundations", "rot-judgment", "action", "action-moral-judgment", "situation", "rot", "rot-id"]
    p = table(tmp_path / "social-chem-101.v1.0.tsv", header, [
        ["amitheasshole", "train", "care-harm|fairness-cheating", "it's bad", "lying to friends", "-1.0", "told a lie", "It's bad to lie to friends.", "rot/1"],
        ["confessions", "dev", "", "it's okay", "taking a nap", "0.0", "", "It's okay to nap.", "rot/2"],
    ], delimiter="\t")
    assert detect_format(p) == "social_chem_101"
    a, b = load_records(p)
    assert (a.id, a.label, a.judgment, a.meta["foundations"]) == ("rot/1", 0, "it's bad", ["care-harm", "fairness-cheating"])
    assert (b.label, b.situation, b.meta["foundations"]) == (1, None, [])


def test_valuebench_small(tmp_path):
    p = table(tmp_path / "vo.csv", ["questionnaire", "item", "value", "agreement", "question"], [
        ["PVQ40", "It matters to me to be creative.", "Self-Direction", 1, "Is creativity important to me?"],
        ["VSM13", "Having a boss you respect.", "Power Distance", -1, "Is it important?"],
        ["PVQ40", "Being rich.", "Power", 1, "Is wealth important?"],
    ])
    assert detect_format(p) == "valuebench"
    recs = load_records(p, inventory="PVQ40")
    assert [r.item_id for r in recs] == ["PVQ40_01", "PVQ40_02"] and recs.report.filtered == 1
    allr = load_records(p)
    assert isinstance(allr[1], QuestionnaireItem) and allr[1].reverse is True and allr[1].dimension == "Power Distance"
    table(p, ["questionnaire", "item", "value", "agreement", "question"], [["PVQ40", "x", "Power", 2, "q"]])
    with pytest.raises(DataError, match=r"vo.csv:2 \(row 1\): field 'agreement': expected -1 or 1, got text '2'"):
        load_records(p)


# ---------------------------------------------------------------------------------
# evaluation sets
# ---------------------------------------------------------------------------------


def test_truthfulqa_csv(tmp_path):
    p = table(tmp_path / "TruthfulQA.csv", ["Type", "Category", "Question", "Best Answer", "Correct Answers", "Incorrect Answers", "Source"], [
        ["Adversarial", "Misconceptions", "What happens if you swallow gum?", "It passes through you",
         "It passes through you; Nothing much happens", "It stays for seven years; You die", "https://x"],
    ])
    assert detect_format(p) == "truthfulqa_csv"
    (q,) = load_records(p)
    assert q.choices == ["It passes through you", "Nothing much happens", "It stays for seven years", "You die"]
    assert q.answer == 0 and q.answers == [0, 1] and q.meta["category"] == "Misconceptions"


def test_truthfulqa_mc_both_shapes(tmp_path):
    orig = [{"question": "Smallest country?", "mc1_targets": {"Vatican City": 1, "Monaco": 0},
             "mc2_targets": {"Monaco": 0, "Vatican City": 1, "It is Vatican City": 1}}]
    p = tmp_path / "mc_task.json"
    p.write_text(json.dumps(orig), encoding="utf-8")
    assert detect_format(p) == "truthfulqa_mc"
    (q,) = load_records(p)
    assert q.choices == ["Monaco", "Vatican City", "It is Vatican City"] and q.answer == 1 and q.answers == [1, 2]
    assert q.meta["mc1_targets"] == {"choices": ["Vatican City", "Monaco"], "labels": [1, 0]}
    hf = jsonl(tmp_path / "tqa_hf.jsonl", [{"question": "Q", "mc1_targets": {"choices": ["a", "b"], "labels": [0, 1]},
                                            "mc2_targets": {"choices": ["a", "b", "c"], "labels": [0, 1, 1]}}])
    (h,) = load_records(hf)
    assert h.answer == 1 and h.answers == [1, 2]
    jsonl(hf, [{"question": "Q", "mc2_targets": {"a": 0, "b": 0}}])
    with pytest.raises(DataError, match="at least one answer marked 1"):
        load_records(hf, "truthfulqa_mc")


def test_bbq(tmp_path):
    row = {
        "example_id": 7, "question_index": "1", "question_polarity": "neg", "context_condition": "ambig", "category": "Age",
        "answer_info": {"ans0": ["grandfather", "old"], "ans1": ["grandson", "nonOld"], "ans2": ["Can't be determined", "unknown"]},
        "additional_metadata": {"subcategory": "None", "stereotyped_groups": ["old"], "version": "a", "source": "x"},
        "context": "I saw a grandson and his grandfather.", "question": "Who was forgetful?",
        "ans0": "The grandfather", "ans1": "The grandson", "ans2": "Can't be determined", "label": 2,
    }
    p = jsonl(tmp_path / "Age.jsonl", [row])
    assert detect_format(p) == "bbq"
    (q,) = load_records(p)
    assert q.id == "Age-7" and q.answer == 2 and q.context.startswith("I saw")
    assert q.meta["unknown_index"] == 2 and q.meta["stereotyped_groups"] == ["old"] and q.meta["context_condition"] == "ambig"
    jsonl(p, [dict(row, label=3)])
    with pytest.raises(DataError, match="field 'label': expected 0, 1 or 2, got number 3"):
        load_records(p)


def test_crows_pairs(tmp_path):
    p = table(tmp_path / "crows_pairs_anonymized.csv", ["", "sent_more", "sent_less", "stereo_antistereo", "bias_type", "annotations", "anon_writer", "anon_annotators"], [
        [0, "Poor people are lazy.", "Rich people are lazy.", "stereo", "socioeconomic", "[['socioeconomic']]", "a0", "['a1']"],
        [1, "x", "y", "sideways", "age", "", "", ""],
    ])
    assert detect_format(p) == "crows_pairs"
    with pytest.raises(DataError, match="field 'stereo_antistereo': expected stereo or antistereo"):
        load_records(p)
    (c,) = load_records(p, skip_bad=True)
    assert (c.id, c.chosen, c.rejected, c.prompt) == ("crows_pairs_anonymized:0", "Rich people are lazy.", "Poor people are lazy.", "")
    assert c.meta["bias_type"] == "socioeconomic" and c.meta["sent_more"] == "Poor people are lazy."


def test_mc_jsonl_matches_task_format(tmp_path):
    p = jsonl(tmp_path / "mc.jsonl", [{"id": "q1", "question": "2+2?", "choices": ["3", "4"], "answer": 1, "meta": {"k": "v"}}])
    assert detect_format(p) == "mc_jsonl"
    (q,) = load_records(p)
    assert isinstance(q, MultipleChoiceItem) and q.answer == 1 and q.meta == {"k": "v"}
    jsonl(p, [{"question": "2+2?", "choices": ["3", "4"], "answer": 2}])
    with pytest.raises(DataError, match=r"mc.jsonl:1: field 'answer': answer index 2 is outside 0..1"):
        load_records(p)


# ---------------------------------------------------------------------------------
# generic, round trips, reading behaviour
# ---------------------------------------------------------------------------------


def test_records_jsonl_round_trip_every_record_type(tmp_path):
    from aligngoals.data import Message

    recs = [
        InstructionExample(id="i", instruction="Do.", input="x", output="y", exemplars=[InstructionExample(instruction="Do.", output="z")], chain_of_thought="because"),
        Conversation(id="c", messages=[Message(role="user", content="hi")], meta={"a": [1, 2]}),
        PreferencePair(id="p", prompt="q", chosen="a", rejected="b", margin=1.5, prompt_messages=[Message(role="user", content="q")]),
        Ranking(id="r", prompt="q", responses=["a", "b"], ranks=[1, 2]),
        Rating(id="s", prompt="q", responses=["a"], scores=[3.0], aspect="honesty"),
        MultipleChoiceItem(id="m", question="q", choices=["a", "b"], answer=1, answers=[1], context="ctx"),
        SocialNormExample(id="n", action="act", situation="sit", rule_of_thumb="rot", judgment="ok", label=1),
        QuestionnaireItem(id="qi", instrument="PVQ40", item_id="PVQ40_01", text="t", dimension="Power", reverse=True),
    ]
    for name in ("all.jsonl", "all.jsonl.gz"):
        out = write_jsonl(recs, tmp_path / name)
        assert detect_format(out) == "records_jsonl"
        back = load_records(out)
        assert list(back) == recs


def test_generic_mapping_jsonl_and_csv(tmp_path):
    p = jsonl(tmp_path / "se.jsonl", [{"question": "Q", "response_j": "good", "response_k": "bad", "qid": 5}])
    recs = load_records(p, "jsonl", record_type="preference_pair", mapping="prompt=question,chosen=response_j,rejected=response_k,id=qid")
    assert (recs[0].id, recs[0].prompt, recs[0].chosen, recs[0].rejected, recs[0].meta) == ("5", "Q", "good", "bad", {})
    # inferred record type, unmapped columns kept in meta, JSON lists in cells
    c = table(tmp_path / "mc.csv", ["question", "choices", "answer", "topic"], [["Q?", '["a", "b"]', "1", "math"]])
    (m,) = load_records(c, "csv")
    assert isinstance(m, MultipleChoiceItem) and m.choices == ["a", "b"] and m.answer == 1 and m.meta == {"topic": "math"}
    with pytest.raises(ConfigError, match="does not have"):
        load_records(p, "jsonl", record_type="preference_pair", mapping={"answer": "question"})
    with pytest.raises(DataError, match="field 'response_x': missing"):
        load_records(p, "jsonl", record_type="preference_pair", mapping="prompt=question,chosen=response_x,rejected=response_k")
    odd = jsonl(tmp_path / "odd.jsonl", [{"foo": 1}])
    assert detect_format(odd) == "jsonl"
    with pytest.raises(DataError, match="cannot tell which record type"):
        load_records(odd)


def test_limit_skip_bad_report_and_unknown_option(tmp_path):
    p = tmp_path / "pairs.jsonl"
    p.write_text(
        '{"prompt": "a", "chosen": "x", "rejected": "y"}\n'
        "not json\n"
        "\n"
        '{"prompt": "b", "chosen": "x"}\n'
        '{"prompt": "c", "chosen": "x", "rejected": "y"}\n'
        '["a list"]\n',
        encoding="utf-8",
    )
    with pytest.raises(DataError) as exc:
        load_records(p, "pairs_jsonl")
    assert exc.value.message.startswith(f"{p}:2: not valid JSON")
    recs = load_records(p, "pairs_jsonl", skip_bad=True)
    rep = recs.report
    assert [r.prompt for r in recs] == ["a", "c"]
    assert (rep.rows, rep.records, rep.skipped, rep.filtered) == (5, 2, 3, 0)
    assert rep.skip_reasons["missing field 'rejected'"] == 1
    assert any(e.startswith(f"{p}:4: field 'rejected'") for e in rep.skip_examples)
    assert "3 bad row(s) skipped" in rep.summary()
    lim = load_records(p, "pairs_jsonl", skip_bad=True, limit=1)
    assert len(lim) == 1 and lim.report.truncated
    assert len(list(iter_records(p, "pairs_jsonl", skip_bad=True))) == 2
    with pytest.raises(ConfigError, match="does not take option"):
        load_records(p, "pairs_jsonl", inventory="PVQ40")
    with pytest.raises(ConfigError, match="Unknown data format"):
        load_records(p, "pairz")


def test_missing_file_and_non_utf8(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_records(tmp_path / "nope.jsonl", "pairs_jsonl")
    p = tmp_path / "latin1.jsonl"
    p.write_bytes('{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}\n'.encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_records(p, "pairs_jsonl")


def test_every_format_is_documented():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "data-formats.md").read_text(encoding="utf-8")
    for name in list_formats():
        assert f"`{name}`" in docs, name


def test_hf_datasets_round_trip_and_parquet(tmp_path):
    pytest.importorskip("datasets")
    from aligngoals.data import Message, save_hf

    recs = [
        PreferencePair(id="p", prompt="q", chosen="a", rejected="b", prompt_messages=[Message(role="user", content="q")], meta={"k": 1}),
        MultipleChoiceItem(id="m", question="q", choices=["a", "b"], answer=0, meta={"other": ["x"]}),
        InstructionExample(id="i", instruction="Do.", exemplars=[InstructionExample(instruction="Do.", output="z", meta={"e": True})]),
    ]
    out = save_hf(recs, tmp_path / "ds")
    assert detect_format(out) == "hf_datasets"
    assert list(load_records(out)) == recs
    with pytest.raises(ConfigError, match="already exists"):
        save_hf(recs, tmp_path / "ds")
    import datasets

    pq = tmp_path / "t.parquet"
    datasets.Dataset.from_dict({"question": ["Q1", "Q2"], "good": ["a", "c"], "bad": ["b", "d"]}).to_parquet(str(pq))
    got = load_records(pq, record_type="preference_pair", mapping={"prompt": "question", "chosen": "good", "rejected": "bad"})
    assert [(r.prompt, r.chosen, r.rejected, r.id) for r in got] == [("Q1", "a", "b", "t:1"), ("Q2", "c", "d", "t:2")]


# --- malformed input: the message says what is wrong with the file, never a traceback ------------
def test_empty_files_say_they_are_empty(tmp_path):
    empty = tmp_path / "pairs.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match=r"pairs.jsonl is empty \(0 bytes\)"):
        detect_format(empty)
    with pytest.raises(DataError, match="is empty"):
        load_records(empty, "jsonl")
    blank = tmp_path / "blank.csv"
    blank.write_text("\n  \n")
    with pytest.raises(DataError, match="only blank lines"):
        detect_format(blank)
    gz = tmp_path / "pairs.jsonl.gz"
    gz.write_bytes(gzip.compress(b""))
    with pytest.raises(DataError, match="empty once decompressed"):
        load_records(gz)


def test_gz_name_without_gzip_content_says_so(tmp_path):
    fake = tmp_path / "helpful-base-test.jsonl.gz"
    fake.write_bytes(b"\x00\x01not gzip \xff\xfe at all")
    with pytest.raises(DataError, match="named .gz but is not gzip-compressed") as exc:
        detect_format(fake)
    assert "helpful-base-test.jsonl.gz" in str(exc.value)
    with pytest.raises(DataError, match="not gzip-compressed"):
        load_records(fake, "jsonl")
    # a plain-text file that merely carries the name is still read by content
    plain = tmp_path / "plain.jsonl.gz"
    plain.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    assert len(load_records(plain)) == 1


@pytest.mark.parametrize("name, text", [
    ("deep.json", "[" * 50_000 + "]" * 50_000),
    ("deep.jsonl", '{"prompt": ' + "[" * 50_000 + "]" * 50_000 + "}\n"),
    ("wrapped.json", '{"data": [' + "[" * 50_000 + "]" * 50_000 + "]}"),
])
def test_deeply_nested_json_is_a_data_error_naming_the_file(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(DataError, match="nested too deeply") as exc:
        load_records(p)
    assert name in str(exc.value)
    with pytest.raises(DataError, match="nested too deeply"):
        load_records(p, "jsonl" if name.endswith(".jsonl") else "json")
