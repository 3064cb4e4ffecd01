"""From data-layer records to what each alignment method trains on.

Why one intermediate form (:class:`Example`): a prompt (chat messages) with one
or more candidate answers and, when known, their scores. Every record type the
data layer reads maps onto it (a preference pair is two answers scored 1 and 0,
a K-wise ranking is K answers scored by rank, a rating keeps its scores, an
instruction or conversation is one answer), so every method accepts every
format it can make sense of, and the held-out split, prompt truncation and
counting of skipped records are written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from aligngoals.align.methods import get_method
from aligngoals.errors import DataError


@dataclass
class Example:
    id: str
    prompt: list[dict]
    """Chat messages before the answer (``{"role", "content"}``), ending with a user turn."""
    responses: list[str]
    scores: list[float] | None = None
    """Higher is better; None when the data gives a single demonstration."""
    meta: dict = field(default_factory=dict)

    def best(self) -> str:
        if not self.scores:
            return self.responses[0]
        i = max(range(len(self.responses)), key=lambda j: self.scores[j])  # type: ignore[index]
        return self.responses[i]

    def pairs(self) -> list[tuple[str, str]]:
        """Every (better, worse) pair with a strictly higher score, best pairs first."""
        if not self.scores or len(self.responses) < 2:
            return []
        order = sorted(range(len(self.responses)), key=lambda j: -self.scores[j])  # type: ignore[index]
        out = []
        for a_pos, a in enumerate(order):
            for b in order[a_pos + 1:]:
                if self.scores[a] > self.scores[b]:  # type: ignore[index]
                    out.append((self.responses[a], self.responses[b]))
        return out


def _user_prompt_from_instruction(rec: Any) -> str:
    text = rec.instruction.strip()
    if getattr(rec, "input", ""):
        text = f"{text}\n\n{rec.input.strip()}"
    return text


def _prompt_messages(rec: Any) -> list[dict]:
    msgs = getattr(rec, "prompt_messages", None)
    if msgs:
        return [{"role": m.role, "content": m.content} for m in msgs]
    return [{"role": "user", "content": rec.prompt}]


def record_to_example(rec: Any, index: int) -> Example | None:
    """One record as an :class:`Example` (None for record types that carry no answer)."""
    from aligngoals.data import records as R

    rid = str(rec.id if getattr(rec, "id", None) is not None else index)
    if isinstance(rec, R.PreferencePair):
        return Example(rid, _prompt_messages(rec), [rec.chosen, rec.rejected], [1.0, 0.0], dict(rec.meta))
    if isinstance(rec, R.Ranking):
        ranks = rec.ranks if rec.ranks is not None else list(range(1, len(rec.responses) + 1))
        return Example(rid, _prompt_messages(rec), list(rec.responses), [-float(r) for r in ranks], dict(rec.meta))
    if isinstance(rec, R.Rating):
        return Example(rid, _prompt_messages(rec), list(rec.responses), [float(s) for s in rec.scores], dict(rec.meta))
    if isinstance(rec, R.InstructionExample):
        if not rec.output.strip():
            return None
        return Example(rid, [{"role": "user", "content": _user_prompt_from_instruction(rec)}], [rec.output], None,
                       dict(rec.meta))
    if isinstance(rec, R.Conversation):
        msgs = [{"role": m.role, "content": m.content} for m in rec.messages]
        last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
        if last is None or last == 0:
            return None
        return Example(rid, msgs[:last], [msgs[last]["content"]], None, dict(rec.meta))
    return None


def load_examples(path: str | Path, fmt: str | None = None, *, skip_bad: bool = False) -> list[Example]:
    """Read ``path`` with the data layer and convert every record that has an answer."""
    try:
        from aligngoals.data.formats import load_records
    except ImportError as exc:  # the data layer is part of the package; this is a broken install
        raise DataError("The data readers (aligngoals.data.load_records) are not available in this install.",
                        hint="Reinstall aligngoals.") from exc
    p = Path(path)
    if not p.exists():
        raise DataError(f"Training data {p} does not exist.", hint="Check the path given to --data.")
    records = load_records(p, format=fmt, skip_bad=skip_bad)
    examples = []
    for i, rec in enumerate(records):
        ex = record_to_example(rec, i)
        if ex is not None and ex.prompt and ex.prompt[-1]["role"] == "user":
            examples.append(ex)
    if not examples:
        kinds = sorted({type(r).__name__ for r in records})
        raise DataError(
            f"{p}: none of its {len(records)} records ({', '.join(kinds) or 'none'}) has a prompt and an answer to train on.",
            hint="Alignment needs preference pairs, rankings, ratings, instructions with outputs or conversations "
                 "ending in an assistant turn; pass --format NAME if the format was misdetected.",
        )
    return examples


def split_heldout(examples: Sequence[Example], eval_n: int, limit: int | None = None) -> tuple[list[Example], list[Example]]:
    """Deterministic split: the last ``eval_n`` examples are held out, training uses the first ``limit`` of the rest."""
    examples = list(examples)
    if eval_n >= len(examples):
        raise DataError(
            f"The data has {len(examples)} usable examples but {eval_n} are to be held out for evaluation.",
            hint="Lower --eval-n (0 disables the held-out measurement) or give more data.",
        )
    held = examples[len(examples) - eval_n:] if eval_n else []
    train = examples[: len(examples) - eval_n]
    if limit is not None:
        train = train[:limit]
    return train, held


def require_kind(examples: Sequence[Example], method: str, *, data_path: str) -> None:
    """Refuse data that a method cannot learn from, with the reason."""
    if get_method(method).data == "pairs" and not any(ex.pairs() for ex in examples):
        raise DataError(
            f"{data_path}: method '{method}' learns from comparisons, but no record has two answers with different scores.",
            hint="Use preference pairs (chosen/rejected, e.g. --format hh_rlhf), rankings or ratings.",
        )


def fit_prompt(tokenizer: Any, prompt: list[dict], max_tokens: int, system_prompt: str | None = None) -> list[dict] | None:
    """Drop the earliest turns until the rendered prompt fits in ``max_tokens``; None if even the last user turn does not.

    Why the earliest: in multi-turn data the last user turn is what the answer
    responds to; older turns are context that can go first.
    """
    msgs = list(prompt)
    while msgs:
        rendered = with_system(msgs, system_prompt)
        n = len(chat_ids(tokenizer, rendered, add_generation_prompt=True))
        if n <= max_tokens:
            return msgs
        # drop one user/assistant exchange from the front, never the final user turn
        if len(msgs) <= 1:
            return None
        cut = 1
        while cut < len(msgs) - 1 and msgs[cut]["role"] != "user":
            cut += 1
        if msgs[cut]["role"] != "user":
            return None
        msgs = msgs[cut:]
    return None


def chat_ids(tokenizer: Any, messages: list[dict], *, add_generation_prompt: bool = False) -> list[int]:
    """Token ids of ``messages`` rendered with the model's chat template (as TRL tokenizes them)."""
    out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt,
                                        return_dict=True)
    return list(out["input_ids"])


