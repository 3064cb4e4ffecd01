"""LLM judges: single-answer grading and position-swapped pairwise comparison.

Why both orders: judges prefer one position (usually the first) independently of
content (Zheng et al. 2023; Wang et al. 2023, "Large Language Models are not Fair
Evaluators"). Every pair is therefore judged twice, with the answers swapped.
Following MT-Bench's convention, a pair counts as a win only when both orders
agree; any disagreement counts as a tie and is reported as inconsistency, and a
disagreement where each order picks the answer in the same *position* is a
*flip*, pure position bias. A pair where either order could not be parsed is a
parse failure: it is kept with both raw texts and left out of the ratings
(using the one parsed order would let position bias back in).

Any :class:`~aligngoals.models.base.Model` can judge; pass a
:class:`~aligngoals.evaluate.cached.CachedModel` to store and resume every call.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional, Sequence

from aligngoals.errors import AligngoalsError
from aligngoals.judges.parsing import Verdict, parse_pairwise, parse_rating
from aligngoals.judges.rubric import Rubric
from aligngoals.judges.templates import Template, TemplateSet, default_templates
from aligngoals.models.base import ChatMessage, GenerationRequest, GenerationSettings

ProgressFn = Callable[[int], None]

TRUNCATION_MARK = "\n[... truncated by aligngoals to fit the judge's context ...]"
MIN_FIELD_CHARS = 200


def default_judge_settings(max_tokens: int = 256, seed: int = 0) -> GenerationSettings:
    """Greedy decoding: a judge should give the same verdict every time it is asked."""
    return GenerationSettings(max_tokens=max_tokens, temperature=0.0, seed=seed)


@dataclass(frozen=True)
class PairInput:
    """Two answers to one question; ``answer_1`` / ``answer_2`` name them independently of display order."""

    question: str
    answer_1: str
    answer_2: str
    reference: Optional[str] = None


@dataclass(frozen=True)
class SingleInput:
    question: str
    answer: str
    reference: Optional[str] = None


@dataclass
class Judgment:
    """One call to the judge: what it was shown, what it said, what that means."""

    shown_as_a: str
    """Which answer was displayed as "A": ``"1"`` or ``"2"`` (pairwise), ``"-"`` (single)."""
    raw: str
    verdict: Verdict
    winner: Optional[str] = None
    """Pairwise: the verdict mapped back to the inputs, ``"1"``, ``"2"`` or ``"tie"``."""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["verdict"] = self.verdict.to_dict()
        return d


@dataclass
class PairResult:
    """Both orders of one pair and what they add up to.

    ``status``: ``consistent`` (both orders agree), ``inconsistent`` (they
    disagree; outcome tie), ``parse_failure`` (an order gave no usable verdict;
    no outcome), ``identical`` (same text, a tie without asking the judge),
    ``too_long`` (the prompt does not fit the judge even after truncation).
    ``outcome`` is the score of answer 1 (1, 0.5, 0) or None.
    """

    status: str
    outcome: Optional[float]
    judgments: list[Judgment] = field(default_factory=list)
    flip: bool = False
    truncated: bool = False

    def to_dict(self) -> dict:
        return {"status": self.status, "outcome": self.outcome, "flip": self.flip, "truncated": self.truncated,
                "judgments": [j.to_dict() for j in self.judgments]}


@dataclass
class SingleResult:
    status: str
    """``ok``, ``parse_failure`` or ``too_long``."""
    rating: Optional[float]
    judgment: Optional[Judgment] = None
    truncated: bool = False

    def to_dict(self) -> dict:
        return {"status": self.status, "rating": self.rating, "truncated": self.truncated,
                "judgment": None if self.judgment is None else self.judgment.to_dict()}


class _JudgeBase:
    mode = "base"

    def __init__(
        self,
        model: Any,
        *,
        templates: Optional[TemplateSet] = None,
        rubric: Optional[Rubric] = None,
        settings: Optional[GenerationSettings] = None,
    ) -> None:
        self.model = model
        self.templates = templates or default_templates()
        self.rubric = rubric or Rubric.default()
        self.settings = settings or default_judge_settings()
        if self.rubric.principle_ids:
            for kind in (self.mode, f"{self.mode}_reference"):
                t = self.templates.get(kind)
                if not t.uses_rubric():
                    raise AligngoalsError(
                        f"The {kind} judge template ({t.source}) has no {{rubric}} placeholder, so the goal's "
                        "principles would never reach the judge.",
                        hint="Use the default templates with --goal, or add {rubric} to your template.",
                    )

    # --- prompt construction ----------------------------------------------------------------
    def _context_budget(self) -> Optional[int]:
        n_ctx = self.model.context_length
        if not isinstance(n_ctx, int):
            return None
        return n_ctx - self.settings.max_tokens

    def _count_tokens(self, request: GenerationRequest) -> Optional[int]:
        return self.model.count_prompt_tokens(request)  # None for served models: the server enforces its limit

    def _request(self, template: Template, values: dict[str, str]) -> GenerationRequest:
        system, user = template.render(values)
        msgs = ([ChatMessage("system", system)] if system.strip() else []) + [ChatMessage("user", user)]
        prefix = self._prefix(template)
        if prefix:
            # The reply prefix goes after the rendered chat template, as the start of the judge's turn.
            prompt = self.model.apply_chat_template(msgs, add_generation_prompt=True) + prefix
            return GenerationRequest(prompt=prompt, settings=self.settings)
        return GenerationRequest(messages=msgs, settings=self.settings)

    def _prefix(self, template: Template) -> str:
        """The template's reply prefix when this backend renders chat templates locally, else ``""``."""
        return template.reply_prefix if self.model.renders_chat_locally else ""

    def _fit(self, template: Template, values: dict[str, str], fields: Sequence[str]
             ) -> tuple[Optional[dict[str, str]], bool]:
        """Shorten the long fields until the prompt leaves room for the answer; None when impossible.

        Why: a prompt longer than the judge's context would make the backend refuse
        the whole batch. Long answers are cut with a visible mark instead, and the
        result is flagged as truncated.
        """
        budget = self._context_budget()
        if budget is None:
            return values, False
        vals = dict(values)
        truncated = False
        for _ in range(8):
            n = self._count_tokens(self._request(template, vals))
            if n is None or n <= budget:
                return vals, truncated
            longest = max(len(vals[f]) for f in fields if vals.get(f) is not None)
            if longest <= MIN_FIELD_CHARS:
                return None, truncated
            cap = max(MIN_FIELD_CHARS, int(longest * budget / n * 0.9))
            for f in fields:
                v = vals.get(f)
                if v is not None and len(v) > cap:
                    vals[f] = v[:cap] + TRUNCATION_MARK
                    truncated = True
        return None, truncated

    def _values(self, question: str, reference: Optional[str]) -> dict[str, str]:
        vals = {"question": question, "rubric": self.rubric.text}
        if reference is not None:
            vals["reference"] = reference
        return vals


