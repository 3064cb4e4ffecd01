"""AI feedback (RLAIF): a feedback model compares two sampled answers against a principle.

Following Constitutional AI's feedback stage, the preference is read from the
feedback model's probabilities of the option labels, not from parsed text: the
log-likelihoods of " (A)" and " (B)" after the comparison prompt. Each pair is
asked in both orders to cancel position bias; a pair whose preference flips with
the order is dropped and counted, never silently kept.

A feedback model that cannot score its own chat-rendered prompt (a served model: the
server renders the template) answers the comparison in words instead; "(A)" or "(B)"
counts as probability 1 or 0, anything else as 0.5 (so the pair is dropped as weak).
"""

from __future__ import annotations

import math
import random
import re

from aligngoals.data.records import PreferencePair
from aligngoals.errors import AligngoalsError
from aligngoals.evaluate.cached import CachedModel
from aligngoals.models.base import ChatMessage, GenerationRequest, GenerationSettings, LoglikelihoodRequest
from aligngoals.synth.common import ProgressFn, SynthResult

COMPARE_TEMPLATE = (
    "Consider this request: {prompt}\n\nPrinciple: {statement}\n\n"
    "Which reply follows the principle better?\n(A) {a}\n(B) {b}\n\nAnswer with (A) or (B)."
)


def _p_first(model: CachedModel, context: str) -> float:
    la, lb = model.loglikelihood([LoglikelihoodRequest(context, " (A)"), LoglikelihoodRequest(context, " (B)")])
    m = max(la.logprob, lb.logprob)
    ea, eb = math.exp(la.logprob - m), math.exp(lb.logprob - m)
    return ea / (ea + eb)


def _p_first_generated(model: CachedModel, message: str, seed: int) -> float:
    text = model.generate([GenerationRequest(messages=[ChatMessage("user", message)],
                                             settings=GenerationSettings(max_tokens=8, seed=seed))])[0]
    m = re.search(r"\(?\b([AB])\b\)?", text)
    return 0.5 if m is None else (1.0 if m.group(1) == "A" else 0.0)


def ai_feedback_pairs(
    policy: CachedModel,
    feedback: CachedModel,
    goal,
    prompts: list[str],
    *,
    temperature: float = 0.8,
    max_tokens: int = 128,
    margin: float = 0.1,
    seed: int = 0,
    drop_inconsistent: bool = True,
    progress: ProgressFn | None = None,
) -> SynthResult:
    """Two sampled answers per prompt -> a preference pair labelled by both orders' averaged probability."""
    principles = goal.principles_in_priority_order()
    if not principles:
        raise AligngoalsError(f"Goal {goal.name} has no principles to give feedback against.")
    if not 0 <= margin < 0.5:
        raise AligngoalsError(f"margin must be in [0, 0.5), got {margin}.")
    rng = random.Random(seed)
    weights = [1.0 / (i + 1) for i in range(len(principles))]
    reqs = []
    for i, p in enumerate(prompts):
        for k in range(2):
            reqs.append(GenerationRequest(messages=[ChatMessage("user", p)],
                                          settings=GenerationSettings(max_tokens=max_tokens, temperature=temperature,
                                                                      seed=seed * 1000003 + i * 2 + k)))
    samples = policy.generate(reqs)
    scores_locally = feedback.renders_chat_locally and feedback.can_score
    if progress:
        progress(len(prompts))
    result = SynthResult()
    flipped = identical = 0
    for i, p in enumerate(prompts):
        a, b = samples[2 * i].strip(), samples[2 * i + 1].strip()
        principle = rng.choices(principles, weights=weights)[0]
        trace = {"prompt": p, "a": a, "b": b, "principle": principle.id}
        if not a or not b or a == b:
            identical += 1
            trace["outcome"] = "identical"
            result.traces.append(trace)
            continue
        msg_ab = COMPARE_TEMPLATE.format(prompt=p, statement=principle.statement, a=a, b=b)
        msg_ba = COMPARE_TEMPLATE.format(prompt=p, statement=principle.statement, a=b, b=a)
        if scores_locally:
            render = feedback.apply_chat_template
            p_a_first = _p_first(feedback, render([ChatMessage("user", msg_ab)]))          # P(a preferred), a shown first
            p_a_second = 1.0 - _p_first(feedback, render([ChatMessage("user", msg_ba)]))   # P(a preferred), a shown second
        else:
            p_a_first = _p_first_generated(feedback, msg_ab, seed)
            p_a_second = 1.0 - _p_first_generated(feedback, msg_ba, seed)
        trace.update(p_a_shown_first=p_a_first, p_a_shown_second=p_a_second)
        prob = (p_a_first + p_a_second) / 2
        inconsistent = (p_a_first - 0.5) * (p_a_second - 0.5) <= 0 or min(abs(p_a_first - 0.5), abs(p_a_second - 0.5)) < margin
        if (inconsistent and drop_inconsistent) or prob == 0.5:
            flipped += 1
            trace["outcome"] = "inconsistent"
        else:
            chosen, rejected = (a, b) if prob > 0.5 else (b, a)
            trace["outcome"] = "pair"
            result.pairs.append(PreferencePair(
                id=f"aif-{i}", prompt=p, chosen=chosen, rejected=rejected, margin=abs(prob - 0.5) * 2,
                meta={"method": "ai_feedback", "goal": goal.name, "principles": [principle.id], "p_chosen": max(prob, 1 - prob),
                      "order_consistent": not inconsistent},
            ))
        result.traces.append(trace)
        if progress:
            progress(1)
    result.stats = {"prompts": len(prompts), "pairs": len(result.pairs), "inconsistent_or_weak": flipped,
                    "identical_samples": identical}
    return result
