"""Read a verdict out of a judge's free text, robustly and without guessing.

Why so careful: a judge model (especially a small one) often ignores the
requested format, echoes the instructions ("[[A]] if A is better, [[B]] if ..."),
or wraps its answer in JSON. A parser that grabs the first "A" it sees turns
those into confident but meaningless verdicts. Here every extraction method
must find exactly one verdict; contradictory signals make the judgment
*ambiguous*, and no signal makes it *unparseable*. Both are kept, with the raw
text, and counted as parse failures instead of being dropped or guessed.

Methods, tried from most to least explicit (the first that finds anything decides):

1. ``brackets``: ``[[A]]``, ``[[B]]``, ``[[C]]`` (tie; ``[[tie]]`` too) or ``[[7]]``
   for a rating. When several different tokens appear, a lone token on the last
   non-empty line is taken as the final verdict (``brackets-last``); otherwise
   the judgment is ambiguous.
2. ``json``: an object with ``verdict`` / ``winner`` / ``better`` / ``choice``
   (or ``rating`` / ``score``) and optionally ``principles``.
3. ``label``: a labelled line, ``Verdict: B``, ``Final verdict: Assistant A``,
   ``Winner: tie``, ``Rating: 7`` or ``Score: 7/10``.
4. ``words``: plain statements, ``Assistant A is better``, ``B is better than A``, ``it's a tie``,
   ``7 out of 10``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Optional, Sequence

PAIRWISE_LABELS = ("A", "B", "tie")


@dataclass
class Verdict:
    """What one judge answer says, or why it says nothing usable.

    ``label`` (pairwise: ``"A"``, ``"B"`` or ``"tie"``) or ``rating`` (single) is None
    exactly when ``error`` says why: ``"unparseable"``, ``"ambiguous: ..."``,
    ``"out of range: ..."``. ``principles`` are the principle ids the judge named
    that the rubric knows; ``unknown_principles`` the other names it gave.
    """

    label: Optional[str] = None
    rating: Optional[float] = None
    method: Optional[str] = None
    error: Optional[str] = None
    principles: list[str] = field(default_factory=list)
    unknown_principles: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        return asdict(self)


# --- pairwise -------------------------------------------------------------------------------
_BRACKET = re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.IGNORECASE)
_WHO = r"(?:(?:assistant|answer|response|model|option)\s*)?"
_PAIR_LABEL_LINE = re.compile(
    r"^[\s>*#_-]*(?:(?:my|the)\s+)?(?:final\s+|overall\s+)?"
    r"(?:verdict|winner|decision|choice|judg(?:e)?ment|better\s+(?:answer|response)|preferred\s+(?:answer|response))"
    r"\s*(?:is)?\s*[:=\-]?\s*[*_\"'`(\[]*\s*" + _WHO + r"(?:a\s+)?((?-i:A|B|C)|tie|draw|neither)\b",
    re.IGNORECASE | re.MULTILINE,
)
_PAIR_WORDS_WIN = re.compile(
    r"(?:\b(?:assistant|answer|response|option)\s+|(?<![\w'’])\[?)((?-i:[AB]))\]?\s+(?:is|was|provides?\s+the)\s+"
    r"(?:clearly\s+|much\s+|slightly\s+|significantly\s+|definitely\s+|overall\s+)?"
    r"(?:the\s+)?(?:better|superior|preferred|preferable|stronger|winner|more\s+(?:helpful|accurate|appropriate))",
    re.IGNORECASE,
)
_PAIR_WORDS_TIE = re.compile(
    r"\b(?:it(?:'|’)?s\s+a\s+tie|(?:is|as)\s+a\s+tie|both\s+(?:answers|responses|assistants)\s+are\s+equally|"
    r"equally\s+(?:good|bad|helpful)|neither\s+(?:answer|response)\s+is\s+better)\b",
    re.IGNORECASE,
)
_VERDICT_KEYS = ("verdict", "winner", "better", "choice", "preferred", "decision", "final_verdict")
_RATING_KEYS = ("rating", "score", "grade")


def _label_of(token: Any) -> Optional[str]:
    if token is None:
        return None
    t = str(token).strip().strip("[]().*\"'`").strip().lower()
    t = re.sub(r"^(?:assistant|answer|response|model|option)\s*", "", t)
    if t in ("a", "1"):
        return "A"
    if t in ("b", "2"):
        return "B"
    if t in ("c", "tie", "draw", "equal", "both", "neither", "same"):
        return "tie"
    return None


def _unique(found: Sequence[str]) -> tuple[Optional[str], bool]:
    """``(value, ambiguous)`` of a list of candidate labels."""
    distinct = list(dict.fromkeys(found))
    if len(distinct) == 1:
        return distinct[0], False
    return None, len(distinct) > 1


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _json_objects(text: str) -> list[dict]:
    """Every JSON object in ``text`` that parses (innermost first, then the outermost span)."""
    out: list[dict] = []
    spans = [m.group(0) for m in re.finditer(r"\{[^{}]*\}", text)]
    first, last = text.find("{"), text.rfind("}")
    if 0 <= first < last:
        spans.append(text[first : last + 1])
    for s in spans:
        try:
            obj = json.loads(s)
        except (json.JSONDecodeError, ValueError):
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


def _json_field(objs: Iterable[dict], keys: Sequence[str]) -> list[Any]:
    vals = []
    for o in objs:
        lower = {str(k).lower(): v for k, v in o.items()}
        for k in keys:
            if k in lower:
                vals.append(lower[k])
                break
    return vals


def parse_pairwise(text: str, principle_ids: Optional[Sequence[str]] = None) -> Verdict:
    """The verdict of a pairwise judgment: ``"A"``, ``"B"`` or ``"tie"``, or a failure with its reason."""
    text = text or ""
    principles, unknown = parse_principles(text, principle_ids)
    v = Verdict(principles=principles, unknown_principles=unknown)

    tokens = [_label_of(t) for t in _BRACKET.findall(text)]
    tokens = [t for t in tokens if t]
    if tokens:
        label, ambiguous = _unique(tokens)
        if label:
            v.label, v.method = label, "brackets"
            return v
        last = [_label_of(t) for t in _BRACKET.findall(_last_line(text))]
        if len(last) == 1 and last[0]:
            v.label, v.method = last[0], "brackets-last"
            return v
        v.error = "ambiguous: several different [[..]] verdicts (" + ", ".join(dict.fromkeys(tokens)) + ")"
        return v

    objs = _json_objects(text)
    found = [lab for lab in (_label_of(x) for x in _json_field(objs, _VERDICT_KEYS)) if lab]
    if found:
        label, _ = _unique(found)
        if label:
            v.label, v.method = label, "json"
            return v
        v.error = "ambiguous: JSON objects give different verdicts"
        return v

    found = [lab for lab in (_label_of(m) for m in _PAIR_LABEL_LINE.findall(text)) if lab]
    if found:
        label, _ = _unique(found)
        if label:
            v.label, v.method = label, "label"
            return v
        v.error = "ambiguous: labelled lines give different verdicts"
        return v

    found = [m.upper() for m in _PAIR_WORDS_WIN.findall(text)]
    if _PAIR_WORDS_TIE.search(text):
        found.append("tie")
    if found:
        label, _ = _unique(found)
        if label:
            v.label, v.method = label, "words"
            return v
        v.error = "ambiguous: the text states different verdicts"
        return v

    v.error = "unparseable: no verdict found"
    return v


# --- single-answer rating ---------------------------------------------------------------------
_NUM = r"(\d+(?:\.\d+)?)"
_RATING_BRACKET = re.compile(r"\[\[\s*" + _NUM + r"\s*(?:/\s*10\s*)?\]\]")
# A number that starts a range ("1-10") or a sum ("2 + 3 = 5") is not a rating.
_NOT_RANGE = r"(?![\d.]*\s*[-–+*×=]\s*\d)"
_RATING_LABEL = re.compile(
    r"\b(?:rating|score|grade)\s*(?:\(\s*(?:[01]\s*[-–]\s*10|out\s+of\s+10)\s*\)\s*)?(?:is|of)?\s*[:=]?\s*[*_\"'`\[(]*\s*" + _NUM + _NOT_RANGE
    + r"(?:\s*(?:/|out\s+of)\s*10)?",
    re.IGNORECASE,
)
_RATING_WORDS = re.compile(r"\b" + _NUM + r"\s*(?:/|out\s+of)\s*10\b", re.IGNORECASE)


def _rating_of(x: Any) -> Optional[float]:
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float)):
        return float(x)
    m = re.match(r"^\s*" + _NUM + r"\s*(?:/\s*10)?\s*$", str(x))
    return float(m.group(1)) if m else None


def parse_rating(
    text: str,
    principle_ids: Optional[Sequence[str]] = None,
    *,
    low: float = 1,
    high: float = 10,
) -> Verdict:
    """The 1-10 rating of a single-answer grading, or a failure with its reason.

    A number outside ``[low, high]`` is a failure ("out of range"), not clipped:
    a judge that writes ``[[0]]`` or ``[[75]]`` did not follow the scale.
    """
    text = text or ""
    principles, unknown = parse_principles(text, principle_ids)
    v = Verdict(principles=principles, unknown_principles=unknown)

    def decide(values: list[float], method: str) -> Verdict:
        distinct = list(dict.fromkeys(values))
        if len(distinct) > 1:
            v.error = f"ambiguous: several different ratings ({', '.join(f'{x:g}' for x in distinct)})"
        elif not low <= distinct[0] <= high:
            v.error = f"out of range: {distinct[0]:g} is not in [{low:g}, {high:g}]"
        else:
            v.rating, v.method = distinct[0], method
        return v

    found = [float(x) for x in _RATING_BRACKET.findall(text)]
    if found:
        if len(set(found)) > 1:
            last = [float(x) for x in _RATING_BRACKET.findall(_last_line(text))]
            if len(last) == 1:
                return decide(last, "brackets-last")
        return decide(found, "brackets")
    objs = _json_objects(text)
    found = [r for r in (_rating_of(x) for x in _json_field(objs, _RATING_KEYS)) if r is not None]
    if found:
        return decide(found, "json")
    found = [float(x) for x in _RATING_LABEL.findall(text)]
    if found:
        return decide(found, "label")
    found = [float(x) for x in _RATING_WORDS.findall(text)]
    if found:
        return decide(found, "words")
    v.error = "unparseable: no rating found"
    return v


# --- principles ----------------------------------------------------------------------------------
_PRINCIPLE_LINE = re.compile(
    r"^[\s>*#_-]*principles?(?:\s+(?:cited|used|applied|violated))?\**\s*[:=]\s*(.+)$",
    re.IGNORECASE | re.MULTILINE,
)
_SPLIT = re.compile(r"[,;/\s]+")


def parse_principles(text: str, principle_ids: Optional[Sequence[str]]) -> tuple[list[str], list[str]]:
    """``(known, unknown)`` principle ids named by the judge on a ``Principles:`` line or in JSON.

    Matching ignores case, and ``_``/``-`` differences, and maps to the rubric's own
    spelling. Nothing is searched in free prose: a principle counts only when the
    judge named it where it was asked to.
    """
    if not principle_ids:
        return [], []
    canon = {_key(p): p for p in principle_ids}
    named: list[str] = []
    for obj in _json_objects(text):
        vals = _json_field([obj], ("principles", "principle", "principle_ids"))
        for val in vals:
            items = val if isinstance(val, list) else _SPLIT.split(str(val))
            named.extend(str(x) for x in items)
    for m in _PRINCIPLE_LINE.findall(text):
        named.extend(_SPLIT.split(m))
    known: list[str] = []
    unknown: list[str] = []
    for raw in named:
        tok = raw.strip().strip("[](){}.\"'`*").strip()
        if not tok or tok.lower() in ("none", "n/a", "and", "-"):
            continue
        key = _key(tok)
        if key in canon:
            if canon[key] not in known:
                known.append(canon[key])
        elif tok not in unknown and len(unknown) < 10:
            unknown.append(tok)
    return known, unknown


def _key(s: str) -> str:
    return re.sub(r"[\s_\-]+", "", s.lower())