class PairwiseJudge(_JudgeBase):
    """Compare two answers, in both orders (see the module docstring for how orders combine)."""

    mode = "pairwise"

    def requests(self, pair: PairInput) -> tuple[Optional[tuple[GenerationRequest, GenerationRequest]], bool]:
        """``((order 1-2, order 2-1), truncated)``; None instead of the requests when the prompt cannot fit."""
        template = self._template(pair)
        vals = self._values(pair.question, pair.reference)
        vals.update(answer_a=pair.answer_1, answer_b=pair.answer_2)
        fitted, truncated = self._fit(template, vals, ["answer_a", "answer_b", "reference"])
        if fitted is None:
            return None, truncated
        swapped = dict(fitted, answer_a=fitted["answer_b"], answer_b=fitted["answer_a"])
        return (self._request(template, fitted), self._request(template, swapped)), truncated

    def _template(self, pair: PairInput) -> Template:
        return self.templates.for_item("pairwise", pair.reference is not None)

    def judge(self, pairs: Sequence[PairInput], progress: Optional[ProgressFn] = None) -> list[PairResult]:
        results: list[Optional[PairResult]] = [None] * len(pairs)
        planned: list[tuple[int, tuple[GenerationRequest, GenerationRequest], bool]] = []
        for i, pair in enumerate(pairs):
            if pair.answer_1.strip() == pair.answer_2.strip():
                results[i] = PairResult("identical", 0.5)
                continue
            reqs, truncated = self.requests(pair)
            if reqs is None:
                results[i] = PairResult("too_long", None, truncated=truncated)
                continue
            planned.append((i, reqs, truncated))
        flat = [r for _, reqs, _ in planned for r in reqs]
        texts = self.model.generate(flat, progress=progress) if flat else []
        ids = self.rubric.principle_ids
        for k, (i, _, truncated) in enumerate(planned):
            prefix = self._prefix(self._template(pairs[i]))
            raw_12, raw_21 = prefix + texts[2 * k], prefix + texts[2 * k + 1]
            v12, v21 = parse_pairwise(raw_12, ids), parse_pairwise(raw_21, ids)
            j12 = Judgment("1", raw_12, v12, {"A": "1", "B": "2", "tie": "tie"}.get(v12.label or ""))
            j21 = Judgment("2", raw_21, v21, {"A": "2", "B": "1", "tie": "tie"}.get(v21.label or ""))
            results[i] = combine_orders(j12, j21, truncated)
        return [r for r in results if r is not None]


