"""Norm examples for the three difficulty levels, read with :mod:`aligngoals.data` and sampled reproducibly.

Which dataset feeds which level, and why (docs/values.md has the long form):

* **Moral Stories** (action + norm classification form): every story has one norm,
  a moral and an immoral action. Balanced by construction (both actions of a story
  are used together), so it feeds the judgment levels 1 and 2, "name the norm" and
  rule-of-thumb generation.
* **Social-Chemistry-101** (the obligatory-RoT subset in ../shared/data): every row's
  action is judged acceptable, so a judgment accuracy on it would only measure a
  yes-bias. It feeds "name the norm" (situation -> which RoT) and RoT generation
  (situation -> RoT, every RoT written for the same situation is a reference).
* **ETHICS commonsense** (short scenarios): no norm text, so it feeds level 2
  judgment only (label 1 = acceptable after the reader's inversion).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from aligngoals.errors import DataError
from aligngoals.evaluate.tasks.prompting import draw

SOURCES: dict[str, tuple[str, str]] = {
    "moral_stories": ("moral-stories/norm_distance_action_norm_test.jsonl", "moral_stories"),
    "social_chem_101": ("social-chem-101/obligatory_sc101_first5000.csv", "social_chem_101"),
    "ethics_commonsense": ("ethics/commonsense/cm_test.csv.gz", "ethics_commonsense"),
}
"""Source name -> (path relative to --data-dir, aligngoals.data format)."""


@dataclass
class NormItem:
    id: str
    source: str
    action: Optional[str]
    label: Optional[int]
    """1 = acceptable, 0 = not (None when unknown)."""
    norm: Optional[str] = None
    situation: Optional[str] = None
    group: Optional[str] = None
    """Items that belong together (the two actions of a Moral Stories story, one SC101 situation)."""
    references: list[str] = field(default_factory=list)
    """Every annotated rule of thumb that applies (level 3 compares against the best match)."""


def resolve(data_dir: Optional[str], source: str, path: Optional[str] = None) -> Path:
    rel = path or SOURCES[source][0]
    p = Path(rel)
    if p.is_absolute():
        cands = [p]
    else:
        cands = ([Path(data_dir) / p] if data_dir else []) + [Path.cwd() / p]
    for c in cands:
        if c.exists():
            return c
    raise DataError(
        f"Norm data for {source} not found: {rel!r} (looked in: {', '.join(str(c) for c in cands)}).",
        hint="Pass --data-dir pointing at the folder that holds moral-stories/, social-chem-101/ and ethics/ "
        "(the shared data folder), or set the norms option paths.",
    )


def _read(path: Path, fmt: str):
    from aligngoals.data.formats import load_records

    return load_records(path, format=fmt)


def load_source(source: str, data_dir: Optional[str], path: Optional[str] = None) -> list[NormItem]:
    """Every usable item of one source, in file order."""
    if source not in SOURCES:
        raise DataError(f"Unknown norm source {source!r}.", hint=f"Known: {', '.join(SOURCES)}.")
    p = resolve(data_dir, source, path)
    recs = _read(p, SOURCES[source][1])
    items: list[NormItem] = []
    if source == "moral_stories":
        for r in recs:
            if r.label is None or not r.rule_of_thumb:
                continue
            sid = str(r.meta.get("story_id") or r.id)
            items.append(NormItem(id=str(r.id), source=source, action=r.action, label=int(r.label), norm=r.rule_of_thumb,
                                  situation=r.situation, group=sid, references=[r.rule_of_thumb]))
    elif source == "social_chem_101":
        by_sit: dict[str, list[str]] = {}
        for r in recs:
            if r.situation and r.rule_of_thumb:
                by_sit.setdefault(r.situation.strip(), [])
                if r.rule_of_thumb not in by_sit[r.situation.strip()]:
                    by_sit[r.situation.strip()].append(r.rule_of_thumb)
        for r in recs:
            if not (r.situation and r.rule_of_thumb):
                continue
            sit = r.situation.strip()
            items.append(NormItem(id=str(r.id), source=source, action=r.action, label=r.label, norm=r.rule_of_thumb,
                                  situation=sit, group=sit, references=list(by_sit[sit])))
    else:  # ethics_commonsense
        for r in recs:
            if r.label is None:
                continue
            # Short scenarios only: the long ones are multi-paragraph Reddit posts, slow and noisy.
            if r.meta.get("is_short") is False:
                continue
            items.append(NormItem(id=str(r.id), source=source, action=r.action, label=int(r.label)))
    if not items:
        raise DataError(f"{p}: no usable {source} items.")
    return items


def balanced_pairs(items: list[NormItem], n: int, seed: int, tag: str) -> list[NormItem]:
    """About ``n`` Moral Stories items as whole stories (moral + immoral action), drawn with the seed."""
    groups: dict[str, list[NormItem]] = {}
    for it in items:
        groups.setdefault(it.group or it.id, []).append(it)
    complete = [g for g in groups.values() if sorted(x.label for x in g) == [0, 1]]
    chosen = draw(complete, max(1, n // 2), {"task": tag, "seed": seed, "n": n})
    return [x for g in chosen for x in sorted(g, key=lambda x: -int(x.label or 0))]


def balanced_labels(items: list[NormItem], n: int, seed: int, tag: str) -> list[NormItem]:
    """``n`` items with as many label-1 as label-0 items (as far as the data allows), drawn with the seed."""
    pos = [x for x in items if x.label == 1]
    neg = [x for x in items if x.label == 0]
    half = n // 2
    out = draw(pos, n - half, {"task": tag, "seed": seed, "label": 1, "n": n}) + draw(neg, half, {"task": tag, "seed": seed, "label": 0, "n": n})
    return sorted(out, key=lambda x: items.index(x))


def one_per_group(items: list[NormItem], n: int, seed: int, tag: str, *, prefer_label: Optional[int] = None) -> list[NormItem]:
    """``n`` items, at most one per group (situation or story), drawn with the seed."""
    seen: dict[str, NormItem] = {}
    for it in items:
        key = it.group or it.id
        if key not in seen or (prefer_label is not None and it.label == prefer_label and seen[key].label != prefer_label):
            seen[key] = it
    return draw(list(seen.values()), n, {"task": tag, "seed": seed, "n": n})
