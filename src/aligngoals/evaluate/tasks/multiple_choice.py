"""Multiple choice, two ways.

* ``multiple_choice``: score every choice as a continuation of the prompt by
  log-likelihood. All choices of an item share the prompt, so the model computes
  it once (shared-prefix reuse in the backends).
* ``mc_generate``: show the choices with letters, let the model generate, and read
  the first choice letter; what a chat user would see, and what API models without
  log-probabilities allow.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from aligngoals.data.records import MultipleChoiceItem
from aligngoals.errors import DataError
from aligngoals.evaluate import metrics as M
from aligngoals.evaluate.tasks.base import BuildContext, Request, Task, request_input
from aligngoals.evaluate.tasks.data import read_mc_jsonl  # noqa: F401  (re-exported)
from aligngoals.evaluate.tasks.extract import extract
from aligngoals.evaluate.tasks.prompting import LABELS, get_field, render
from aligngoals.evaluate.tasks.spec import Extraction, TaskSpec
from aligngoals.models.base import GenerationRequest, LoglikelihoodRequest


class _ChoiceMixin:
    """Reading choices and gold answers out of a doc, with errors that name the field."""

    spec: TaskSpec
    name: str

    def choice_list(self, doc: dict) -> list[str]:
        ch = get_field(doc, self.spec.choices, None)
        if not isinstance(ch, (list, tuple)) or len(ch) < 2:
            raise DataError(f"Task {self.name}, item {doc.get('id')}: field '{self.spec.choices}' must be a list of at "
                            f"least two choices, got {type(ch).__name__}.",
                            hint="Set 'choices:' in the task file to the field that holds the choices.")
        return [str(c) for c in ch]

    def gold(self, doc: dict) -> int:
        g = get_field(doc, self.spec.answer, None)
        n = len(self.choice_list(doc))
        if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or not 0 <= int(g) < n:
            raise DataError(f"Task {self.name}, item {doc.get('id')}: field '{self.spec.answer}' must be a choice index "
                            f"in 0..{n - 1}, got {g!r}.",
                            hint="Set 'answer:' in the task file to the field that holds the correct index.")
        return int(g)

    def golds(self, doc: dict) -> list[int]:
        if self.spec.answers:
            many = get_field(doc, self.spec.answers, None)
            if many:
                return [int(x) for x in many]
        return [self.gold(doc)]

    def fields(self, doc: dict) -> dict:  # type: ignore[override]
        f = Task.fields(self, doc)  # type: ignore[arg-type]
        choices = get_field(doc, self.spec.choices, None)
        if isinstance(choices, (list, tuple)):
            f["choices"] = list(choices)
            g = get_field(doc, self.spec.answer, None)
            if isinstance(g, (int, np.integer)) and 0 <= int(g) < len(choices):
                f["gold"] = int(g)
                f["gold_label"] = LABELS[int(g)]
                f["gold_choice"] = choices[int(g)]
        return f


class MultipleChoiceTask(_ChoiceMixin, Task):
    type = "multiple_choice"

    def continuations(self, doc: dict) -> list[str]:
        return [self.render(self.spec.choice, doc, {"choice": c, "index": i}, what="choice")
                for i, c in enumerate(self.choice_list(doc))]

    def exemplar_answer(self, doc: dict) -> str:
        return self.continuations(doc)[self.gold(doc)]

    def requests(self, doc, exemplars, ctx: BuildContext) -> list[Request]:
        context = self.context_text(doc, exemplars, ctx)
        return [LoglikelihoodRequest(context, c) for c in self.continuations(doc)]

    def score(self, doc, requests, results, ctx) -> dict:
        lps = [r.logprob for r in results]
        conts = [r.continuation for r in requests]
        gold = self.gold(doc)
        metrics = self.spec.metrics
        scores: dict[str, float] = {}
        if "acc" in metrics:
            scores["acc"] = M.mc_acc(lps, gold)
        if "acc_norm" in metrics:
            scores["acc_norm"] = M.mc_acc_norm(lps, conts, gold)
        if "mc1" in metrics:
            scores["mc1"] = M.truthfulqa_mc1(lps, gold)
        if "mc2" in metrics:
            scores["mc2"] = M.truthfulqa_mc2(lps, self.golds(doc))
        return {
            "prompt": self.user_prompt(doc),
            "answer": gold,
            "pred": int(np.argmax(lps)),
            "choices": conts,
            "logprobs": lps,
            "n_tokens": [r.n_tokens for r in results],
            "scores": scores,
        }


class GeneratedChoiceTask(_ChoiceMixin, Task):
    """Multiple choice by generated letter: the prompt lists the choices, the model names one."""

    type = "mc_generate"

    def exemplar_answer(self, doc: dict) -> str:
        if self.spec.target is not None:
            return self.render(self.spec.target, doc, what="target")
        return " " + LABELS[self.gold(doc)]

    def extraction(self) -> Extraction:
        return self.spec.extract if self.spec.extract.type != "none" else Extraction(type="first_letter")

    def requests(self, doc, exemplars, ctx: BuildContext) -> list[Request]:
        text, msgs = self.model_input(doc, exemplars, ctx)
        settings = self.generation_settings(ctx.seed)
        return [GenerationRequest(prompt=text, settings=settings) if msgs is None
                else GenerationRequest(messages=msgs, settings=settings)]

    def score(self, doc, requests, results, ctx) -> dict:
        output = results[0]
        choices = self.choice_list(doc)
        labels = LABELS[: len(choices)]
        rule = self.extraction()
        got = extract(output, rule, labels)
        pred: int | None
        if rule.type == "first_letter":
            pred = got if isinstance(got, int) else None
        else:  # a regex may return the letter or the choice text
            pred = None
            if isinstance(got, str):
                up = got.strip()
                if up.upper() in labels:
                    pred = labels.index(up.upper())
                else:
                    low = [c.strip().lower() for c in choices]
                    pred = low.index(up.lower()) if up.lower() in low else None
        gold = self.gold(doc)
        scores: dict[str, float] = {}
        if "acc" in self.spec.metrics:
            scores["acc"] = float(pred == gold)
        if "parse_rate" in self.spec.metrics:
            scores["parse_rate"] = float(pred is not None)
        return {
            "prompt": self.user_prompt(doc),
            "model_input": request_input(requests[0]),
            "output": output,
            "extracted": pred,
            "answer": gold,
            "reference": labels[gold],
            "scores": scores,
        }


# --- the foundation's API, kept for callers (benchmarks, tests) --------------------------------
def build_requests(spec: TaskSpec, item: MultipleChoiceItem) -> list[LoglikelihoodRequest]:
    """Requests of one ``MultipleChoiceItem`` under a plain (zero-shot, non-chat) multiple-choice spec."""
    fields = {**item.model_dump(), "meta": item.meta, "labels": LABELS}
    ctx = render(spec.prompt, fields, where=f"task {spec.name} prompt")
    return [
        LoglikelihoodRequest(ctx, render(spec.choice, {**fields, "choice": c, "index": i}, where=f"task {spec.name} choice"))
        for i, c in enumerate(item.choices)
    ]


def request_count(items: Sequence[MultipleChoiceItem]) -> int:
    return sum(len(it.choices) for it in items)
