"""Preference-level formats: HH-RLHF, generic pairs/rankings/ratings, OpenAssistant trees, UltraFeedback."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterator, Optional

from aligngoals.data import fields as F
from aligngoals.data import sources as S
from aligngoals.data.formats import FormatSpec, Peek, ReadContext, build, detector, register
from aligngoals.data.readers._common import json_or_jsonl_rows, rest_meta, row_id
from aligngoals.data.readers.instructions import parse_openai_messages
from aligngoals.data.records import Message, PreferencePair, Ranking, Rating
from aligngoals.data.sources import BadRow, Loc
from aligngoals.data.transforms import BINARIZE_STRATEGIES, binarize_ratings, rankings_to_pairs
from aligngoals.errors import ConfigError

# ---------------------------------------------------------------------------------
# Anthropic HH-RLHF
# ---------------------------------------------------------------------------------

HH_ASSISTANT = "\n\nAssistant:"
_HH_TURN = re.compile(r"\n\n(Human|Assistant):")


def parse_hh_transcript(text: str) -> list[Message]:
    """Split an HH transcript (``\\n\\nHuman: ...\\n\\nAssistant: ...``) into messages.

    Text before the first turn marker, if any, becomes a system message. Contents are stripped.
    """
    parts = _HH_TURN.split(text)
    msgs: list[Message] = []
    lead = parts[0].strip()
    if lead:
        msgs.append(Message(role="system", content=lead))
    for who, content in zip(parts[1::2], parts[2::2]):
        msgs.append(Message(role="user" if who == "Human" else "assistant", content=content.strip()))
    return msgs


def split_hh_pair(chosen: str, rejected: str) -> tuple[str, str, str, bool]:
    """``(prompt, chosen_answer, rejected_answer, irregular)`` for two HH transcripts.

    The prompt is the longest shared prefix of the two transcripts, cut back to end
    with its last ``\\n\\nAssistant:``; the answers are what follows, without one
    leading space. ``irregular`` flags the few rows where an answer itself spans
    several turns (it contains ``\\n\\nHuman:``), which happens in the released data.
    Raises :class:`BadRow` when the two transcripts share no assistant turn.
    """
    common = os.path.commonprefix([chosen, rejected])
    cut = common.rfind(HH_ASSISTANT)
    if cut < 0:
        field = "chosen" if HH_ASSISTANT not in chosen else "rejected"
        raise BadRow(
            field,
            "a transcript ending with an '\\n\\nAssistant:' turn and sharing every earlier turn with the other transcript",
            detail="expected 'chosen' and 'rejected' to share the conversation up to an '\\n\\nAssistant:' turn; they do not",
        )
    prompt = chosen[: cut + len(HH_ASSISTANT)]

    def answer(t: str) -> str:
        a = t[len(prompt):]
        return a[1:] if a.startswith(" ") else a

    a_c, a_r = answer(chosen), answer(rejected)
    irregular = "\n\nHuman:" in a_c or "\n\nHuman:" in a_r or HH_ASSISTANT in a_c or HH_ASSISTANT in a_r
    return prompt, a_c, a_r, irregular


def _hh(row: dict, loc: Loc, ctx: ReadContext) -> list:
    chosen = F.text(row, "chosen")
    rejected = F.text(row, "rejected")
    prompt, a_c, a_r, irregular = split_hh_pair(chosen, rejected)
    meta = rest_meta(row, ("chosen", "rejected", "id"), answers_span_turns=True if irregular else None)
    return [
        build(
            PreferencePair,
            id=row_id(row, "id", ctx, loc),
            prompt=prompt,
            chosen=a_c,
            rejected=a_r,
            # the prompt ends with the empty "\n\nAssistant:" slot the answers fill: drop that last message
            prompt_messages=parse_hh_transcript(prompt)[:-1],
            meta=meta,
        )
    ]


register(
    FormatSpec(
        name="hh_rlhf",
        group="preferences",
        description=(
            "Anthropic HH-RLHF JSONL (.jsonl.gz reads directly) of {chosen, rejected} whole transcripts -> PreferencePair: "
            "prompt = shared transcript up to and including the final '\\n\\nAssistant:', chosen/rejected = the two final "
            "answers (one leading space removed), prompt_messages = the parsed earlier turns."
        ),
        example='{"chosen": "\\n\\nHuman: Hi\\n\\nAssistant: Hello!", "rejected": "\\n\\nHuman: Hi\\n\\nAssistant: Go away."}',
        produces=("preference_pair",),
        rows=json_or_jsonl_rows,
        convert=_hh,
    )
)


@detector("hh_rlhf")
def _is_hh(pk: Peek) -> bool:
    first = pk.first()
    return (
        pk.kind in ("json", "jsonl")
        and {"chosen", "rejected"} <= set(first)
        and "prompt" not in first
        and isinstance(first["chosen"], str)
        and "\n\nAssistant:" in first["chosen"]
    )


# ---------------------------------------------------------------------------------
# generic pairs (strings or chat messages)
# ---------------------------------------------------------------------------------


def _answer_side(v: Any, field: str) -> tuple[list[Message], str]:
    """A chosen/rejected value: text, or messages whose last one is the assistant's answer."""
    if isinstance(v, str):
        return [], v
    msgs = parse_openai_messages(v, field)
    if msgs[-1].role != "assistant":
        raise BadRow(f"{field}[{len(msgs) - 1}].role", "assistant (the last message is the answer being compared)", msgs[-1].role)
    return msgs[:-1], msgs[-1].content


