"""Judge prompt templates: the project's defaults, a user's own file, or the MT-Bench prompts.

Why templates are data: the wording of a judge prompt changes verdicts, so users
must be able to read it, change it, and cite exactly which one produced a
leaderboard (its hash is recorded in the judge run). Four kinds exist:
``pairwise``, ``pairwise_reference``, ``single`` and ``single_reference``; the
``*_reference`` kinds are used for items that carry a reference answer.

Placeholders are ``{name}``; only the known names below are substituted, so a
template may contain other braces (a JSON example, for instance) untouched.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Mapping, Optional

import yaml

from aligngoals.data.sources import read_jsonl_objects
from aligngoals.errors import ConfigError
from aligngoals.io import stable_hash

KINDS = ("pairwise", "pairwise_reference", "single", "single_reference")
PLACEHOLDERS = ("question", "answer", "answer_a", "answer_b", "reference", "ref_answer_1", "rubric")
_REQUIRED = {
    "pairwise": ("question", "answer_a", "answer_b"),
    "pairwise_reference": ("question", "answer_a", "answer_b"),
    "single": ("question", "answer"),
    "single_reference": ("question", "answer"),
}
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")

# MT-Bench's judge_prompts.jsonl names -> our kinds (single-turn prompts only).
MT_BENCH_NAMES = {
    "pair-v2": "pairwise",
    "pair-math-v1": "pairwise_reference",
    "single-v1": "single",
    "single-math-v1": "single_reference",
}


@dataclass(frozen=True)
class Template:
    kind: str
    system: str
    prompt: str
    source: str = "aligngoals default"
    reply_prefix: str = ""
    """Text the judge's reply is made to start with (e.g. ``"Verdict: [["``), when the backend can
    render its chat template locally; small judges then answer in the parseable format.
    The prefix is part of the stored raw text. Served models ignore it."""

    def placeholders(self) -> set[str]:
        return set(_PLACEHOLDER.findall(self.system)) | set(_PLACEHOLDER.findall(self.prompt))

    def uses_rubric(self) -> bool:
        return "rubric" in self.placeholders()

    def uses_reference(self) -> bool:
        return bool({"reference", "ref_answer_1"} & self.placeholders())

    def render(self, values: Mapping[str, str]) -> tuple[str, str]:
        """``(system, user)`` texts with the placeholders filled; ``ref_answer_1`` is an alias of ``reference``."""
        vals = dict(values)
        if "reference" in vals:
            vals.setdefault("ref_answer_1", vals["reference"])

        def fill(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: str(vals.get(m.group(1), m.group(0))), text)

        return fill(self.system), fill(self.prompt)

    def check(self) -> None:
        missing = [p for p in _REQUIRED[self.kind] if p not in self.placeholders()]
        if self.kind.endswith("_reference") and not self.uses_reference():
            missing.append("reference")
        if missing:
            raise ConfigError(
                f"Judge template {self.kind!r} ({self.source}) lacks the placeholder(s) "
                + ", ".join("{" + m + "}" for m in missing) + ".",
                hint=f"A {self.kind} template must contain " + ", ".join("{" + p + "}" for p in _REQUIRED[self.kind])
                + (" and {reference}" if self.kind.endswith("_reference") else "") + ".",
            )


@dataclass(frozen=True)
class TemplateSet:
    pairwise: Template
    pairwise_reference: Template
    single: Template
    single_reference: Template

    def get(self, kind: str) -> Template:
        return getattr(self, kind)

    def for_item(self, mode: str, has_reference: bool) -> Template:
        return self.get(f"{mode}_reference" if has_reference else mode)

    def fingerprint(self) -> str:
        return stable_hash({k: asdict(self.get(k)) for k in KINDS})[:16]

    def to_dict(self) -> dict:
        return {k: asdict(self.get(k)) for k in KINDS}


BUILTIN_SETS = ("default", "verdict-first")


def builtin_templates(name: str = "default") -> TemplateSet:
    """A template set shipped with aligngoals (``judges/templates/<name>.yaml``).

    ``default``: explain briefly, then give the verdict (for capable judges).
    ``verdict-first``: short prompts whose reply starts with the verdict (a reply
    prefix), for small local judges that cannot follow a reason-then-verdict format.
    """
    if name not in BUILTIN_SETS:
        raise ConfigError(f"No built-in judge template set {name!r}.", hint=f"Use one of {', '.join(BUILTIN_SETS)}, or a file.")
    text = resources.files("aligngoals.judges").joinpath("templates", f"{name}.yaml").read_text("utf-8")
    return _from_mapping(yaml.safe_load(text), f"aligngoals {name}", base=None)


def default_templates() -> TemplateSet:
    """The project's own prompts (``judges/templates/default.yaml``)."""
    return builtin_templates("default")


