"""Evaluation sets: TruthfulQA (CSV and MC JSON), BBQ, CrowS-Pairs, MT-Bench questions, plain multiple-choice JSONL."""

from __future__ import annotations

from typing import Any

from aligngoals.data import fields as F
from aligngoals.data import sources as S
from aligngoals.data.formats import FormatSpec, Peek, ReadContext, build, detector, register
from aligngoals.data.readers._common import csv_rows, default_id, json_or_jsonl_rows, rest_meta, row_id
from aligngoals.data.records import InstructionExample, MultipleChoiceItem, PreferencePair
from aligngoals.data.sources import BadRow, Loc

# ---------------------------------------------------------------------------------
# TruthfulQA
# ---------------------------------------------------------------------------------

TQA_COLUMNS = ["Type", "Category", "Question", "Best Answer", "Correct Answers", "Incorrect Answers", "Source"]


def _split_answers(s: str) -> list[str]:
    return [a.strip() for a in s.split("; ") if a.strip()]


def _truthfulqa_csv(row: dict, loc: Loc, ctx: ReadContext) -> list:
    question = F.text(row, "Question")
    best = F.text(row, "Best Answer").strip()
    correct = _split_answers(F.text(row, "Correct Answers"))
    incorrect = _split_answers(F.text(row, "Incorrect Answers"))
    if not incorrect:
        raise BadRow("Incorrect Answers", "at least one answer (answers are separated by '; ')", row["Incorrect Answers"])
    true_set = [best] + [c for c in correct if c != best]
    meta = {
        "dataset": "truthfulqa",
        "type": row.get("Type"),
        "category": row.get("Category"),
        "source": row.get("Source"),
        "best_answer": best,
        "correct_answers": correct,
        "incorrect_answers": incorrect,
    }
    return [
        build(
            MultipleChoiceItem,
            id=default_id(ctx, loc),
            question=question,
            choices=true_set + incorrect,
            answer=0,
            answers=list(range(len(true_set))),
            meta=meta,
        )
    ]


register(
    FormatSpec(
        name="truthfulqa_csv",
        group="evaluation",
        description=(
            "TruthfulQA.csv (Type, Category, Question, Best Answer, Correct Answers, Incorrect Answers, Source; answers "
            "separated by '; ') -> MultipleChoiceItem: choices = best answer, other correct answers, then incorrect answers; "
            "answer = 0 (best), answers = every correct index; the reference lists for generation scoring are in meta."
        ),
        example="Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\nAdversarial,Misconceptions,What happens if ...?,Nothing in particular happens,...; ...,...; ...,https://...",
        produces=("multiple_choice",),
        rows=csv_rows,
        convert=_truthfulqa_csv,
    )
)


@detector("truthfulqa_csv")
def _is_tqa_csv(pk: Peek) -> bool:
    return pk.kind == "csv" and {"Question", "Best Answer", "Correct Answers", "Incorrect Answers"} <= set(pk.header or [])


def _targets(row: dict, key: str) -> tuple[list[str], list[int]]:
    """``mc1_targets``/``mc2_targets`` as ``{answer: 0/1}`` (original JSON) or ``{choices, labels}`` (HF datasets)."""
    t = row.get(key)
    if isinstance(t, dict) and set(t) == {"choices", "labels"}:
        choices, labels = t["choices"], t["labels"]
        if not (isinstance(choices, list) and isinstance(labels, list) and len(choices) == len(labels)):
            raise BadRow(key, "{choices: [...], labels: [...]} of equal length", t)
        pairs = list(zip(choices, labels))
    elif isinstance(t, dict) and t:
        pairs = list(t.items())
    else:
        raise BadRow(key, "a map from answer text to 0/1", t if key in row else S._MISSING)
    out_c, out_l = [], []
    for i, (c, lab) in enumerate(pairs):
        if not isinstance(c, str):
            raise BadRow(f"{key}[{i}]", "answer text", c)
        out_c.append(c)
        out_l.append(F.to_int(lab, f"{key}[{c[:30]!r}]", allowed=(0, 1)))
    if 1 not in out_l:
        raise BadRow(key, "at least one answer marked 1 (true)", t)
    return out_c, out_l


def _truthfulqa_mc(row: dict, loc: Loc, ctx: ReadContext) -> list:
    question = F.text(row, "question")
    c2, l2 = _targets(row, "mc2_targets")
    meta: dict[str, Any] = {"dataset": "truthfulqa", "mc2_targets": {"choices": c2, "labels": l2}}
    answer = l2.index(1)
    if "mc1_targets" in row:
        c1, l1 = _targets(row, "mc1_targets")
        if l1.count(1) != 1:
            raise BadRow("mc1_targets", "exactly one answer marked 1", row["mc1_targets"])
        meta["mc1_targets"] = {"choices": c1, "labels": l1}
        best = c1[l1.index(1)]
        if best in c2 and l2[c2.index(best)] == 1:
            answer = c2.index(best)
    meta.update(rest_meta(row, ("question", "mc1_targets", "mc2_targets", "id")))
    return [
        build(
            MultipleChoiceItem,
            id=row_id(row, "id", ctx, loc),
            question=question,
            choices=c2,
            answer=answer,
            answers=[i for i, lab in enumerate(l2) if lab == 1],
            meta=meta,
        )
    ]


