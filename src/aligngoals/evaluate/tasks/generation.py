"""Free generation scored against references.

The answer is cut out of the generated text by the task's extraction rule, then
compared with the references by exact match, token F1, ROUGE-L and corpus BLEU,
or (TruthfulQA) by similarity to true versus false references. Every generation
is stored with its prompt and references so that LLM judges can read it later;
items without a reference are kept for judges and left out of reference metrics.
"""

from __future__ import annotations

from typing import Optional

from aligngoals.errors import DataError
from aligngoals.evaluate import metrics as M
from aligngoals.evaluate.tasks.base import BuildContext, Request, Task, request_input
from aligngoals.evaluate.tasks.extract import extract, first_number
from aligngoals.evaluate.tasks.prompting import get_field
from aligngoals.models.base import GenerationRequest

REFERENCE_METRICS = ("exact_match", "token_f1", "rougeL", "bleu")
TRUTHFULQA_METRICS = ("bleu_max", "bleu_diff", "bleu_acc", "rougeL_max", "rougeL_diff", "rougeL_acc")


def _as_list(v, where: str) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if isinstance(v, (list, tuple)):
        return [str(x) for x in v if x is not None and str(x).strip()]
    raise DataError(f"{where}: expected text or a list of texts, got {type(v).__name__}.")


class GenerationTask(Task):
    type = "generate"

    def requests(self, doc, exemplars, ctx: BuildContext) -> list[Request]:
        text, msgs = self.model_input(doc, exemplars, ctx)
        settings = self.generation_settings(ctx.seed)
        return [GenerationRequest(prompt=text, settings=settings) if msgs is None
                else GenerationRequest(messages=msgs, settings=settings)]

    def reference_list(self, doc: dict) -> list[str]:
        """Acceptable answers of a doc (hook): the ``references`` field, else the ``target`` template."""
        if self.spec.references:
            return _as_list(get_field(doc, self.spec.references, None),
                            f"Task {self.name}, item {doc.get('id')}, field '{self.spec.references}'")
        if self.spec.target is not None:
            t = self.render(self.spec.target, doc, what="target").strip()
            return [t] if t else []
        return []

    def score(self, doc, requests, results, ctx) -> dict:
        output: str = results[0]
        rule = self.spec.extract
        got = extract(output, rule)
        pred: Optional[str] = None if got is None else str(got)
        metrics = self.spec.metrics
        scores: dict[str, Optional[float]] = {}
        stats: dict[str, object] = {}
        record: dict = {"prompt": self.user_prompt(doc), "model_input": request_input(requests[0]), "output": output}
        if rule.type != "none":
            record["extracted"] = pred
        if "parse_rate" in metrics:
            scores["parse_rate"] = float(pred is not None)

        if self.spec.true_references or self.spec.false_references:
            true_refs = _as_list(get_field(doc, self.spec.true_references or "", None), f"Task {self.name}, true references")
            false_refs = _as_list(get_field(doc, self.spec.false_references or "", None), f"Task {self.name}, false references")
            record["reference"] = {"true": true_refs, "false": false_refs}
            if true_refs and false_refs:
                sims = M.truthfulqa_similarity(pred if pred is not None else "", true_refs, false_refs)
                for m in TRUTHFULQA_METRICS:
                    if m in metrics:
                        scores[m] = sims[m]
        refs = self.reference_list(doc) if (self.spec.references or self.spec.target) else []
        if refs:
            record.setdefault("reference", refs if len(refs) > 1 else refs[0])
            hyp = pred if pred is not None else ""
            cmp_refs = refs
            if rule.type == "first_number":
                cmp_refs = [n for n in (first_number(r) for r in refs) if n is not None] or refs
            if "exact_match" in metrics:
                scores["exact_match"] = M.exact_match(hyp, cmp_refs)
            if "token_f1" in metrics:
                scores["token_f1"] = M.token_f1(hyp, cmp_refs)
            if "rougeL" in metrics:
                scores["rougeL"] = M.rouge_l(hyp, cmp_refs)
            if "bleu" in metrics:
                stats["bleu"] = M.bleu_stats(hyp, cmp_refs)
        else:
            record.setdefault("reference", None)
        record["scores"] = scores
        if stats:
            record["stats"] = stats
        return record
