"""Read the safety task's inputs: harmful requests, attack templates, benign-but-risky requests.

Why a module of its own: the attack and benign files are project data that users
may replace with their own, so they are validated with errors that name the file,
the line (or entry) and the field, like every other reader in aligngoals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Optional

import yaml

from aligngoals.data.sources import read_jsonl_objects
from aligngoals.errors import DataError

ATTACK_TYPES = ("role_play", "goal_hijacking", "prompt_leaking", "claimed_authority", "hypothetical_frame")
"""The survey's instruction-attack families; a user file may add others."""

HARMFUL_DEFAULT = "hh-rlhf/harmless-base-test.jsonl.gz"
"""Harmful requests: first human turns of HH-RLHF's harmless-base test split (relative to --data-dir)."""


def builtin_path(name: str) -> Path:
    return Path(str(resources.files("aligngoals.values.safety") / "data" / name))


@dataclass(frozen=True)
class Attack:
    id: str
    type: str
    template: str

    def wrap(self, request: str) -> str:
        # str.replace, not str.format: requests contain braces often enough.
        return self.template.replace("{request}", request.strip())


@dataclass(frozen=True)
class SafetyRequest:
    id: str
    text: str
    category: Optional[str] = None


def load_attacks(path: str | Path | None = None) -> list[Attack]:
    """Attack templates from a YAML file (``attacks: [{id, type, template}]``); the built-in set by default."""
    p = Path(path) if path is not None else builtin_path("attacks.yaml")
    if not p.is_file():
        raise DataError(f"Attack file {p} does not exist.", hint="Pass the path of a YAML file with an 'attacks' list.")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f":{mark.line + 1}" if mark is not None else ""
        raise DataError(f"{p}{loc}: not valid YAML ({getattr(exc, 'problem', None) or exc}).") from exc
    entries = raw.get("attacks") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{p}: expected a top-level 'attacks' list.", hint="Each entry has id, type and template.")
    out: list[Attack] = []
    seen: set[str] = set()
    for i, e in enumerate(entries):
        where = f"{p}: attacks[{i}]"
        if not isinstance(e, dict):
            raise DataError(f"{where}: expected a mapping with id, type and template.")
        for field in ("id", "type", "template"):
            if not isinstance(e.get(field), str) or not e[field].strip():
                raise DataError(f"{where}: field '{field}' must be a non-empty string.")
        if "{request}" not in e["template"]:
            raise DataError(f"{where} ({e['id']}): field 'template' has no '{{request}}' placeholder.",
                            hint="Write {request} where the wrapped request goes.")
        if e["id"] in seen:
            raise DataError(f"{where}: attack id {e['id']!r} is used twice.")
        seen.add(e["id"])
        out.append(Attack(e["id"].strip(), e["type"].strip(), e["template"]))
    return out


def load_request_jsonl(path: str | Path, *, what: str) -> list[SafetyRequest]:
    """JSONL of ``{"id", "request", "category"?}`` (the benign set's format; users may pass their own)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{what} file {p} does not exist.")
    out: list[SafetyRequest] = []
    seen: set[str] = set()
    for lineno, row in read_jsonl_objects(p, hint='Each line: {"request": TEXT, "id": optional, "category": optional}.'):
        text = row.get("request")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{p}:{lineno}: field 'request' must be a non-empty string.")
        rid = str(row.get("id", lineno))
        if rid in seen:
            raise DataError(f"{p}:{lineno}: field 'id': {rid!r} is used twice.")
        seen.add(rid)
        cat = row.get("category")
        out.append(SafetyRequest(rid, text.strip(), None if cat is None else str(cat)))
    if not out:
        raise DataError(f"{what} file {p} has no requests.")
    return out


def load_benign(path: str | Path | None = None) -> list[SafetyRequest]:
    return load_request_jsonl(path if path is not None else builtin_path("benign_risky.jsonl"), what="Benign request")


def load_harmful(path: str | Path, *, max_chars: int = 400) -> list[SafetyRequest]:
    """First human turns of an HH-RLHF file (or a request JSONL), deduplicated, in file order.

    Why the first turn: later turns depend on an assistant answer we did not
    generate; the first turn is a self-contained request. Turns longer than
    ``max_chars`` are left out to keep generation cheap (counted by the caller
    through the difference in length if needed).
    """
    p = Path(path)
    if p.suffix == ".jsonl" and not p.name.endswith(".jsonl.gz"):
        # A plain request file is allowed as well ({"id", "request"}).
        with open(p, encoding="utf-8") as fh:
            first = next((ln for ln in fh if ln.strip()), "")
        try:
            if isinstance(json.loads(first), dict) and "request" in json.loads(first):
                return load_request_jsonl(p, what="Harmful request")
        except json.JSONDecodeError:
            pass
    from aligngoals.data.formats import load_records

    if not p.exists():
        raise DataError(f"Harmful-request file {p} does not exist.",
                        hint=f"Pass --data-dir pointing at the folder that holds {HARMFUL_DEFAULT}.")
    recs = load_records(p, format="hh_rlhf")
    out: list[SafetyRequest] = []
    seen: set[str] = set()
    for r in recs:
        msgs = r.prompt_messages or []
        first_user = next((m.content for m in msgs if m.role == "user"), None)
        if not first_user:
            continue
        text = first_user.strip()
        key = " ".join(text.lower().split())
        if not text or key in seen or len(text) > max_chars:
            continue
        seen.add(key)
        out.append(SafetyRequest(str(r.id), text, "hh_rlhf_harmless"))
    if not out:
        raise DataError(f"{p}: no usable first human turns found.")
    return out
