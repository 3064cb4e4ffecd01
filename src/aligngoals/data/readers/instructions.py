"""Instruction-level formats: Alpaca, Self-Instruct, Super-NaturalInstructions, ShareGPT, OpenAI messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from aligngoals.data import fields as F
from aligngoals.data import sources as S
from aligngoals.data.formats import FormatSpec, Peek, ReadContext, build, detector, register
from aligngoals.data.readers._common import json_or_jsonl_rows, rest_meta, row_id
from aligngoals.data.records import Conversation, InstructionExample, Message
from aligngoals.data.sources import BadRow, Loc
from aligngoals.errors import DataError

# ---------------------------------------------------------------------------------
# Alpaca
# ---------------------------------------------------------------------------------


def _alpaca(row: dict, loc: Loc, ctx: ReadContext) -> list:
    instruction = F.text(row, "instruction")
    inp = F.text(row, "input", allow_empty=True) if "input" in row and row["input"] is not None else ""
    output = F.text(row, "output", allow_empty=True)
    return [
        build(
            InstructionExample,
            id=row_id(row, "id", ctx, loc),
            instruction=instruction,
            input=inp,
            output=output,
            meta=rest_meta(row, ("id", "instruction", "input", "output")),
        )
    ]


register(
    FormatSpec(
        name="alpaca",
        group="instructions",
        description="Alpaca-style JSON array or JSONL of {instruction, input, output} -> InstructionExample.",
        example='{"instruction": "Give three tips for staying healthy.", "input": "", "output": "1. Eat a balanced diet ..."}',
        produces=("instruction",),
        rows=json_or_jsonl_rows,
        convert=_alpaca,
    )
)


@detector("alpaca")
def _is_alpaca(pk: Peek) -> bool:
    k = pk.keys()
    return pk.kind in ("json", "jsonl") and {"instruction", "output"} <= k and "instances" not in k and "completions" not in k


# ---------------------------------------------------------------------------------
# Self-Instruct seed tasks
# ---------------------------------------------------------------------------------


def _instances(row: dict) -> list[tuple[str, str]]:
    insts = F.obj_list(row, "instances", min_len=1)
    out = []
    for i, inst in enumerate(insts):
        inp = F.text(inst, "input", allow_empty=True, field=f"instances[{i}].input") if inst.get("input") is not None else ""
        output = F.text(inst, "output", allow_empty=True, field=f"instances[{i}].output")
        out.append((inp, output))
    return out


def _self_instruct(row: dict, loc: Loc, ctx: ReadContext) -> list:
    instruction = F.text(row, "instruction")
    pairs = _instances(row)
    is_cls = F.boolean(row, "is_classification")
    rid = row_id(row, "id", ctx, loc)
    meta = rest_meta(row, ("id", "instruction", "instances", "is_classification"))
    if ctx.opt_bool("per_instance"):
        return [
            build(InstructionExample, id=f"{rid}:{k}", instruction=instruction, input=i, output=o, is_classification=is_cls, meta=dict(meta, task_id=rid))
            for k, (i, o) in enumerate(pairs)
        ]
    exemplars = [InstructionExample(instruction=instruction, input=i, output=o) for i, o in pairs[1:]]
    i0, o0 = pairs[0]
    return [build(InstructionExample, id=rid, instruction=instruction, input=i0, output=o0, exemplars=exemplars, is_classification=is_cls, meta=meta)]


register(
    FormatSpec(
        name="self_instruct",
        group="instructions",
        description=(
            "Self-Instruct tasks, JSONL of {id, instruction, instances: [{input, output}], is_classification}. "
            "One InstructionExample per task (first instance as input/output, the others as exemplars), "
            "or one per instance with per_instance=true."
        ),
        example='{"id": "seed_task_0", "name": "breakfast_suggestion", "instruction": "...", "instances": [{"input": "", "output": "..."}], "is_classification": false}',
        produces=("instruction",),
        rows=json_or_jsonl_rows,
        convert=_self_instruct,
        options={"per_instance": "true: one record per instance instead of per task"},
    )
)


@detector("self_instruct")
def _is_self_instruct(pk: Peek) -> bool:
    return pk.kind in ("json", "jsonl") and {"instruction", "instances"} <= pk.keys()


# ---------------------------------------------------------------------------------
# Super-NaturalInstructions task files
# ---------------------------------------------------------------------------------


def _sni_text_list(doc: dict, key: str, path: Path) -> list[str]:
    v = doc.get(key)
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, str) for x in v) and v:
        return v
    raise DataError(
        f"{path}: field '{key}': expected a list of texts (the task definition), got {S.describe_value(v) if key in doc else 'nothing'}.",
        hint="A Super-NaturalInstructions task file has Definition, Positive Examples, Negative Examples and Instances.",
    )


def _sni_examples(doc: dict, key: str, path: Path) -> list[dict]:
    v = doc.get(key, [])
    if not isinstance(v, list):
        raise DataError(f"{path}: field '{key}': expected a list of examples, got {S.describe_value(v)}.")
    out = []
    for i, ex in enumerate(v):
        if not isinstance(ex, dict) or not isinstance(ex.get("input"), str) or not isinstance(ex.get("output"), str):
            raise DataError(
                f"{path}: field '{key}[{i}]': expected an object with text fields input and output (and optional explanation), "
                f"got {S.describe_value(ex)}."
            )
        out.append(ex)
    return out


def _sni_rows(path: Path, ctx: ReadContext) -> Iterator[tuple[Loc, Any]]:
    text = S.read_text(path)
    doc = S.load_json(path, text)
    if not isinstance(doc, dict):
        raise DataError(f"{path}: expected a JSON object (one Super-NaturalInstructions task), got {S.describe_value(doc)}.")
    definition = "\n".join(_sni_text_list(doc, "Definition", path))
    positives = _sni_examples(doc, "Positive Examples", path)
    _sni_examples(doc, "Negative Examples", path)
    if not isinstance(doc.get("Instances"), list):
        raise DataError(f"{path}: field 'Instances': expected a list of {{id, input, output}}, got {S.describe_value(doc.get('Instances')) if 'Instances' in doc else 'nothing'}.")
    max_ex = ctx.opt_int("max_exemplars")
    ctx.state["definition"] = definition
    ctx.state["exemplars"] = [
        InstructionExample(instruction=definition, input=ex["input"], output=ex["output"], meta={"explanation": ex["explanation"]} if ex.get("explanation") else {})
        for ex in (positives if max_ex is None else positives[:max_ex])
    ]
    header = {k: F.jsonable(v) for k, v in doc.items() if k not in ("Definition", "Positive Examples", "Instances")}
    header["task"] = ctx.stem
    ctx.state["meta"] = header
    start = S.find_key_array(text, "Instances")
    if start is not None:
        items = list(S.iter_json_array(path, text, start, item_prefix="Instances"))
        if len(items) == len(doc["Instances"]):
            yield from items
            return
    for i, inst in enumerate(doc["Instances"]):
        yield Loc(item=f"Instances[{i}]"), inst


def _sni(inst: Any, loc: Loc, ctx: ReadContext) -> list:
    if not isinstance(inst, dict):
        raise BadRow(None, "an object", detail=f"expected an instance object with input and output, got {S.describe_value(inst)}")
    inp = F.text(inst, "input", allow_empty=True)
    out = inst.get("output")
    if isinstance(out, str):
        outputs = [out]
    elif isinstance(out, list) and out and all(isinstance(x, str) for x in out):
        outputs = out
    else:
        raise BadRow("output", "a non-empty list of reference outputs (texts)", out if "output" in inst else S._MISSING)
    meta = dict(ctx.state["meta"])
    meta["outputs"] = outputs
    meta.update(rest_meta(inst, ("id", "input", "output")))
    return [
        build(
            InstructionExample,
            id=row_id(inst, "id", ctx, loc),
            instruction=ctx.state["definition"],
            input=inp,
            output=outputs[0],
            exemplars=ctx.state["exemplars"],
            meta=meta,
        )
    ]


register(
    FormatSpec(
        name="super_natural_instructions",
        group="instructions",
        description=(
            "Super-NaturalInstructions task JSON {Definition, Positive Examples, Negative Examples, Instances}: "
            "one InstructionExample per instance, instruction = Definition, positive examples as exemplars, "
            "every reference output in meta.outputs, negative examples in meta."
        ),
        example='{"Definition": ["Given a sentence, ..."], "Positive Examples": [{"input": "...", "output": "...", "explanation": "..."}], "Instances": [{"id": "task001-...", "input": "...", "output": ["..."]}]}',
        produces=("instruction",),
        rows=_sni_rows,
        convert=_sni,
        options={"max_exemplars": "use at most N positive examples as exemplars"},
    )
)


@detector("super_natural_instructions")
def _is_sni(pk: Peek) -> bool:
    # a pretty-printed task file is a JSON object; a minified one looks like a one-line JSONL file
    return pk.kind in ("json-object", "jsonl") and {"Definition", "Instances"} <= set(pk.first())


# ---------------------------------------------------------------------------------
# chat: ShareGPT and OpenAI messages
# ---------------------------------------------------------------------------------

SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "system": "system",
}
OPENAI_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def _sharegpt(row: dict, loc: Loc, ctx: ReadContext) -> list:
    turns = F.obj_list(row, "conversations", min_len=1)
    messages = []
    sys_prompt = F.opt_text(row, "system")
    if sys_prompt:
        messages.append(Message(role="system", content=sys_prompt))
    for i, t in enumerate(turns):
        who = t.get("from")
        if not isinstance(who, str) or who.lower() not in SHAREGPT_ROLES:
            raise BadRow(f"conversations[{i}].from", f"one of {', '.join(sorted(SHAREGPT_ROLES))}", who if "from" in t else S._MISSING)
        content = F.text(t, "value", allow_empty=True, field=f"conversations[{i}].value")
        messages.append(Message(role=SHAREGPT_ROLES[who.lower()], content=content))
    return [build(Conversation, id=row_id(row, "id", ctx, loc), messages=messages, meta=rest_meta(row, ("id", "conversations", "system")))]


register(
    FormatSpec(
        name="sharegpt",
        group="instructions",
        description="ShareGPT JSON/JSONL of {id, conversations: [{from: human|gpt|system, value}]} -> Conversation.",
        example='{"id": "x1", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]}',
        produces=("conversation",),
        rows=json_or_jsonl_rows,
        convert=_sharegpt,
    )
)


@detector("sharegpt")
def _is_sharegpt(pk: Peek) -> bool:
    return pk.kind in ("json", "jsonl") and "conversations" in pk.keys()


def parse_openai_messages(msgs: Any, field: str) -> list[Message]:
    """OpenAI chat messages (content as text or as a list of text parts) -> :class:`Message` list."""
    if not isinstance(msgs, list) or not msgs:
        raise BadRow(field, "a non-empty list of {role, content} messages", msgs)
    out = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise BadRow(f"{field}[{i}]", "a {role, content} object", m)
        role = m.get("role")
        if role not in OPENAI_ROLES:
            raise BadRow(f"{field}[{i}].role", "system, developer, user or assistant", role if "role" in m else S._MISSING)
        content = m.get("content")
        if isinstance(content, list):
            parts = []
            for j, part in enumerate(content):
                if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                    parts.append(part["text"])
                else:
                    raise BadRow(f"{field}[{i}].content[{j}]", "a text part {type: text, text}", part)
            content = "".join(parts)
        if not isinstance(content, str):
            raise BadRow(f"{field}[{i}].content", "text", content if "content" in m else S._MISSING)
        out.append(Message(role=OPENAI_ROLES[role], content=content))
    return out


def _openai(row: dict, loc: Loc, ctx: ReadContext) -> list:
    if "messages" not in row:
        raise BadRow("messages", "a list of {role, content} messages")
    messages = parse_openai_messages(row["messages"], "messages")
    return [build(Conversation, id=row_id(row, "id", ctx, loc), messages=messages, meta=rest_meta(row, ("id", "messages")))]


register(
    FormatSpec(
        name="openai_messages",
        group="instructions",
        description="JSONL of {messages: [{role: system|developer|user|assistant, content}]} (OpenAI / TRL chat format) -> Conversation.",
        example='{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}',
        produces=("conversation",),
        rows=json_or_jsonl_rows,
        convert=_openai,
    )
)


@detector("openai_messages")
def _is_openai(pk: Peek) -> bool:
    if pk.kind not in ("json", "jsonl") or "messages" not in pk.keys():
        return False
    if {"chosen", "rejected"} <= pk.keys():
        return False
    msgs = pk.first().get("messages")
    return isinstance(msgs, list) and all(isinstance(m, dict) and "role" in m for m in msgs)