def _pairs(row: dict, loc: Loc, ctx: ReadContext) -> list:
    for k in ("chosen", "rejected"):
        if k not in row or row[k] is None:
            raise BadRow(k, "text, or a list of chat messages ending with the assistant's answer")
    ctx_c, chosen = _answer_side(row["chosen"], "chosen")
    ctx_r, rejected = _answer_side(row["rejected"], "rejected")
    if ctx_c != ctx_r:
        raise BadRow("rejected", "the same conversation as 'chosen' before the final answer", detail="the messages before the final answer differ between 'chosen' and 'rejected'")
    p = row.get("prompt")
    prompt_msgs: list[Message] = []
    if isinstance(p, list):
        prompt_msgs = parse_openai_messages(p, "prompt")
        if ctx_c and ctx_c[: len(prompt_msgs)] == prompt_msgs:
            prompt_msgs = ctx_c
        else:
            prompt_msgs = prompt_msgs + ctx_c
        prompt = next((m.content for m in reversed(prompt_msgs) if m.role == "user"), "")
    elif isinstance(p, str):
        prompt = p
        prompt_msgs = ctx_c
    elif p is None:
        if not ctx_c:
            raise BadRow("prompt", "text (or chosen/rejected given as chat messages that include the prompt)")
        prompt_msgs = ctx_c
        prompt = next((m.content for m in reversed(prompt_msgs) if m.role == "user"), "")
    else:
        raise BadRow("prompt", "text or a list of chat messages", p)
    margin = F.opt_float(row, "margin")
    sc, sr = F.opt_float(row, "score_chosen"), F.opt_float(row, "score_rejected")
    if margin is None and sc is not None and sr is not None:
        margin = sc - sr
    meta = rest_meta(row, ("id", "prompt", "chosen", "rejected", "margin", "meta", "prompt_messages"))
    if isinstance(row.get("meta"), dict):
        meta.update(F.jsonable(row["meta"]))
    if row.get("prompt_messages") is not None and not prompt_msgs:
        prompt_msgs = parse_openai_messages(row["prompt_messages"], "prompt_messages")
    return [
        build(
            PreferencePair,
            id=row_id(row, "id", ctx, loc),
            prompt=prompt,
            chosen=chosen,
            rejected=rejected,
            prompt_messages=prompt_msgs or None,
            margin=margin,
            meta=meta,
        )
    ]


register(
    FormatSpec(
        name="pairs_jsonl",
        group="preferences",
        description=(
            "JSON/JSONL of {prompt, chosen, rejected} -> PreferencePair. chosen/rejected may also be chat message lists "
            "ending with the assistant answer (TRL conversational / UltraFeedback-binarized); score_chosen/score_rejected give the margin."
        ),
        example='{"prompt": "How do I boil an egg?", "chosen": "Simmer it for 9 minutes ...", "rejected": "Eggs are food."}',
        produces=("preference_pair",),
        rows=json_or_jsonl_rows,
        convert=_pairs,
    )
)


@detector("pairs_jsonl")
def _is_pairs(pk: Peek) -> bool:
    return pk.kind in ("json", "jsonl") and {"chosen", "rejected"} <= pk.keys() and "record_type" not in pk.keys()


# ---------------------------------------------------------------------------------
# generic rankings and ratings
# ---------------------------------------------------------------------------------


def _prompt_and_messages(row: dict) -> tuple[str, Optional[list[Message]]]:
    msgs = parse_openai_messages(row["prompt_messages"], "prompt_messages") if row.get("prompt_messages") is not None else None
    if "prompt" in row and isinstance(row["prompt"], list):
        msgs = parse_openai_messages(row["prompt"], "prompt")
        return next((m.content for m in reversed(msgs) if m.role == "user"), ""), msgs
    return F.text(row, "prompt", allow_empty=True), msgs


