"""Reading an answer out of generated text: regex, first choice letter, first number, first line.

Why explicit extraction: a generated answer is only comparable to a reference once
the part that *is* the answer has been cut out, and the rule for that is part of
the measurement, so the task file states it and the report counts failures.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

from aligngoals.evaluate.tasks.spec import Extraction

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def first_number(text: str) -> Optional[str]:
    """The first number in ``text``, canonicalised ("1,000.50" -> "1000.5", "3.0" -> "3")."""
    for m in _NUMBER.finditer(text):
        raw = m.group(0).replace(",", "")
        try:
            value = float(raw)
        except ValueError:  # pragma: no cover - the regex only matches numbers
            continue
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return None


def first_letter(text: str, labels: Sequence[str]) -> Optional[int]:
    """Index of the first choice label that stands alone in ``text`` ("B", "(B)", "B.", "Answer: B").

    Only the first ``len(labels)`` letters count, so "I think A" with labels A-C
    gives 0 while the article "A" in "A dog" would also give 0: tasks should ask for
    the letter alone and keep ``max_tokens`` small.
    """
    if not labels:
        return None
    alt = "|".join(re.escape(lab) for lab in labels)
    m = re.search(rf"(?<![A-Za-z0-9])({alt})(?![A-Za-z0-9])", text)
    if m is None:
        return None
    return list(labels).index(m.group(1))


def extract(text: str, rule: Extraction, labels: Sequence[str] = ()) -> Optional[str | int]:
    """Apply ``rule``; None means the answer could not be read (a parse failure)."""
    if rule.type == "none":
        return text.strip()
    if rule.type == "first_line":
        for line in text.strip().splitlines():
            if line.strip():
                return line.strip()
        return None
    if rule.type == "first_number":
        return first_number(text)
    if rule.type == "first_letter":
        return first_letter(text, labels)
    if rule.type == "regex":
        flags = re.IGNORECASE if rule.ignore_case else 0
        m = re.search(rule.pattern or "", text, flags)
        if m is None:
            return None
        return (m.group(1) if m.re.groups else m.group(0)).strip()
    raise ValueError(f"unknown extraction {rule.type!r}")  # pragma: no cover - validated by the spec
