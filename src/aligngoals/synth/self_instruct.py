"""Self-Instruct (Wang et al. 2023): bootstrap instructions, classify them, write instances, filter.

The paper's four steps, as implemented here:

1. **Instruction generation**: each prompt shows 8 in-context instructions, 6
   drawn from the human-written seed tasks and 2 from the model-written pool
   (all 8 from the seeds until the pool has 2), and the model continues the
   numbered list.
2. **Classification detection**: few-shot "is this a classification task with
   a finite set of output labels?", read from the log-likelihoods of " Yes" and
   " No" (not parsed text, so a small model always gives an answer).
3. **Instance generation**: input-first (write the input, then the output) for
   ordinary tasks; output-first (write a class label, then an input of that
   class) for classification tasks, which the paper found avoids instances
   skewed toward one label.
4. **Filtering**: an instruction is dropped when its ROUGE-L F to any
   instruction in the pool is >= 0.7 (instructions only, as in the paper), when
   it mentions something a text model cannot handle (keyword blocklist), when
   it is shorter than 3 or longer than 150 words, or when it starts with
   punctuation; of the ``instances`` written per task, those with an input
   already seen for that task, or with an empty output, are dropped. ``stats["removed"]`` counts every filter.

Deliberate difference: the paper prompted a base GPT-3 with plain text; here
the same plain-text prompts go to the model as raw prompts, so a chat model
sees them without its chat template.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from rouge_score import rouge_scorer

from aligngoals.data.records import InstructionExample
from aligngoals.errors import AligngoalsError
from aligngoals.evaluate.cached import CachedModel
from aligngoals.models.base import GenerationRequest, GenerationSettings, LoglikelihoodRequest
from aligngoals.synth.common import ProgressFn, SynthResult

#: The paper's keyword blocklist: tasks a language model cannot do.
BLOCKLIST = ("image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps",
             "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram")
BLOCKED = re.compile(r"\b(" + "|".join(re.escape(w) for w in BLOCKLIST) + r")\b", re.I)
SIMILARITY_LIMIT = 0.7
HUMAN_SHOTS, MACHINE_SHOTS = 6, 2
MIN_WORDS, MAX_WORDS = 3, 150

CLASSIFY_SHOTS = (
    ("Given a movie review, tell whether it is positive or negative.", "Yes"),
    ("Write a short story about a lighthouse keeper.", "No"),
    ("Is the following email spam? Answer yes or no.", "Yes"),
    ("Explain how vaccines train the immune system.", "No"),
    ("Which of the listed animals is a mammal: shark, dolphin, trout?", "Yes"),
    ("Suggest three names for a bakery.", "No"),
)

INPUT_FIRST = ("Come up with an example for the following task. If the task needs an input, write it after "
               "'Input:'; otherwise write 'Input: <noinput>'. Then write the correct output after 'Output:'.\n\n"
               "Task: Convert the temperature from Celsius to Fahrenheit.\nInput: 25 degrees Celsius\n"
               "Output: 77 degrees Fahrenheit\n\nTask: Give me a tip for sleeping better.\nInput: <noinput>\n"
               "Output: Keep a regular bedtime, even at weekends.\n\nTask: {instruction}\nInput:")
OUTPUT_FIRST = ("Given the classification task, first write a class label after 'Class label:', then an input "
                "of that class after 'Input:'.\n\nTask: Decide whether the sentence is about sport.\n"
                "Class label: Yes\nInput: The striker scored twice in the final.\n\n"
                "Task: {instruction}\nClass label:")


def list_prompt(examples: list[str]) -> str:
    """The instruction-generation prompt: a numbered list of in-context instructions to continue."""
    body = "".join(f"Task {i}: {e}\n" for i, e in enumerate(examples, 1))
    return f"Come up with a series of tasks:\n{body}Task {len(examples) + 1}:"


def classify_prompt(instruction: str) -> str:
    shots = "".join(f"Task: {t}\nIs it classification? {a}\n\n" for t, a in CLASSIFY_SHOTS)
    return ("Can the following task be regarded as a classification task with finite output labels?\n\n"
            f"{shots}Task: {instruction}\nIs it classification?")


def instruction_filter(text: str, pool: list[str], scorer) -> str | None:
    """The name of the first filter ``text`` fails (``None`` when it passes)."""
    words = len(text.split())
    if not text:
        return "empty"
    if words < MIN_WORDS or words > MAX_WORDS:
        return "length"
    if BLOCKED.search(text):
        return "keyword"
    if not text[0].isalnum():
        return "punctuation_start"
    if pool and max(scorer.score(p, text)["rougeL"].fmeasure for p in pool) >= SIMILARITY_LIMIT:
        return "rouge_similar"
    return None


def _first_task(text: str) -> str:
    return re.split(r"\n|Task \d+:", text.strip())[0].strip()


def _parse_instance(text: str, classification: bool) -> tuple[str, str]:
    """(input, output) from a generated instance."""
    if classification:  # "<label>\nInput: <input>"
        label, _, rest = text.partition("Input:")
        return rest.strip().split("\n\n")[0].strip(), label.strip().split("\n")[0].strip()
    inp, _, out = text.partition("Output:")
    inp = inp.strip()
    return ("" if inp in ("<noinput>", "") else inp), out.strip().split("\n\n")[0].strip()


def is_classification(model: CachedModel, instructions: list[str]) -> list[bool]:
    reqs = [LoglikelihoodRequest(classify_prompt(t), cont) for t in instructions for cont in (" Yes", " No")]
    res = model.loglikelihood(reqs)
    return [res[2 * i].logprob > res[2 * i + 1].logprob for i in range(len(instructions))]


def load_seed_instructions(path: str | Path, fmt: str | None = None, *, limit: int | None = None) -> list[str]:
    """Instructions only (no inputs) of a seed-task file: Self-Instruct JSONL, Alpaca or a prompt file."""
    from aligngoals.data import load_records
    from aligngoals.synth.common import load_prompts

    p = Path(path)
    try:
        recs = list(load_records(p, format=fmt))
        seeds = [r.instruction for r in recs if isinstance(r, InstructionExample)]
    except Exception:  # a plain prompt file is fine too
        seeds = []
    seeds = seeds or load_prompts(p, fmt)
    seeds = list(dict.fromkeys(s.strip() for s in seeds if s.strip()))
    return seeds[:limit] if limit else seeds


def _generate_instructions(model, seeds, num, limit, rng, seed, removed, progress):
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pool = list(seeds)
    machine: list[str] = []
    prompts_shown: list[dict] = []
    attempts = 0
    while len(machine) < num and attempts < limit:
        n_machine = MACHINE_SHOTS if len(machine) >= MACHINE_SHOTS else 0
        shown_h = rng.sample(seeds, min(HUMAN_SHOTS + MACHINE_SHOTS - n_machine, len(seeds)))
        shown_m = rng.sample(machine, n_machine)
        prompt = list_prompt(shown_h + shown_m)
        prompts_shown.append({"prompt": prompt, "human": len(shown_h), "machine": len(shown_m)})
        req = GenerationRequest(prompt=prompt, settings=GenerationSettings(max_tokens=64, temperature=0.7, top_p=0.95,
                                                                           seed=seed * 7919 + attempts))
        text = _first_task(model.generate([req])[0])
        attempts += 1
        why = instruction_filter(text, pool, scorer)
        if why:
            removed[why] += 1
            continue
        machine.append(text)
        pool.append(text)
        if progress:
            progress(1)
    return machine, prompts_shown, attempts


def self_instruct(
    model: CachedModel,
    seeds: list[str],
    *,
    num: int = 10,
    max_attempts: int | None = None,
    answer: bool = True,
    instances: int = 2,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> SynthResult:
    """New instructions with instances, and per-filter removal counts in ``stats``."""
    seeds = list(dict.fromkeys(s.strip() for s in seeds if s.strip()))
    if len(seeds) < HUMAN_SHOTS + MACHINE_SHOTS:
        raise AligngoalsError(f"Self-Instruct needs at least {HUMAN_SHOTS + MACHINE_SHOTS} distinct seed instructions, got {len(seeds)}.",
                              hint="Use the 175 seed tasks (../shared/data/self-instruct/seed_tasks.jsonl) or your own.")
    if num < 1:
        raise AligngoalsError(f"num must be at least 1, got {num}.")
    rng = random.Random(seed)
    removed = {k: 0 for k in ("empty", "length", "keyword", "punctuation_start", "rouge_similar",
                              "duplicate_input", "empty_output")}
    machine, shown, attempts = _generate_instructions(model, seeds, num, max_attempts or num * 4, rng, seed, removed, progress)
    classes = is_classification(model, machine) if machine else []
    result = SynthResult()
    result.traces += [{"kind": "generation_prompt", **p} for p in shown]
    k = instances if answer else 0
    reqs = [GenerationRequest(prompt=(OUTPUT_FIRST if c else INPUT_FIRST).format(instruction=t),
                              settings=GenerationSettings(max_tokens=128, temperature=0.7 if j else 0.0, top_p=0.95,
                                                          seed=seed + j, stop=("\n\nTask",)))
            for t, c in zip(machine, classes) for j in range(k)]
    texts = model.generate(reqs) if reqs else []
    for i, (ins, cls) in enumerate(zip(machine, classes)):
        if not answer:
            result.sft.append(InstructionExample(id=f"selfinstruct-{i}", instruction=ins, output="",
                                                 meta={"method": "self_instruct", "is_classification": cls}))
            continue
        seen_inputs: set[str] = set()
        for j, text in enumerate(texts[i * k:(i + 1) * k]):
            inp, out = _parse_instance(text, cls)
            trace = {"kind": "instance", "instruction": ins, "is_classification": cls,
                     "order": "output_first" if cls else "input_first", "raw": text, "input": inp, "output": out}
            result.traces.append(trace)
            why = "empty_output" if not out else "duplicate_input" if inp.lower() in seen_inputs else None
            if why:
                removed[why] += 1
                trace["removed"] = why
                continue
            seen_inputs.add(inp.lower())
            result.sft.append(InstructionExample(id=f"selfinstruct-{i}-{j}", instruction=ins, input=inp,
                                                 output=out, meta={"method": "self_instruct", "is_classification": cls}))
    result.stats = {"requested": num, "instructions": len(machine), "instances": len(result.sft), "attempts": attempts,
                    "classification": sum(classes), "removed": removed,
                    "shots": {"human": HUMAN_SHOTS, "machine": MACHINE_SHOTS}}
    return result