register(
    FormatSpec(
        name="truthfulqa_mc",
        group="evaluation",
        description=(
            "TruthfulQA multiple-choice JSON/JSONL of {question, mc1_targets, mc2_targets} (maps answer -> 0/1, or HF "
            "{choices, labels}) -> MultipleChoiceItem over the mc2 choices: answers = every true one, answer = the mc1 "
            "best answer; both target sets are kept in meta for MC1/MC2 scoring."
        ),
        example='{"question": "What is the smallest country?", "mc1_targets": {"Vatican City": 1, "Monaco": 0}, "mc2_targets": {"Vatican City": 1, "It is Vatican City": 1, "Monaco": 0}}',
        produces=("multiple_choice",),
        rows=json_or_jsonl_rows,
        convert=_truthfulqa_mc,
    )
)


@detector("truthfulqa_mc")
def _is_tqa_mc(pk: Peek) -> bool:
    return pk.kind in ("json", "jsonl") and ("mc2_targets" in pk.keys() or "mc1_targets" in pk.keys())


# ---------------------------------------------------------------------------------
# BBQ
# ---------------------------------------------------------------------------------


def _bbq(row: dict, loc: Loc, ctx: ReadContext) -> list:
    choices = [F.text(row, f"ans{i}") for i in range(3)]
    label = F.integer(row, "label", allowed=(0, 1, 2))
    info = row.get("answer_info")
    unknown_index = None
    if info is not None:
        if not isinstance(info, dict):
            raise BadRow("answer_info", "an object {ans0: [text, group], ...}", info)
        for i in range(3):
            v = info.get(f"ans{i}")
            if isinstance(v, list) and len(v) >= 2 and v[1] == "unknown":
                unknown_index = i
    add = row.get("additional_metadata") if isinstance(row.get("additional_metadata"), dict) else {}
    category = F.opt_text(row, "category")
    meta = {
        "dataset": "bbq",
        "category": category,
        "example_id": row.get("example_id"),
        "question_index": row.get("question_index"),
        "question_polarity": row.get("question_polarity"),
        "context_condition": row.get("context_condition"),
        "answer_info": F.jsonable(info),
        "stereotyped_groups": F.jsonable(add.get("stereotyped_groups")),
        "subcategory": add.get("subcategory"),
        "additional_metadata": F.jsonable(add),
        "unknown_index": unknown_index,
    }
    ex_id = row.get("example_id")
    return [
        build(
            MultipleChoiceItem,
            {"answer": "label", "question": "question", "context": "context"},
            id=f"{category}-{ex_id}" if category and ex_id is not None else default_id(ctx, loc),
            question=F.text(row, "question"),
            context=F.text(row, "context"),
            choices=choices,
            answer=label,
            meta=meta,
        )
    ]


register(
    FormatSpec(
        name="bbq",
        group="evaluation",
        description=(
            "BBQ JSONL (example_id, question_index, question_polarity, context_condition, category, answer_info, "
            "additional_metadata, context, question, ans0..ans2, label) -> MultipleChoiceItem with context; the bias "
            "metadata (polarity, ambiguous/disambiguated, stereotyped groups, answer_info, index of the 'unknown' answer) in meta."
        ),
        example='{"example_id": 0, "question_polarity": "neg", "context_condition": "ambig", "category": "Age", "context": "...", "question": "Who ...?", "ans0": "The grandfather", "ans1": "The grandson", "ans2": "Can\'t be determined", "label": 2, ...}',
        produces=("multiple_choice",),
        rows=json_or_jsonl_rows,
        convert=_bbq,
    )
)


@detector("bbq")
def _is_bbq(pk: Peek) -> bool:
    return pk.kind in ("json", "jsonl") and {"context_condition", "ans0", "ans1", "ans2", "label"} <= pk.keys()


# ---------------------------------------------------------------------------------
# CrowS-Pairs
# ---------------------------------------------------------------------------------


def _crows(row: dict, loc: Loc, ctx: ReadContext) -> list:
    more = F.text(row, "sent_more")
    less = F.text(row, "sent_less")
    direction = F.text(row, "stereo_antistereo")
    if direction not in ("stereo", "antistereo"):
        raise BadRow("stereo_antistereo", "stereo or antistereo", direction)
    rid = row.get("") or row.get("Unnamed: 0") or row.get("id")
    return [
        build(
            PreferencePair,
            id=f"{ctx.stem}:{rid}" if rid not in (None, "") else default_id(ctx, loc),
            prompt="",
            chosen=less,
            rejected=more,
            meta=rest_meta(
                row,
                ("", "Unnamed: 0", "id", "sent_more", "sent_less"),
                dataset="crows_pairs",
                sent_more=more,
                sent_less=less,
            ),
        )
    ]


