"""Shared plumbing of the synthesis methods: prompts in, JSONL records out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from aligngoals.data.records import Conversation, InstructionExample, PreferencePair, Record
from aligngoals.errors import DataError
from aligngoals.io import atomic_write_jsonl

ProgressFn = Callable[[int], None]


@dataclass
class SynthResult:
    """What a synthesis run produced: SFT examples, preference pairs and per-prompt traces."""

    sft: list[InstructionExample] = field(default_factory=list)
    pairs: list[PreferencePair] = field(default_factory=list)
    traces: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``sft.jsonl``, ``pairs.jsonl`` and ``traces.jsonl`` atomically (records JSONL format)."""
        out = Path(out_dir)
        paths = {}
        if self.sft:
            paths["sft"] = atomic_write_jsonl(out / "sft.jsonl", [r.model_dump(exclude_none=True) for r in self.sft])
        if self.pairs:
            paths["pairs"] = atomic_write_jsonl(out / "pairs.jsonl", [r.model_dump(exclude_none=True) for r in self.pairs])
        paths["traces"] = atomic_write_jsonl(out / "traces.jsonl", self.traces)
        return paths


def prompt_of(record: Record) -> str | None:
    """The user request a record carries, whatever its type."""
    if isinstance(record, InstructionExample):
        return record.instruction + (f"\n\n{record.input}" if record.input else "")
    if isinstance(record, PreferencePair):
        if record.prompt_messages:
            users = [m.content for m in record.prompt_messages if m.role == "user"]
            if users:
                return users[-1]
        return record.prompt
    if isinstance(record, Conversation):
        users = [m.content for m in record.messages if m.role == "user"]
        return users[0] if users else None
    for attr in ("prompt", "question", "instruction"):
        v = getattr(record, attr, None)
        if isinstance(v, str) and v.strip():
            return v
    return None


def load_prompts(path: str | Path, fmt: str | None = None, *, limit: int | None = None) -> list[str]:
    """Prompts from a file: a plain JSONL of ``{"prompt": ...}`` / a text file (one per line) / any data format."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Prompt file {path} does not exist.", hint="Pass a JSONL file of {\"prompt\": ...} or any supported data file.")
    prompts: list[str] = []
    if fmt in (None, "prompts") and path.suffix in (".jsonl", ".txt"):
        plain = True
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                if path.suffix == ".txt":
                    prompts.append(line.strip())
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg}).") from exc
                if isinstance(row, dict) and set(row) <= {"prompt", "id", "meta"} and isinstance(row.get("prompt"), str):
                    prompts.append(row["prompt"])
                else:
                    plain = False
                    break
        if plain:
            if not prompts:
                raise DataError(f"Prompt file {path} holds no prompts.")
            return prompts[:limit] if limit else prompts
        if fmt == "prompts":
            raise DataError(f"{path}: expected lines of {{\"prompt\": ...}}.", hint="Or pass --format NAME for another data format.")
        prompts = []
    from aligngoals.data import load_records

    for rec in load_records(path, format=fmt, limit=limit):
        p = prompt_of(rec)
        if p:
            prompts.append(p)
    if not prompts:
        raise DataError(f"No prompts could be taken from {path}.", hint="Records need an instruction, prompt or user turn.")
    return prompts
