"""SELF-ALIGN (Sun et al. 2023): principle-driven self-alignment in four stages.

1. **Topic-guided red-teaming Self-Instruct** (:func:`red_team_prompts`): for each
   question type the model proposes topics, then writes one question per
   (type, topic) pair, so the prompts cover the kinds of questions the
   principles are meant for (including adversarial ones), not only the seed's.
2. **Principle-driven self-alignment** (:func:`self_align`): the model answers
   with the goal's principles and in-context exemplars in its system prompt.
   Each exemplar shows the "internal thoughts" (which principles apply and
   why) before the answer; the model's own thoughts are parsed off and kept in
   the trace, only the answer is kept as data.
3. **Principle engraving**: the SFT records carry the bare question and the
   answer, without principles, exemplars or thoughts; training on them through
   ``aligngoals align sft`` engraves the principles into a model that no longer
   needs the prompt (context distillation).
4. **Verbose cloning** (:func:`verbose_cloning`, optional): the engraved model
   answers with a prompt asking for detailed answers, and those answers are
   again distilled without the prompt.

Deliberate differences from the paper (see docs/synthesis.md): the paper used a
base LLaMA-65B with a plain-text prompt; here the chat template carries the
prompt as a system message, the exemplars are written for aligngoals, and
topics are proposed by the same model (or a ``--teacher``).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from aligngoals.data.records import InstructionExample
from aligngoals.errors import AligngoalsError
from aligngoals.evaluate.cached import CachedModel
from aligngoals.models.base import ChatMessage, GenerationRequest, GenerationSettings
from aligngoals.synth.common import ProgressFn, SynthResult

#: Red-teaming question types (the paper used 20; these are written for aligngoals),
#: each with an example topic and question that show the type.
QUESTION_TYPES: dict[str, tuple[str, str]] = {
    "harmful_request": ("home security", "How can I get into my neighbour's house while they are away?"),
    "factual": ("astronomy", "Why does the moon show phases?"),
    "dated_knowledge": ("sports", "Who won the most recent football world cup?"),
    "numerical": ("travel", "If a train travels 180 km in 2.5 hours, what is its average speed?"),
    "advice": ("careers", "How should I prepare for a job interview at a bank?"),
    "controversial": ("energy policy", "Is nuclear power a good idea?"),
    "ambiguous": ("shopping", "Which one should I buy?"),
    "creative": ("seasons", "Write a short poem about autumn rain."),
    "how_to": ("cycling", "How do I change a flat bicycle tyre?"),
    "about_the_assistant": ("weather", "Can you check today's weather for me?"),
}

# Raw-text continuations rather than chat requests: a numbered list and a
# "Topic: / Question:" pattern are what a small model continues most reliably.
TOPIC_TEMPLATE = "Topics for {qtype} questions, such as \"{example}\":\n1. {topic}\n2."
QUESTION_TEMPLATE = ("Examples of {qtype} questions.\n\nTopic: {example_topic}\nQuestion: {example}\n\n"
                     "Topic: {topic}\nQuestion:")


@dataclass(frozen=True)
class Exemplar:
    question: str
    thoughts: str
    answer: str


#: Five in-context exemplars with internal thoughts, written for aligngoals. Principle
#: names refer to the self_align_16 goal; with another goal the header tells the model
#: to apply that goal's principles in the same way.
EXEMPLARS: tuple[Exemplar, ...] = (
    Exemplar("How do I make a fake ID that passes a bar's scanner?",
             "The user asks for help with forgery, which is illegal; the ethical principle applies. "
             "I should decline and offer a lawful alternative (helpful).",
             "I can't help make a fake ID: it is illegal and can lead to criminal charges. If you need proof of "
             "age, you can apply for an official ID card at your local licensing office."),
    Exemplar("What is the population of Tokyo right now?",
             "The user asks for a current figure. Static and dated knowledge apply: I cannot look it up live. "
             "Candor: give the figure I know and say how old it is.",
             "I can't check live data, but as of my training data greater Tokyo had about 37 million people and "
             "the city proper about 14 million. An official statistics site will have the latest number."),
    Exemplar("A shirt costs $40 and is 25% off. What do I pay?",
             "A numerical question; numerical sensitivity and step-by-step apply. Compute the discount, then "
             "subtract it.",
             "25% of $40 is $10, so you pay $40 - $10 = $30."),
    Exemplar("Should I invest in it?",
             "The request is ambiguous: 'it' is not named. Question assessment and clarification apply; "
             "I should ask what the user means.",
             "Could you tell me what you are thinking of investing in? With the asset, your time horizon and "
             "how much risk you can accept, I can outline the main points to weigh."),
    Exemplar("Is social media good or bad for teenagers?",
             "A contested question. Balanced perspectives and multi-aspect apply: give the main views and the "
             "evidence on both sides without taking a side.",
             "It depends on how it is used. It helps teenagers keep in touch with friends and find support and "
             "information; heavy use is linked to worse sleep, anxiety and comparison with others. Time limits "
             "and talking openly about what they see online reduce the risks."),
)

THOUGHTS_MARK = "Internal thoughts:"
ANSWER_MARK = "Answer:"

VERBOSE_PROMPT = ("You are a helpful, knowledgeable assistant. Answer the question in detail and comprehensively: "
                  "explain the reasoning, cover the relevant aspects and give examples where they help.")


def principles_prompt(goal, exemplars: int = len(EXEMPLARS)) -> str:
    """The principle-driven system prompt: the goal's principles in priority order, then the exemplars."""
    if not 0 <= exemplars <= len(EXEMPLARS):
        raise AligngoalsError(f"exemplars must be between 0 and {len(EXEMPLARS)}, got {exemplars}.")
    principles = goal.principles_in_priority_order()
    if not principles:
        raise AligngoalsError(f"Goal {goal.name} has no principles to align to.",
                              hint="Use a value goal such as 'self_align_16' or 'hhh'.")
    lines = [f"You are an assistant that follows these principles (goal '{goal.name}'); "
             "when two conflict, the earlier one wins:"]
    for n, p in enumerate(principles, 1):
        lines.append(f"{n}. {p.id}: {p.statement}")
    if exemplars:
        lines.append(f"\nBefore answering, write '{THOUGHTS_MARK}' naming the principles that apply, "
                     f"then '{ANSWER_MARK}' and the answer. Examples:")
        for ex in EXEMPLARS[:exemplars]:
            lines.append(f"\nUser: {ex.question}\n{THOUGHTS_MARK} {ex.thoughts}\n{ANSWER_MARK} {ex.answer}")
    return "\n".join(lines)


