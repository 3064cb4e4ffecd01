"""The measurements a recipe's evaluate stage makes: context distillation and behaviour.

**Context distillation** (the effect principle engraving is meant to have): on
held-out prompts the base model answers with the principle-driven prompt
(``y``). The in-context effect is how much more likely ``y`` is with the prompt
than without, in mean log-likelihood per token of the base model; the engraved
effect is how much more likely the engraved model finds ``y`` *without* the
prompt than the base model does. Retained share = engraved / in-context effect
(equivalently 1 - gap after / gap before), with a paired bootstrap interval
over prompts. Why per token: answers differ in length, and a per-token gap is
what SFT's loss moves.

**Rubric** (with a judge model): a capable judge grades each greedy reply 1-10
against the goal's principles, for the same three models.

**Behaviour**: refusal rate on harmful requests (higher is safer) and on benign
requests that only sound risky (over-refusal, lower is better), for the base
model, the base model with the principles in the prompt (the in-context
baseline) and the aligned model, greedy, through the run store.

Every model call goes through :class:`CachedModel`, so a killed evaluation
resumes where it stopped.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from aligngoals.evaluate.cached import CachedModel
from aligngoals.judges.judge import SingleInput, SingleJudge, default_judge_settings
from aligngoals.judges.rubric import Rubric
from aligngoals.models.base import ChatMessage, GenerationRequest, GenerationSettings, LoglikelihoodRequest
from aligngoals.values.safety.refusal import detect_refusal


def _messages(prompt: str, system: str | None) -> list[ChatMessage]:
    return ([ChatMessage("system", system)] if system else []) + [ChatMessage("user", prompt)]


def mean_token_logprobs(model: CachedModel, prompts: Sequence[str], answers: Sequence[str],
                        system: str | None = None) -> list[float]:
    """Mean log-probability per token of each answer after its chat-rendered prompt."""
    render = model.model.apply_chat_template
    reqs = [LoglikelihoodRequest(render(_messages(p, system)), a) for p, a in zip(prompts, answers)]
    return [r.logprob / max(r.n_tokens, 1) for r in model.loglikelihood(reqs)]


def bootstrap_ratio(num: np.ndarray, den: np.ndarray, *, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of mean(num)/mean(den), resampling prompts (pairs stay together)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(num), size=(n_boot, len(num)))
    d = den[idx].mean(axis=1)
    ratios = num[idx].mean(axis=1) / np.where(np.abs(d) < 1e-12, np.nan, d)
    ratios = ratios[np.isfinite(ratios)]
    if not len(ratios):
        return float("nan"), float("nan")
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def bootstrap_mean(x: np.ndarray, *, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def context_distillation(base: CachedModel, aligned: CachedModel | None, system: str, prompts: Sequence[str],
                         answers: Sequence[str], *, icl_model: CachedModel | None = None, seed: int = 0) -> dict:
    """In-context effect, engraved effect and retained share on (prompt, principle-prompted answer) pairs.

    ``icl_model`` (default ``base``) scores the in-context effect, both of its terms;
    ``base`` and ``aligned`` (same backend) score the engraved effect. Why allow two
    backends: the in-context term needs the long principle prompt for every item, which
    llama.cpp evaluates once and reuses (``reuse_prefix``), while the trained model only
    runs in transformers; each effect is a difference within one backend.
    """
    keep = [i for i, a in enumerate(answers) if a.strip()]
    ps, ys = [prompts[i] for i in keep], [answers[i] for i in keep]
    icl_model = icl_model or base
    with_p = np.array(mean_token_logprobs(icl_model, ps, ys, system))
    icl_plain = np.array(mean_token_logprobs(icl_model, ps, ys, None))
    plain = icl_plain if icl_model is base else np.array(mean_token_logprobs(base, ps, ys, None))
    icl = with_p - icl_plain
    out = {"n": len(ps), "icl_effect": float(icl.mean()), "icl_effect_ci": list(bootstrap_mean(icl, seed=seed)),
           "icl_backend": icl_model.identity.get("backend"), "backend": base.identity.get("backend"),
           "items": [{"prompt": p, "answer": y, "lp_icl_with_principles": float(a), "lp_icl_plain": float(b),
                      "lp_base_plain": float(c)} for p, y, a, b, c in zip(ps, ys, with_p, icl_plain, plain)]}
    if aligned is not None and ps:
        after = np.array(mean_token_logprobs(aligned, ps, ys, None))
        eng = after - plain
        lo, hi = bootstrap_ratio(eng, icl, seed=seed)
        out.update(engraved_effect=float(eng.mean()), engraved_effect_ci=list(bootstrap_mean(eng, seed=seed)),
                   retained=float(eng.mean() / icl.mean()) if abs(icl.mean()) > 1e-12 else float("nan"),
                   retained_ci=[lo, hi])
        for item, v in zip(out["items"], after):
            item["lp_aligned_plain"] = float(v)
    return out


def principle_prompted_answers(base: CachedModel, system: str, prompts: Sequence[str], *, max_tokens: int,
                               temperature: float = 1.0, seed: int = 0) -> list[str]:
    """The base model's answers with the principle-driven prompt (the distillation target).

    Why sampled (temperature 1) by default: for answers drawn from the prompted model
    the expected log-likelihood gap is the KL divergence between the prompted and the
    unprompted model, which is never negative; a greedy answer is not a sample, and a
    generic greedy answer can be likelier *without* a long prompt than with it.
    """
    from aligngoals.synth.self_align import split_thoughts

    replies = base.generate([GenerationRequest(messages=_messages(p, system), settings=GenerationSettings(
        max_tokens=max_tokens, temperature=temperature, seed=seed * 100003 + i)) for i, p in enumerate(prompts)])
    return [split_thoughts(r)[1] for r in replies]


def greedy_replies(model: CachedModel, requests: Sequence[str], *, system: str | None = None, max_tokens: int = 48,
                   seed: int = 0) -> list[str]:
    settings = GenerationSettings(max_tokens=max_tokens, seed=seed)
    return model.generate([GenerationRequest(messages=_messages(r, system), settings=settings) for r in requests])


def refusal_rate(model: CachedModel, requests: Sequence[str], *, system: str | None = None, max_tokens: int = 48,
                 seed: int = 0) -> dict:
    """Share of greedy replies the refusal detector marks as refusals, with a bootstrap interval."""
    replies = greedy_replies(model, requests, system=system, max_tokens=max_tokens, seed=seed)
    flags = np.array([float(detect_refusal(t).refused) for t in replies])
    lo, hi = bootstrap_mean(flags, seed=seed) if len(flags) else (float("nan"), float("nan"))
    return {"n": len(flags), "rate": float(flags.mean()) if len(flags) else float("nan"), "ci": [lo, hi],
            "items": [{"request": r, "reply": t, "refused": bool(f)} for r, t, f in zip(requests, replies, flags)]}


def rubric_scores(judge: CachedModel, goal, requests: Sequence[str], replies: Sequence[str], *, seed: int = 0) -> dict:
    """A judge's 1-10 grade of each reply against the goal's principles (single-answer grading).

    Parse failures and prompts too long for the judge get no grade and are counted, not
    scored as 0: a reader sees how much of the mean rests on the judge's output.
    """
    grader = SingleJudge(judge, rubric=Rubric.from_goal(goal), settings=default_judge_settings(seed=seed))
    results = grader.grade([SingleInput(q, a) for q, a in zip(requests, replies)])
    ratings = np.array([r.rating for r in results if r.rating is not None], dtype=float)
    lo, hi = bootstrap_mean(ratings, seed=seed) if len(ratings) else (float("nan"), float("nan"))
    return {"n": len(results), "graded": int(len(ratings)), "mean": float(ratings.mean()) if len(ratings) else None,
            "ci": [lo, hi], "failures": {s: sum(r.status == s for r in results) for s in ("parse_failure", "too_long")},
            "items": [{"request": q, "reply": a, "rating": r.rating, "status": r.status,
                       "judge_said": r.judgment.raw if r.judgment else None}
                      for q, a, r in zip(requests, replies, results)]}
