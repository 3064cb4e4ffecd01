"""Self-Instruct (Wang et al. 2023): bootstrap new instructions from seed tasks.

Each step shows the model a few instructions sampled from the pool (seed tasks
plus accepted new ones) and lets it write the next one. A candidate is kept only
if its ROUGE-L similarity to every instruction in the pool is below 0.7 (the
paper's filter), it has 3 to 150 words and it does not ask for images or graphs,
which a text model cannot handle. Accepted instructions are then answered.
"""

from __future__ import annotations

import random
import re

from rouge_score import rouge_scorer

from aligngoals.data.records import InstructionExample
from aligngoals.errors import AligngoalsError
from aligngoals.evaluate.cached import CachedModel
from aligngoals.models.base import ChatMessage, GenerationRequest, GenerationSettings
from aligngoals.synth.common import ProgressFn, SynthResult

BLOCKED = re.compile(r"\b(image|images|picture|pictures|graph|graphs|photo|photos|draw|plot)\b", re.I)
SIMILARITY_LIMIT = 0.7


def _prompt(examples: list[str]) -> str:
    body = "".join(f"Task {i}: {e}\n" for i, e in enumerate(examples, 1))
    return f"Come up with a series of diverse tasks.\n{body}Task {len(examples) + 1}:"


def self_instruct(
    model: CachedModel,
    seeds: list[str],
    *,
    num: int = 10,
    examples_per_prompt: int = 3,
    max_attempts: int | None = None,
    answer: bool = True,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> SynthResult:
    if len(seeds) < examples_per_prompt:
        raise AligngoalsError(f"Self-Instruct needs at least {examples_per_prompt} seed instructions, got {len(seeds)}.")
    if num < 1:
        raise AligngoalsError(f"num must be at least 1, got {num}.")
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rng = random.Random(seed)
    pool = list(dict.fromkeys(s.strip() for s in seeds if s.strip()))
    accepted: list[str] = []
    rejected = {"similar": 0, "length": 0, "blocked": 0, "empty": 0}
    attempts = 0
    limit = max_attempts or num * 4
    while len(accepted) < num and attempts < limit:
        shown = rng.sample(pool, examples_per_prompt)
        req = GenerationRequest(prompt=_prompt(shown),
                                settings=GenerationSettings(max_tokens=64, temperature=0.7, top_p=0.95,
                                                            stop=("\nTask", "\n\n"), seed=seed * 7919 + attempts))
        text = model.generate([req])[0].strip().split("\n")[0].strip()
        attempts += 1
        if not text:
            rejected["empty"] += 1
            continue
        words = len(text.split())
        if not 3 <= words <= 150:
            rejected["length"] += 1
            continue
        if BLOCKED.search(text):
            rejected["blocked"] += 1
            continue
        if max(scorer.score(p, text)["rougeL"].fmeasure for p in pool) >= SIMILARITY_LIMIT:
            rejected["similar"] += 1
            continue
        accepted.append(text)
        pool.append(text)
        if progress:
            progress(1)
    outputs = [""] * len(accepted)
    if answer and accepted:
        outputs = model.generate([GenerationRequest(messages=[ChatMessage("user", t)],
                                                    settings=GenerationSettings(max_tokens=160, seed=seed)) for t in accepted])
    result = SynthResult()
    for i, (ins, out) in enumerate(zip(accepted, outputs)):
        result.sft.append(InstructionExample(id=f"selfinstruct-{i}", instruction=ins, output=out.strip(),
                                             meta={"method": "self_instruct"}))
        result.traces.append({"instruction": ins, "output": out})
    result.stats = {"requested": num, "accepted": len(accepted), "attempts": attempts, "rejected": rejected}
    return result