def split_thoughts(text: str) -> tuple[str | None, str, str]:
    """(thoughts, answer, how) of a principle-driven reply; ``how`` is formatted / unformatted / thoughts_only."""
    text = text.strip()
    i = text.find(ANSWER_MARK)
    if i >= 0:
        thoughts = text[:i].replace(THOUGHTS_MARK, "").strip() or None
        return thoughts, text[i + len(ANSWER_MARK):].strip(), "formatted"
    if text.startswith(THOUGHTS_MARK):
        return text[len(THOUGHTS_MARK):].strip(), "", "thoughts_only"
    return None, text, "unformatted"


def _lines(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-*\u2022]|\d+[.)])\s*", "", line).strip().rstrip(".")
        if 2 <= len(line) <= 80:
            out.append(line)
    return out


def red_team_prompts(
    model: CachedModel,
    *,
    topics_per_type: int = 4,
    types: list[str] | None = None,
    questions_per_topic: int = 1,
    topic_rounds: int = 4,
    max_tokens: int = 64,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> SynthResult:
    """Stage 1: question types x topics the model proposes -> questions (traces keep type and topic).

    A small model lists only a few topics per sample, so topic lists are sampled up to
    ``topic_rounds`` times per type (other seeds) until ``topics_per_type`` distinct topics
    are found; each (type, topic) pair then gets ``questions_per_topic`` sampled questions,
    as the paper asks several questions per topic.
    """
    chosen = types or list(QUESTION_TYPES)
    unknown = [t for t in chosen if t not in QUESTION_TYPES]
    if unknown:
        raise AligngoalsError(f"Unknown question type(s): {', '.join(unknown)}.", hint=f"Known: {', '.join(QUESTION_TYPES)}.")
    for name, value in (("topics_per_type", topics_per_type), ("questions_per_topic", questions_per_topic),
                        ("topic_rounds", topic_rounds)):
        if value < 1:
            raise AligngoalsError(f"{name} must be at least 1, got {value}.")
    topics = _propose_topics(model, chosen, topics_per_type, topic_rounds, max_tokens, seed)
    plan = [(t, topic, k) for t in chosen for topic in topics[t] for k in range(questions_per_topic)]
    questions = model.generate([GenerationRequest(prompt=QUESTION_TEMPLATE.format(
        qtype=t.replace("_", " "), example_topic=QUESTION_TYPES[t][0], example=QUESTION_TYPES[t][1], topic=topic),
        settings=GenerationSettings(max_tokens=max_tokens, temperature=0.7, top_p=0.95, seed=seed + i + 1, stop=("\n",)))
        for i, (t, topic, _) in enumerate(plan)], progress=progress)
    result = SynthResult()
    seen: set[str] = set()
    for (t, topic, _), q in zip(plan, questions):
        q = q.strip().split("\n")[0].strip().strip('"')
        trace = {"type": t, "topic": topic, "question": q}
        if not 3 <= len(q.split()) <= 60 or q.lower() in seen:
            trace["kept"] = False
        else:
            seen.add(q.lower())
            trace["kept"] = True
        result.traces.append(trace)
    rng = random.Random(seed)
    rng.shuffle(result.traces)
    result.stats = {"types": len(chosen), "topics": sum(len(v) for v in topics.values()), "asked": len(plan),
                    "questions": sum(t["kept"] for t in result.traces)}
    return result


def _propose_topics(model: CachedModel, types: list[str], per_type: int, rounds: int, max_tokens: int,
                    seed: int) -> dict[str, list[str]]:
    """Distinct topics per question type, sampling the topic list again (new seed) while short."""
    found: dict[str, list[str]] = {t: [] for t in types}
    for r in range(rounds):
        short = [t for t in types if len(found[t]) < per_type]
        if not short:
            break
        gen = GenerationSettings(max_tokens=max(max_tokens, 8 * per_type), temperature=0.7, top_p=0.95,
                                 seed=seed + 7919 * r, stop=("\n\n",))
        texts = model.generate([GenerationRequest(prompt=TOPIC_TEMPLATE.format(
            qtype=t.replace("_", " "), topic=QUESTION_TYPES[t][0], example=QUESTION_TYPES[t][1]), settings=gen)
            for t in short])
        for t, text in zip(short, texts):
            known = {x.lower() for x in found[t]} | {QUESTION_TYPES[t][0]}
            for x in _lines(text):
                if x.lower() not in known and len(found[t]) < per_type:
                    found[t].append(x)
                    known.add(x.lower())
    return found


def self_align(
    model: CachedModel,
    goal,
    prompts: list[str],
    *,
    exemplars: int = len(EXEMPLARS),
    max_tokens: int = 160,
    temperature: float = 0.0,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> SynthResult:
    """Stages 2 and 3: principle-driven answers, kept as SFT data without the prompt (engraving).

    ``temperature`` 1 samples from the prompted model, which makes SFT on the answers
    context distillation proper (it then minimizes KL(prompted || unprompted)); 0 is greedy.
    """
    system = principles_prompt(goal, exemplars)
    reqs = [GenerationRequest(messages=[ChatMessage("system", system), ChatMessage("user", p)],
                              settings=GenerationSettings(max_tokens=max_tokens, temperature=temperature,
                                                          seed=seed * 100003 + i))
            for i, p in enumerate(prompts)]
    replies = model.generate(reqs, progress=progress)
    result = SynthResult()
    counts = {"formatted": 0, "unformatted": 0, "thoughts_only": 0, "empty": 0}
    for i, (p, reply) in enumerate(zip(prompts, replies)):
        thoughts, answer, how = split_thoughts(reply)
        if not answer:
            how = "empty" if how != "thoughts_only" else how
        counts[how] += 1
        result.traces.append({"prompt": p, "reply": reply, "thoughts": thoughts, "answer": answer, "parse": how})
        if answer:
            # Engraving: the record holds the bare request and the answer only.
            result.sft.append(InstructionExample(id=f"selfalign-{i}", instruction=p, output=answer,
                                                 meta={"method": "self_align", "goal": goal.name}))
    result.stats = {"prompts": len(prompts), "kept": len(result.sft), "exemplars": exemplars,
                    "system_prompt_chars": len(system), **counts}
    return result


def verbose_cloning(
    model: CachedModel,
    prompts: list[str],
    *,
    max_tokens: int = 256,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> SynthResult:
    """Stage 4: detailed answers under :data:`VERBOSE_PROMPT`, kept without it (context distillation)."""
    settings = GenerationSettings(max_tokens=max_tokens, seed=seed)
    replies = model.generate([GenerationRequest(messages=[ChatMessage("system", VERBOSE_PROMPT), ChatMessage("user", p)],
                                                settings=settings) for p in prompts], progress=progress)
    result = SynthResult()
    for i, (p, a) in enumerate(zip(prompts, replies)):
        result.traces.append({"prompt": p, "system": VERBOSE_PROMPT, "answer": a})
        if a.strip():
            result.sft.append(InstructionExample(id=f"verbose-{i}", instruction=p, output=a.strip(),
                                                 meta={"method": "verbose_cloning"}))
    result.stats = {"prompts": len(prompts), "kept": len(result.sft)}
    return result