def _ranking(row: dict, loc: Loc, ctx: ReadContext) -> list:
    prompt, msgs = _prompt_and_messages(row)
    responses = F.str_list(row, "responses", min_len=2)
    ranks = None
    if row.get("ranks") is not None:
        if not isinstance(row["ranks"], list):
            raise BadRow("ranks", "a list of integers (lower is better), one per response", row["ranks"])
        ranks = [F.to_int(r, f"ranks[{i}]") for i, r in enumerate(row["ranks"])]
    rec = build(
        Ranking,
        {"responses": "responses", "ranks": "ranks"},
        id=row_id(row, "id", ctx, loc),
        prompt=prompt,
        responses=responses,
        ranks=ranks,
        prompt_messages=msgs,
        meta=rest_meta(row, ("id", "prompt", "responses", "ranks", "prompt_messages")),
    )
    return rankings_to_pairs(rec) if ctx.opt_bool("pairs") else [rec]


register(
    FormatSpec(
        name="ranking_jsonl",
        group="preferences",
        description="JSON/JSONL of {prompt, responses (best first), ranks?} -> Ranking; pairs=true gives all K-choose-2 PreferencePairs (InstructGPT).",
        example='{"prompt": "Name a colour.", "responses": ["Blue.", "Blue, I think?", "Chair."], "ranks": [1, 2, 3]}',
        produces=("ranking", "preference_pair"),
        rows=json_or_jsonl_rows,
        convert=_ranking,
        options={"pairs": "true: emit every ordered pair instead of the ranking"},
    )
)


def _rating(row: dict, loc: Loc, ctx: ReadContext) -> list:
    prompt, msgs = _prompt_and_messages(row)
    responses = F.str_list(row, "responses", min_len=1)
    if not isinstance(row.get("scores"), list):
        raise BadRow("scores", "a list of numbers, one per response", row.get("scores", S._MISSING))
    scores = [F.to_float(s, f"scores[{i}]") for i, s in enumerate(row["scores"])]
    rec = build(
        Rating,
        id=row_id(row, "id", ctx, loc),
        prompt=prompt,
        responses=responses,
        scores=scores,
        aspect=F.opt_text(row, "aspect"),
        prompt_messages=msgs,
        meta=rest_meta(row, ("id", "prompt", "responses", "scores", "aspect", "prompt_messages")),
    )
    return _maybe_binarize(rec, ctx)


def _maybe_binarize(rec: Rating, ctx: ReadContext) -> list:
    strategy = ctx.opt("binarize")
    if strategy is None:
        return [rec]
    if strategy not in BINARIZE_STRATEGIES:
        raise ConfigError(f"Option binarize={strategy!r}: expected one of {', '.join(BINARIZE_STRATEGIES)}.")
    return binarize_ratings(rec, strategy, ctx.opt_int("seed", 0) or 0)


_BINARIZE_OPTS = {
    "binarize": f"turn ratings into PreferencePairs: {', '.join(BINARIZE_STRATEGIES)}",
    "seed": "seed for best_vs_random (default 0)",
}

register(
    FormatSpec(
        name="ratings_jsonl",
        group="preferences",
        description="JSON/JSONL of {prompt, responses, scores, aspect?} -> Rating (binarize=STRATEGY gives PreferencePairs).",
        example='{"prompt": "Name a colour.", "responses": ["Blue.", "Chair."], "scores": [9, 2], "aspect": "helpfulness"}',
        produces=("rating", "preference_pair"),
        rows=json_or_jsonl_rows,
        convert=_rating,
        options=dict(_BINARIZE_OPTS),
    )
)


@detector("ratings_jsonl")
def _is_ratings(pk: Peek) -> bool:
    return pk.kind in ("json", "jsonl") and {"prompt", "responses", "scores"} <= pk.keys() and "record_type" not in pk.keys()


@detector("ranking_jsonl")
def _is_ranking(pk: Peek) -> bool:
    return pk.kind in ("json", "jsonl") and {"prompt", "responses"} <= pk.keys() and "record_type" not in pk.keys()


# ---------------------------------------------------------------------------------
# OpenAssistant message trees
# ---------------------------------------------------------------------------------


def _oasst_node_ok(node: Any, field: str) -> dict:
    if not isinstance(node, dict):
        raise BadRow(field, "a message object", node)
    role = node.get("role")
    if role not in ("prompter", "assistant"):
        raise BadRow(f"{field}.role", "prompter or assistant", role if "role" in node else S._MISSING)
    F.text(node, "text", allow_empty=True, field=f"{field}.text")
    return node


