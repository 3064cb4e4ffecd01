"""Log-likelihood of a pair: is the chosen continuation more likely than the rejected one?

This is how a comparison ``(prompt, chosen, rejected)`` becomes a measurement
without a reward model: HH-RLHF preference accuracy, and CrowS-Pairs with an empty
prompt and the two sentences as the pair. Both continuations share the prompt, so
the backends compute it once.
"""

from __future__ import annotations

from aligngoals.evaluate import metrics as M
from aligngoals.evaluate.tasks.base import BuildContext, Request, Task
from aligngoals.models.base import LoglikelihoodRequest


class PairTask(Task):
    type = "pair"

    def continuations(self, doc: dict) -> tuple[str, str]:
        return (self.render(self.spec.chosen, doc, what="chosen"), self.render(self.spec.rejected, doc, what="rejected"))

    def exemplar_answer(self, doc: dict) -> str:
        return self.continuations(doc)[0]

    def requests(self, doc, exemplars, ctx: BuildContext) -> list[Request]:
        context = self.context_text(doc, exemplars, ctx)
        chosen, rejected = self.continuations(doc)
        return [LoglikelihoodRequest(context, chosen), LoglikelihoodRequest(context, rejected)]

    def score(self, doc, requests, results, ctx) -> dict:
        c, r = results
        metrics = self.spec.metrics
        scores: dict[str, float] = {}
        if "pref_acc" in metrics:
            scores["pref_acc"] = M.preference_acc(c.logprob, r.logprob)
        if "pref_acc_per_token" in metrics:
            scores["pref_acc_per_token"] = M.preference_acc_per_token(c.logprob, c.n_tokens, r.logprob, r.n_tokens)
        if "logprob_margin" in metrics:
            scores["logprob_margin"] = c.logprob - r.logprob
        if "pct_stereotype" in metrics:
            # The crows_pairs reader makes the less stereotyping sentence 'chosen' and the
            # more stereotyping one 'rejected'; the stereotype rate counts the latter winning.
            scores["pct_stereotype"] = M.crows_pairs_stereotype(more_lp=r.logprob, less_lp=c.logprob)
        if "likelihood_diff" in metrics:
            scores["likelihood_diff"] = abs(c.logprob - r.logprob)
        return {
            "prompt": self.user_prompt(doc),
            "chosen": requests[0].continuation,
            "rejected": requests[1].continuation,
            "logprobs": [c.logprob, r.logprob],
            "n_tokens": [c.n_tokens, r.n_tokens],
            "scores": scores,
        }
