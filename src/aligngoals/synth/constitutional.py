"""Constitutional critique-and-revise (Bai et al. 2022, the supervised stage).

For each prompt the model answers, then for a few rounds picks a principle of the
goal, critiques its answer against that principle and revises it. The final
revision becomes an SFT target and, paired with the first answer, a preference
pair (revised preferred). Every trace records which principle was applied.
"""

from __future__ import annotations

import random

from aligngoals.data.records import InstructionExample, PreferencePair
from aligngoals.errors import AligngoalsError
from aligngoals.evaluate.cached import CachedModel
from aligngoals.models.base import ChatMessage, GenerationRequest, GenerationSettings
from aligngoals.synth.common import ProgressFn, SynthResult

CRITIQUE_TEMPLATE = (
    "Here is a request and a reply.\n\nRequest: {prompt}\n\nReply: {answer}\n\n"
    "Principle: {statement}\n\nPoint out, in one or two sentences, how the reply falls short of this principle."
)
REVISION_TEMPLATE = (
    "Request: {prompt}\n\nReply: {answer}\n\nCritique: {critique}\n\n"
    "Rewrite the reply so that it follows the principle \"{statement}\" and answers the request. "
    "Give only the new reply."
)


def _pick_principles(goal, rounds: int, rng: random.Random):
    principles = goal.principles_in_priority_order()
    if not principles:
        raise AligngoalsError(f"Goal {goal.name} has no principles to critique against.",
                              hint="Use a value goal such as 'hhh' or 'constitution', or add principles to your goal file.")
    # Higher-priority principles are drawn more often (weight 1/priority rank).
    weights = [1.0 / (i + 1) for i in range(len(principles))]
    return [rng.choices(principles, weights=weights)[0] for _ in range(rounds)]


def critique_and_revise(
    model: CachedModel,
    goal,
    prompts: list[str],
    *,
    rounds: int = 1,
    max_tokens: int = 160,
    seed: int = 0,
    progress: ProgressFn | None = None,
    teacher: CachedModel | None = None,
) -> SynthResult:
    """``model`` answers; ``teacher`` (default: ``model`` itself) critiques and revises."""
    critic = teacher or model
    if rounds < 1:
        raise AligngoalsError(f"rounds must be at least 1, got {rounds}.")
    gen = GenerationSettings(max_tokens=max_tokens, seed=seed)
    rng = random.Random(seed)
    plans = [_pick_principles(goal, rounds, rng) for _ in prompts]
    answers = model.generate([GenerationRequest(messages=[ChatMessage("user", p)], settings=gen) for p in prompts])
    if progress:
        progress(len(prompts))
    current = list(answers)
    history: list[list[dict]] = [[] for _ in prompts]
    for r in range(rounds):
        crit_reqs = [
            GenerationRequest(messages=[ChatMessage("user", CRITIQUE_TEMPLATE.format(prompt=p, answer=a, statement=plan[r].statement))],
                              settings=gen)
            for p, a, plan in zip(prompts, current, plans)
        ]
        critiques = critic.generate(crit_reqs)
        rev_reqs = [
            GenerationRequest(messages=[ChatMessage("user", REVISION_TEMPLATE.format(prompt=p, answer=a, critique=c, statement=plan[r].statement))],
                              settings=gen)
            for p, a, c, plan in zip(prompts, current, critiques, plans)
        ]
        revisions = critic.generate(rev_reqs)
        for i, (c, rev) in enumerate(zip(critiques, revisions)):
            history[i].append({"principle": plans[i][r].id, "critique": c, "revision": rev})
            if rev.strip():
                current[i] = rev.strip()
        if progress:
            progress(len(prompts))
    result = SynthResult()
    for i, p in enumerate(prompts):
        used = [h["principle"] for h in history[i]]
        result.traces.append({"prompt": p, "initial": answers[i], "rounds": history[i], "final": current[i]})
        meta = {"method": "constitutional", "goal": goal.name, "principles": used}
        result.sft.append(InstructionExample(id=f"cai-{i}", instruction=p, output=current[i], meta=meta))
        if current[i].strip() and current[i].strip() != answers[i].strip():
            result.pairs.append(PreferencePair(id=f"cai-{i}", prompt=p, chosen=current[i], rejected=answers[i], meta=meta))
    result.stats = {"prompts": len(prompts), "rounds": rounds, "pairs": len(result.pairs),
                    "unchanged": len(prompts) - len(result.pairs)}
    return result