def _oasst_rankings(root: dict, ctx: ReadContext, field: str = "prompt") -> list[Ranking]:
    """Walk a tree; every prompter message with enough ranked assistant replies gives a Ranking."""
    lang = ctx.opt("lang")
    min_replies = ctx.opt_int("min_replies", 2) or 2
    out: list[Ranking] = []
    stack: list[tuple[dict, list[Message], str]] = [(_oasst_node_ok(root, field), [], field)]
    tree_id = root.get("message_tree_id") or root.get("message_id")
    while stack:
        node, history, where = stack.pop()
        here = history + [Message(role="user" if node["role"] == "prompter" else "assistant", content=node["text"])]
        replies = node.get("replies") or []
        if not isinstance(replies, list):
            raise BadRow(f"{where}.replies", "a list of reply messages", replies)
        for i, child in enumerate(replies):
            _oasst_node_ok(child, f"{where}.replies[{i}]")
        if node["role"] == "prompter" and (lang is None or node.get("lang") == lang):
            ranked = [
                c for c in replies
                if c["role"] == "assistant" and not c.get("deleted") and c.get("rank") is not None
            ]
            ranked.sort(key=lambda c: F.to_int(c["rank"], f"{where}.replies.rank"))
            if len(ranked) >= min_replies:
                out.append(
                    Ranking(
                        id=str(node.get("message_id") or f"{ctx.stem}:{len(out)}"),
                        prompt=node["text"],
                        responses=[c["text"] for c in ranked],
                        ranks=[F.to_int(c["rank"], f"{where}.replies.rank") + 1 for c in ranked],
                        prompt_messages=here if len(here) > 1 else None,
                        meta={
                            "message_tree_id": tree_id,
                            "lang": node.get("lang"),
                            "depth": len(here) - 1,
                            "response_message_ids": [c.get("message_id") for c in ranked],
                        },
                    )
                )
        for i, child in reversed(list(enumerate(replies))):
            if not child.get("deleted"):
                stack.append((child, here, f"{where}.replies[{i}]"))
    return out


def _oasst_rows(path: Path, ctx: ReadContext) -> Iterator[tuple[Loc, Any]]:
    """Tree files give one unit per line; flat message files are regrouped into trees first."""
    rows = list(json_or_jsonl_rows(path, ctx))
    flat = any(isinstance(r, dict) and "parent_id" in r and "prompt" not in r for _, r in rows[:50])
    if not flat:
        yield from rows
        return
    by_id: dict[str, dict] = {}
    order: list[tuple[Loc, dict]] = []
    for loc, r in rows:
        if isinstance(r, BadRow):
            yield loc, r
            continue
        mid = r.get("message_id")
        if not isinstance(mid, str) or not mid:
            yield loc, BadRow("message_id", "a message id (text)", mid if "message_id" in r else S._MISSING)
            continue
        node = dict(r)
        node["replies"] = []
        node["_loc"] = loc
        by_id[mid] = node
        order.append((loc, node))
    roots = []
    for loc, node in order:
        parent = node.get("parent_id")
        if parent is None:
            roots.append(node)
        elif parent in by_id:
            by_id[parent]["replies"].append(node)
        else:
            yield loc, BadRow("parent_id", "the message_id of another message in this file (or null for a root)", parent)
    for node in by_id.values():
        node["replies"].sort(key=lambda c: c["_loc"].line or 0)
    for root in roots:
        yield root["_loc"], {"_oasst_root": root}


def _oasst(row: dict, loc: Loc, ctx: ReadContext) -> Optional[list]:
    if "_oasst_root" in row:
        rankings = _oasst_rankings(row["_oasst_root"], ctx, field="message")
    else:
        if "prompt" not in row:
            raise BadRow("prompt", "the root message of a message tree")
        root = row["prompt"]
        if isinstance(root, dict) and "message_tree_id" not in root and "message_tree_id" in row:
            root = dict(root, message_tree_id=row["message_tree_id"])
        rankings = _oasst_rankings(root, ctx)
    if not rankings:
        return None
    if ctx.opt("output", "ranking") == "pairs":
        return [p for r in rankings for p in rankings_to_pairs(r)]
    if ctx.opt("output", "ranking") != "ranking":
        raise ConfigError(f"Option output={ctx.opt('output')!r}: expected ranking or pairs.")
    return rankings