def _from_mapping(raw: object, source: str, base: Optional[TemplateSet]) -> TemplateSet:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a judge template file must be a mapping of kinds ({', '.join(KINDS)}).")
    unknown = [k for k in raw if k not in KINDS]
    if unknown:
        raise ConfigError(f"{source}: unknown template kind(s) {', '.join(map(str, unknown))}.",
                          hint=f"Use {', '.join(KINDS)}.")
    out = {}
    for kind in KINDS:
        entry = raw.get(kind)
        if entry is None:
            if base is None:
                raise ConfigError(f"{source}: template kind {kind!r} is missing.")
            out[kind] = base.get(kind)
            continue
        if not isinstance(entry, dict) or "prompt" not in entry:
            raise ConfigError(f"{source}: {kind!r} must be a mapping with 'prompt' (and optionally 'system').")
        extra = set(entry) - {"system", "prompt", "reply_prefix"}
        if extra:
            raise ConfigError(f"{source}: {kind!r} has unknown key(s) {', '.join(sorted(extra))}.",
                              hint="Each template has 'system', 'prompt' and optionally 'reply_prefix'.")
        t = Template(kind, str(entry.get("system") or ""), str(entry["prompt"]), source,
                     str(entry.get("reply_prefix") or ""))
        t.check()
        out[kind] = t
    return TemplateSet(**out)


def load_mt_bench_templates(path: str | Path, base: Optional[TemplateSet] = None) -> TemplateSet:
    """The single-turn judge prompts of MT-Bench (Zheng et al. 2023) from FastChat's ``judge_prompts.jsonl``.

    ``pair-v2`` and ``single-v1`` judge general questions; ``pair-math-v1`` and
    ``single-math-v1`` (reference-guided) judge items with a reference answer.
    The file is read where it lies; nothing is copied into the project.
    """
    path = Path(path)
    found: dict[str, Template] = {}
    for lineno, row in read_jsonl_objects(path, error=ConfigError):
        name = row.get("name")
        kind = MT_BENCH_NAMES.get(name)
        if kind is None:
            continue
        for field_name in ("system_prompt", "prompt_template"):
            if not isinstance(row.get(field_name), str):
                raise ConfigError(f"{path}:{lineno}: prompt {name!r} has no text field {field_name!r}.")
        t = Template(kind, row["system_prompt"], row["prompt_template"], f"{path.name}:{name}")
        t.check()
        found[kind] = t
    if not found:
        raise ConfigError(f"{path}: no MT-Bench judge prompt named {', '.join(MT_BENCH_NAMES)}.",
                          hint="Pass FastChat's judge_prompts.jsonl (data/mt_bench/judge_prompts.jsonl).")
    base = base or default_templates()
    return TemplateSet(**{k: found.get(k, base.get(k)) for k in KINDS})


def load_templates(path: str | Path | None = None) -> TemplateSet:
    """Templates from a built-in set name (``default``, ``verdict-first``), a YAML/JSON file of kinds
    (entries left out keep the defaults) or MT-Bench's ``.jsonl``; None gives the defaults."""
    base = default_templates()
    if path is None:
        return base
    if str(path) in BUILTIN_SETS:
        return builtin_templates(str(path))
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"Judge template file {p} does not exist.",
                          hint="Pass a YAML file like the default (see docs/judging.md) or MT-Bench's judge_prompts.jsonl.")
    if p.suffix == ".jsonl":
        return load_mt_bench_templates(p, base)
    text = p.read_text(encoding="utf-8")
    try:
        raw = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{p}: cannot read the judge templates ({exc}).", hint="Fix the YAML/JSON syntax.") from exc
    return _from_mapping(raw, str(p), base)