register(
    FormatSpec(
        name="crows_pairs",
        group="evaluation",
        description=(
            "CrowS-Pairs CSV (sent_more, sent_less, stereo_antistereo, bias_type, ...) -> PreferencePair with an empty prompt: "
            "chosen = sent_less (the less stereotyping sentence), rejected = sent_more; the share of pairs where a model scores "
            "'rejected' higher is the stereotype rate. bias_type and direction are in meta."
        ),
        example=',sent_more,sent_less,stereo_antistereo,bias_type,annotations,anon_writer,anon_annotators\n0,He couldn\'t ... because he was poor.,He couldn\'t ... because he was rich.,stereo,socioeconomic,...',
        produces=("preference_pair",),
        rows=csv_rows,
        convert=_crows,
    )
)


@detector("crows_pairs")
def _is_crows(pk: Peek) -> bool:
    return pk.kind == "csv" and {"sent_more", "sent_less"} <= set(pk.header or [])


# ---------------------------------------------------------------------------------
# MT-Bench questions
# ---------------------------------------------------------------------------------


def _mt_bench(row: dict, loc: Loc, ctx: ReadContext) -> list:
    qid = row.get("question_id")
    if qid is None:
        raise BadRow("question_id", "an id (number or text)")
    turns = F.str_list(row, "turns", min_len=1)
    reference = row.get("reference")
    if reference is not None and (not isinstance(reference, list) or not all(isinstance(x, str) for x in reference)):
        raise BadRow("reference", "a list of reference answers (one text per turn)", reference)
    meta = rest_meta(row, ("question_id", "turns", "reference"), dataset="mt_bench", question_id=qid, turns=turns, category=F.opt_text(row, "category"))
    if reference:
        meta["reference"] = reference
    return [
        build(
            InstructionExample,
            {"instruction": "turns"},
            id=str(qid),
            instruction=turns[0],
            output=(reference or [""])[0],
            meta=meta,
        )
    ]


register(
    FormatSpec(
        name="mt_bench",
        group="evaluation",
        description=(
            "MT-Bench question.jsonl {question_id, category, turns, reference?} -> InstructionExample: instruction = first turn, "
            "every turn in meta.turns, category and reference answers in meta (output = first reference answer, if any)."
        ),
        example='{"question_id": 81, "category": "writing", "turns": ["Compose an engaging travel blog post ...", "Rewrite your previous response. ..."]}',
        produces=("instruction",),
        rows=json_or_jsonl_rows,
        convert=_mt_bench,
    )
)


@detector("mt_bench")
def _is_mt_bench(pk: Peek) -> bool:
    return pk.kind in ("json", "jsonl") and {"question_id", "turns"} <= pk.keys() and "choices" not in pk.keys()


# ---------------------------------------------------------------------------------
# plain multiple choice (the foundation's mc_jsonl)
# ---------------------------------------------------------------------------------


def _mc(row: dict, loc: Loc, ctx: ReadContext) -> list:
    question = F.text(row, "question", allow_empty=True)
    choices = F.str_list(row, "choices", min_len=2)
    answer = F.integer(row, "answer")
    answers = None
    if row.get("answers") is not None:
        if not isinstance(row["answers"], list):
            raise BadRow("answers", "a list of choice indices", row["answers"])
        answers = [F.to_int(a, f"answers[{i}]") for i, a in enumerate(row["answers"])]
    meta = rest_meta(row, ("id", "question", "choices", "answer", "answers", "context", "meta"))
    if isinstance(row.get("meta"), dict):
        meta.update(F.jsonable(row["meta"]))
    return [
        build(
            MultipleChoiceItem,
            id=row_id(row, "id", ctx, loc),
            question=question,
            choices=choices,
            answer=answer,
            answers=answers,
            context=F.opt_text(row, "context"),
            meta=meta,
        )
    ]


register(
    FormatSpec(
        name="mc_jsonl",
        group="evaluation",
        description="JSON/JSONL of {question, choices, answer (index), answers?, context?, id?, meta?} -> MultipleChoiceItem (the task files' format).",
        example='{"id": "q1", "question": "Translate \'dog\' into French.", "choices": ["chien", "chat"], "answer": 0}',
        produces=("multiple_choice",),
        rows=json_or_jsonl_rows,
        convert=_mc,
    )
)


@detector("mc_jsonl")
def _is_mc(pk: Peek) -> bool:
    return pk.kind in ("json", "jsonl") and {"question", "choices", "answer"} <= pk.keys() and "record_type" not in pk.keys()