register(
    FormatSpec(
        name="oasst",
        group="preferences",
        description=(
            "OpenAssistant message trees (one tree per line, as in *.trees.jsonl) or flat message lists (message_id, parent_id, "
            "role, text, rank). Every prompter message with at least 2 ranked assistant replies -> Ranking (best first, ranks 1..K), "
            "prompt_messages = the conversation so far; output=pairs gives all pairs. Trees without rankings count as filtered."
        ),
        example='{"message_tree_id": "t1", "prompt": {"message_id": "m1", "role": "prompter", "text": "Hi", "replies": [{"role": "assistant", "text": "Hello", "rank": 0}, ...]}}',
        produces=("ranking", "preference_pair"),
        rows=_oasst_rows,
        convert=_oasst,
        options={
            "output": "ranking (default) or pairs",
            "lang": "keep only prompts in this language code (e.g. en)",
            "min_replies": "minimum ranked replies for a ranking (default 2)",
        },
    )
)


@detector("oasst")
def _is_oasst(pk: Peek) -> bool:
    k = pk.keys()
    if pk.kind not in ("json", "jsonl"):
        return False
    if "prompt" in k and ("message_tree_id" in k or "tree_state" in k):
        return True
    return {"message_id", "parent_id", "role", "text"} <= k


# ---------------------------------------------------------------------------------
# UltraFeedback
# ---------------------------------------------------------------------------------

UF_ASPECTS = ("helpfulness", "honesty", "instruction_following", "truthfulness")


def _uf_score(c: dict, i: int, aspect: str) -> float:
    if aspect == "overall":
        return F.to_float(c.get("overall_score"), f"completions[{i}].overall_score") if "overall_score" in c else _missing(f"completions[{i}].overall_score")
    if aspect == "fine_grained":
        if c.get("fine-grained_score") is not None:
            return F.to_float(c["fine-grained_score"], f"completions[{i}].fine-grained_score")
        vals = [_uf_score(c, i, a) for a in UF_ASPECTS]
        return sum(vals) / len(vals)
    ann = c.get("annotations")
    if not isinstance(ann, dict) or not isinstance(ann.get(aspect), dict):
        raise BadRow(f"completions[{i}].annotations.{aspect}", "an object with a Rating", ann.get(aspect) if isinstance(ann, dict) and aspect in ann else S._MISSING)
    return F.to_float(ann[aspect].get("Rating"), f"completions[{i}].annotations.{aspect}.Rating")


def _missing(field: str) -> float:
    raise BadRow(field, "a number")


def _ultrafeedback(row: dict, loc: Loc, ctx: ReadContext) -> list:
    aspect = ctx.opt("aspect", "fine_grained")
    if aspect not in ("fine_grained", "overall", *UF_ASPECTS):
        raise ConfigError(f"Option aspect={aspect!r}: expected fine_grained, overall or one of {', '.join(UF_ASPECTS)}.")
    prompt = F.text(row, "instruction") if "instruction" in row else F.text(row, "prompt")
    comps = F.obj_list(row, "completions", min_len=1)
    responses = [F.text(c, "response", allow_empty=True, field=f"completions[{i}].response") for i, c in enumerate(comps)]
    scores = [_uf_score(c, i, aspect) for i, c in enumerate(comps)]
    meta = rest_meta(row, ("instruction", "prompt", "completions", "id"))
    meta["models"] = [c.get("model") for c in comps]
    rec = build(
        Rating,
        id=row_id(row, "id", ctx, loc),
        prompt=prompt,
        responses=responses,
        scores=scores,
        aspect=aspect,
        meta=meta,
    )
    return _maybe_binarize(rec, ctx)


register(
    FormatSpec(
        name="ultrafeedback",
        group="preferences",
        description=(
            "UltraFeedback JSONL of {instruction, completions: [{model, response, annotations, fine-grained_score, overall_score}]} "
            "-> Rating of each completion. aspect = fine_grained (default: mean of the four aspect ratings), overall, "
            "helpfulness, honesty, instruction_following or truthfulness; binarize=best_vs_random gives PreferencePairs."
        ),
        example='{"instruction": "...", "completions": [{"model": "m1", "response": "...", "annotations": {"helpfulness": {"Rating": "4"}}, "fine-grained_score": 4.25, "overall_score": 7.0}]}',
        produces=("rating", "preference_pair"),
        rows=json_or_jsonl_rows,
        convert=_ultrafeedback,
        options={"aspect": "which score to use (default fine_grained)", **_BINARIZE_OPTS},
    )
)


@detector("ultrafeedback")
def _is_uf(pk: Peek) -> bool:
    return pk.kind in ("json", "jsonl") and "completions" in pk.keys() and ("instruction" in pk.keys() or "prompt" in pk.keys())
