"""SELF-ALIGN style principle-driven answers (Sun et al. 2023), with principle engraving.

The model answers with the goal's principles (in priority order) in its system
prompt; the SFT record keeps only the request and the answer, so fine-tuning on
it engraves the principles into a model that no longer needs the long prompt.
"""

from __future__ import annotations

from aligngoals.data.records import InstructionExample
from aligngoals.evaluate.cached import CachedModel
from aligngoals.models.base import ChatMessage, GenerationRequest, GenerationSettings
from aligngoals.synth.common import ProgressFn, SynthResult


def principles_prompt(goal) -> str:
    lines = [f"You are an assistant aligned to the goal '{goal.name}'. Follow these principles; "
             "when two conflict, the earlier one wins:"]
    for n, p in enumerate(goal.principles_in_priority_order(), 1):
        lines.append(f"{n}. [{p.id}] {p.statement}")
    return "\n".join(lines)


def self_align(
    model: CachedModel,
    goal,
    prompts: list[str],
    *,
    max_tokens: int = 160,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> SynthResult:
    system = principles_prompt(goal)
    settings = GenerationSettings(max_tokens=max_tokens, seed=seed)
    reqs = [GenerationRequest(messages=[ChatMessage("system", system), ChatMessage("user", p)], settings=settings) for p in prompts]
    answers = model.generate(reqs, progress=progress)
    result = SynthResult()
    for i, (p, a) in enumerate(zip(prompts, answers)):
        result.traces.append({"prompt": p, "system": system, "answer": a})
        if a.strip():
            result.sft.append(InstructionExample(id=f"selfalign-{i}", instruction=p, output=a.strip(),
                                                 meta={"method": "self_align", "goal": goal.name}))
    result.stats = {"prompts": len(prompts), "kept": len(result.sft), "empty": len(prompts) - len(result.sft)}
    return result