def with_system(messages: list[dict], system_prompt: str | None) -> list[dict]:
    if not system_prompt:
        return list(messages)
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": f"{system_prompt}\n\n{messages[0]['content']}"}, *messages[1:]]
    return [{"role": "system", "content": system_prompt}, *messages]


def fit_examples(tokenizer: Any, examples: Iterable[Example], max_prompt_tokens: int) -> tuple[list[Example], int]:
    """Examples with prompts shortened to fit; returns (kept, number dropped)."""
    kept, dropped = [], 0
    for ex in examples:
        p = fit_prompt(tokenizer, ex.prompt, max_prompt_tokens)
        if p is None:
            dropped += 1
            continue
        kept.append(Example(ex.id, p, ex.responses, ex.scores, ex.meta))
    return kept, dropped


# --- rows for TRL ----------------------------------------------------------------------------
def preference_rows(examples: Iterable[Example]) -> list[dict]:
    """Conversational preference rows (``prompt``/``chosen``/``rejected``) for DPO and reward models."""
    rows = []
    for ex in examples:
        for chosen, rejected in ex.pairs():
            rows.append({
                "prompt": ex.prompt,
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
            })
    return rows


def sft_rows(examples: Iterable[Example]) -> list[dict]:
    """Conversational prompt-completion rows: TRL computes the loss on the completion only."""
    return [{"prompt": ex.prompt, "completion": [{"role": "assistant", "content": ex.best()}]} for ex in examples]


def prompt_rows(examples: Iterable[Example]) -> list[dict]:
    return [{"prompt": ex.prompt} for ex in examples]