def combine_orders(first: Judgment, second: Judgment, truncated: bool = False) -> PairResult:
    """Combine the two orders of one pair (MT-Bench's rule: agree or it is a tie)."""
    judgments = [first, second]
    if first.winner is None or second.winner is None:
        return PairResult("parse_failure", None, judgments, truncated=truncated)
    if first.winner == second.winner:
        outcome = {"1": 1.0, "2": 0.0, "tie": 0.5}[first.winner]
        return PairResult("consistent", outcome, judgments, truncated=truncated)
    # Each order chose the answer shown in the same position: the verdict followed the position.
    flip = {first.winner, second.winner} == {"1", "2"}
    return PairResult("inconsistent", 0.5, judgments, flip=flip, truncated=truncated)


class SingleJudge(_JudgeBase):
    """Grade one answer on a 1-10 scale (reference-guided when the item has a reference)."""

    mode = "single"

    def request(self, item: SingleInput) -> tuple[Optional[GenerationRequest], bool]:
        template = self.templates.for_item("single", item.reference is not None)
        vals = self._values(item.question, item.reference)
        vals["answer"] = item.answer
        fitted, truncated = self._fit(template, vals, ["answer", "reference"])
        return (None if fitted is None else self._request(template, fitted)), truncated

    def grade(self, items: Sequence[SingleInput], progress: Optional[ProgressFn] = None) -> list[SingleResult]:
        results: list[Optional[SingleResult]] = [None] * len(items)
        planned: list[tuple[int, GenerationRequest, bool]] = []
        for i, item in enumerate(items):
            req, truncated = self.request(item)
            if req is None:
                results[i] = SingleResult("too_long", None, truncated=truncated)
            else:
                planned.append((i, req, truncated))
        texts = self.model.generate([r for _, r, _ in planned], progress=progress) if planned else []
        for (i, _, truncated), text in zip(planned, texts):
            raw = self._prefix(self.templates.for_item("single", items[i].reference is not None)) + text
            v = parse_rating(raw, self.rubric.principle_ids)
            results[i] = SingleResult("ok" if v.ok else "parse_failure", v.rating, Judgment("-", raw, v), truncated)
        return [r for r in results if r is not None]
