"""Constitutional critique-and-revise (Bai et al. 2022, the supervised stage, SL-CAI).

For each prompt the policy answers, then for a few rounds a principle of the
goal is drawn, the critic (the policy itself, or a ``--teacher``) critiques the
answer against that principle and revises it. As in the paper, the critique and
revision prompts open with few-shot exemplars of a request, a reply, a critique
and a revision, so that even a small model sees what a critique looks like. The
final revision becomes an SFT target (SL-CAI: fine-tune on revisions) and,
paired with the first answer, a preference pair (revised preferred). Every trace
records which principle was applied. The RL-CAI stage is
:func:`aligngoals.synth.ai_feedback.ai_feedback_pairs` on the SL-CAI model.
"""

from __future__ import annotations

import random

from aligngoals.data.records import InstructionExample, PreferencePair
from aligngoals.errors import AligngoalsError
from aligngoals.evaluate.cached import CachedModel
from aligngoals.models.base import ChatMessage, GenerationRequest, GenerationSettings
from aligngoals.synth.common import ProgressFn, SynthResult

#: Few-shot critique/revision exemplars, written for aligngoals (the paper's are not reproduced).
EXEMPLARS: tuple[dict, ...] = (
    {"prompt": "How can I get back at my coworker who embarrassed me?",
     "answer": "Spread a rumour about them so they know how it feels.",
     "statement": "Do not help anyone cause serious harm to people.",
     "critique": "The reply encourages spreading a rumour, which harms the coworker and could get the user in trouble.",
     "revision": "It hurts to be embarrassed at work. Rather than getting back at them, you could tell them calmly how "
                 "it affected you, or raise it with your manager if it keeps happening."},
    {"prompt": "What is the capital of Australia?",
     "answer": "Sydney, the biggest city in Australia.",
     "statement": "Say only what you believe to be true.",
     "critique": "The reply is false: Sydney is the largest city, but the capital is Canberra.",
     "revision": "The capital of Australia is Canberra. Sydney is its largest city, which is a common source of confusion."},
    {"prompt": "Can you help me write a cover letter for a library assistant job?",
     "answer": "No, write it yourself.",
     "statement": "Do what the user actually needs, as well and as directly as you can.",
     "critique": "The reply refuses a harmless request and gives the user nothing useful.",
     "revision": "Of course. Start with the job you are applying for and why the library appeals to you, then give two "
                 "examples of organising, helping people or working with records, and close by offering an interview."},
)


def exemplar_block(n: int, *, revision: bool) -> str:
    """``n`` worked examples to put before the critique (or revision) request."""
    parts = []
    for ex in EXEMPLARS[:n]:
        text = (f"Request: {ex['prompt']}\nReply: {ex['answer']}\nPrinciple: {ex['statement']}\n"
                f"Critique: {ex['critique']}")
        if revision:
            text += f"\nRevision: {ex['revision']}"
        parts.append(text)
    return ("Examples:\n\n" + "\n\n".join(parts) + "\n\nNow the real case.\n\n") if parts else ""


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
    critic: CachedModel | None = None,
    exemplars: int = 2,
    rounds: int = 1,
    max_tokens: int = 160,
    seed: int = 0,
    progress: ProgressFn | None = None,
    teacher: CachedModel | None = None,
) -> SynthResult:
    """``model`` answers; ``critic`` (or its alias ``teacher``; default: ``model`` itself) critiques and revises."""
    if rounds < 1:
        raise AligngoalsError(f"rounds must be at least 1, got {rounds}.")
    if not 0 <= exemplars <= len(EXEMPLARS):
        raise AligngoalsError(f"exemplars must be between 0 and {len(EXEMPLARS)}, got {exemplars}.")
    critic = critic or teacher or model
    shots_c, shots_r = exemplar_block(exemplars, revision=False), exemplar_block(exemplars, revision=True)
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
            GenerationRequest(messages=[ChatMessage("user", shots_c + CRITIQUE_TEMPLATE.format(prompt=p, answer=a, statement=plan[r].statement))],
                              settings=gen)
            for p, a, plan in zip(prompts, current, plans)
        ]
        if r == 0:
            crit_prompts = [req.messages[0].content for req in crit_reqs]
        critiques = critic.generate(crit_reqs)
        rev_reqs = [
            GenerationRequest(messages=[ChatMessage("user", shots_r + REVISION_TEMPLATE.format(prompt=p, answer=a, critique=c, statement=plan[r].statement))],
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
        result.traces.append({"prompt": p, "initial": answers[i], "rounds": history[i], "final": current[i],
                              "critique_prompt": crit_prompts[i]})
        meta = {"method": "constitutional", "goal": goal.name, "principles": used}
        if current[i].strip():  # a blank answer (no revision either) is nothing to train on
            result.sft.append(InstructionExample(id=f"cai-{i}", instruction=p, output=current[i].strip(), meta=meta))
        if current[i].strip() and current[i].strip() != answers[i].strip():
            result.pairs.append(PreferencePair(id=f"cai-{i}", prompt=p, chosen=current[i], rejected=answers[i], meta=meta))
    result.stats = {"prompts": len(prompts), "rounds": rounds, "exemplars": exemplars, "pairs": len(result.pairs),
                    "unchanged": len(prompts) - len(result.pairs), "blank": len(prompts) - len(result.sft)}
    return result
