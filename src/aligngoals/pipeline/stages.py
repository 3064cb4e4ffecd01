"""What each stage kind does; :mod:`aligngoals.pipeline.run` decides when.

Each function gets the run context, its :class:`Stage` and its own folder and
returns the stage's outputs (paths and figures), which later stages reach by
``@STAGE`` references. Model calls go through a :class:`RunStore` in the stage
folder, so re-running an interrupted stage answers the finished calls from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from aligngoals.errors import ConfigError
from aligngoals.io import atomic_write_json, atomic_write_jsonl, atomic_write_text
from aligngoals.pipeline.recipe import Recipe, Stage

ProgressNote = Callable[[str], None]


@dataclass
class PipelineContext:
    recipe: Recipe
    recipe_dir: Path
    out: Path
    note: ProgressNote
    outputs: dict[str, dict] = field(default_factory=dict)
    goal: Any = None

    # --- references ------------------------------------------------------------------------
    def path(self, value: str) -> Path:
        """A data path: ``{data_dir}`` substituted, relative paths read from the recipe's folder."""
        data_dir = Path(self.recipe.data_dir)
        if not data_dir.is_absolute():
            data_dir = (Path.cwd() / data_dir) if (Path.cwd() / data_dir).exists() else (self.recipe_dir / data_dir)
        p = Path(value.replace("{data_dir}", str(data_dir)))
        return p if p.is_absolute() else (self.recipe_dir / p)

    def resolve_file(self, ref: str, stage: Stage, what: str) -> Path:
        if ref.startswith("@"):
            target, _, output = ref[1:].partition(":")
            got = self.outputs.get(target, {}).get(output)
            if not got:
                raise ConfigError(f"stage {stage.name!r}: {what} {ref!r}: stage {target!r} wrote no {output!r} file.",
                                  hint=f"Check the method of stage {target!r} (e.g. constitutional writes pairs, self_align does not).")
            return Path(got)
        p = self.path(ref)
        if not p.is_file():
            raise ConfigError(f"stage {stage.name!r}: {what} file {p} does not exist.",
                              hint="Paths are relative to the recipe's folder; '{data_dir}' is the data_dir setting (--data-dir).")
        return p

    def model_spec(self, ref: str | None, *, for_training: bool = False) -> str:
        """A model spec: ``@STAGE`` is that align stage's saved model (``hf:DIR``)."""
        ref = ref or self.recipe.model
        if ref.startswith("@"):
            return self.outputs[ref[1:]]["model"]
        return ref

    def eval_spec(self, ref: str | None) -> str:
        """The spec to measure a model with: always transformers, so base and aligned are scored alike."""
        spec = self.model_spec(ref)
        for prefix in ("hf:", "gguf:"):
            if spec.startswith(prefix):
                spec = spec[len(prefix):]
        return "hf:" + spec


def is_gguf_spec(spec: str) -> bool:
    from aligngoals.models.embedded import EMBEDDED_NAME

    return spec == EMBEDDED_NAME or spec.startswith("gguf:")


def _cached(spec: str, store):
    """A model behind the stage's run store; llama.cpp models keep a long shared prompt in their KV cache."""
    from aligngoals.evaluate.cached import CachedModel
    from aligngoals.models.registry import load_model

    return CachedModel(load_model(spec, **({"reuse_prefix": True} if is_gguf_spec(spec) else {})), store)


def _prompts_from(ctx: PipelineContext, stage: Stage, ref: str | None, limit: int | None = None) -> list[str]:
    from aligngoals.synth import load_prompts

    if not ref:
        raise ConfigError(f"stage {stage.name!r} ({stage.method}) needs prompts (a file or @STAGE:heldout).")
    return load_prompts(ctx.resolve_file(ref, stage, "prompts"), stage.format, limit=limit)


def _settings(stage: Stage, allowed: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(stage.settings) - set(allowed))
    if unknown:
        raise ConfigError(f"stage {stage.name!r}: unknown setting(s) {', '.join(unknown)} for {stage.method}.",
                          hint=f"Known settings: {', '.join(sorted(allowed))}.")
    return {**allowed, **stage.settings}


SYNTH_DEFAULTS: dict[str, dict[str, Any]] = {
    "self_align": {"topics_per_type": 4, "questions_per_topic": 1, "types": None, "heldout": 16, "exemplars": 5, "max_tokens": 96, "limit": None,
                   "temperature": 1.0},
    "self_instruct": {"num": 10, "max_attempts": None, "answer": True, "instances": 2, "limit": None},
    "constitutional": {"rounds": 1, "max_tokens": 128, "limit": None, "exemplars": 2},
    "ai_feedback": {"max_tokens": 96, "margin": 0.1, "limit": None, "temperature": 0.8, "drop_inconsistent": True},
    "verbose_cloning": {"max_tokens": 192, "limit": None},
}


def run_synthesize(ctx: PipelineContext, stage: Stage, sdir: Path) -> dict:
    from aligngoals import synth as S
    from aligngoals.store import RunStore
    from aligngoals.synth.self_instruct import load_seed_instructions

    s = _settings(stage, SYNTH_DEFAULTS[stage.method])
    seed = ctx.recipe.seed
    outputs: dict[str, Any] = {}
    with RunStore(sdir) as store:
        policy = _cached(ctx.model_spec(stage.model), store)
        teacher = _cached(ctx.recipe.teacher, store) if ctx.recipe.teacher else policy
        if stage.method == "self_align":
            if stage.prompts:
                questions = _prompts_from(ctx, stage, stage.prompts, s["limit"])
            else:
                ctx.note(f"{stage.name}: topic-guided red-teaming (question types x topics)")
                red = S.red_team_prompts(teacher, topics_per_type=s["topics_per_type"], types=s["types"],
                                         questions_per_topic=s["questions_per_topic"], seed=seed)
                atomic_write_jsonl(sdir / "red_team.jsonl", red.traces)
                questions = [t["question"] for t in red.traces if t["kept"]][: s["limit"] or None]
            n_held = min(s["heldout"], max(0, len(questions) - 1))
            train, held = questions[: len(questions) - n_held], questions[len(questions) - n_held:]
            ctx.note(f"{stage.name}: principle-driven answers to {len(train)} prompts ({s['exemplars']} exemplars)")
            result = S.self_align(teacher, ctx.goal, train, exemplars=s["exemplars"], max_tokens=s["max_tokens"],
                                  temperature=s["temperature"], seed=seed)
            system = S.principles_prompt(ctx.goal, s["exemplars"])
            outputs["system_prompt"] = str(atomic_write_text(sdir / "system_prompt.txt", system))
            outputs["heldout"] = str(atomic_write_jsonl(sdir / "heldout.jsonl", [{"prompt": q} for q in held]))
            outputs["max_tokens"] = s["max_tokens"]
        elif stage.method == "self_instruct":
            if not stage.prompts:
                raise ConfigError(f"stage {stage.name!r} (self_instruct) needs prompts: the seed tasks file.")
            seeds = load_seed_instructions(ctx.resolve_file(stage.prompts, stage, "prompts"), stage.format, limit=s["limit"])
            result = S.self_instruct(teacher, seeds, num=s["num"], max_attempts=s["max_attempts"], answer=s["answer"],
                                     instances=s["instances"], seed=seed)
        elif stage.method == "constitutional":
            prompts = _prompts_from(ctx, stage, stage.prompts, s["limit"])
            result = S.critique_and_revise(policy, ctx.goal, prompts, critic=teacher, rounds=s["rounds"],
                                           exemplars=s["exemplars"], max_tokens=s["max_tokens"], seed=seed)
        elif stage.method == "ai_feedback":
            prompts = _prompts_from(ctx, stage, stage.prompts, s["limit"])
            result = S.ai_feedback_pairs(policy, teacher, ctx.goal, prompts, max_tokens=s["max_tokens"], margin=s["margin"],
                                         temperature=s["temperature"], drop_inconsistent=s["drop_inconsistent"], seed=seed)
        else:
            prompts = _prompts_from(ctx, stage, stage.prompts, s["limit"])
            result = S.verbose_cloning(policy, prompts, max_tokens=s["max_tokens"], seed=seed)
        paths = result.write(sdir)
        outputs.update({k: str(v) for k, v in paths.items()})
        outputs["stats"] = result.stats
        outputs["policy"] = policy.identity
        outputs["teacher"] = teacher.identity
    atomic_write_json(sdir / "stats.json", result.stats)
    return outputs


def run_align(ctx: PipelineContext, stage: Stage, sdir: Path) -> dict:
    from aligngoals.align.config import make_config
    from aligngoals.align.runner import run_alignment

    data = ctx.resolve_file(stage.data or "", stage, "data")
    spec = ctx.model_spec(stage.model, for_training=True)
    settings = dict(stage.settings)
    settings.setdefault("seed", ctx.recipe.seed)
    settings.setdefault("goal", ctx.recipe.goal)
    cfg = make_config(method=stage.method, model=spec, data=str(data), format=stage.format, out=str(sdir / "model"),
                      resume=True, **settings)
    ctx.note(f"{stage.name}: align {stage.method} on {data.name}")
    result = run_alignment(cfg, command=f"aligngoals pipeline {ctx.recipe.name} (stage {stage.name})")
    return {"model": f"hf:{sdir / 'model'}", "dir": str(sdir / "model"), "base": spec, "data": str(data),
            "summary": result.to_dict()}


def _system_prompt(ctx: PipelineContext, stage: Stage) -> str:
    """The in-context prompt: the one the data was synthesized with, else the goal's principles."""
    ref = stage.prompts or ""
    if ref.startswith("@"):
        sp = ctx.outputs.get(ref[1:].partition(":")[0], {}).get("system_prompt")
        if sp:
            return Path(sp).read_text(encoding="utf-8")
    from aligngoals.align.in_context import goal_principles_text

    return goal_principles_text(ctx.goal)


EVAL_DEFAULTS = {"max_tokens": 64, "temperature": 1.0, "harmful": 40, "harmful_file": "{data_dir}/hh-rlhf/harmless-base-test.jsonl.gz",
                 "benign_file": None, "refusal_tokens": 48}


def run_evaluate(ctx: PipelineContext, stage: Stage, sdir: Path) -> dict:
    from aligngoals.pipeline import measures as M
    from aligngoals.store import RunStore
    from aligngoals.values.safety.data_files import load_benign, load_harmful

    s = {**EVAL_DEFAULTS, **stage.settings}
    unknown = sorted(set(stage.settings) - set(EVAL_DEFAULTS))
    if unknown:
        raise ConfigError(f"stage {stage.name!r}: unknown evaluate setting(s) {', '.join(unknown)}.",
                          hint=f"Known: {', '.join(EVAL_DEFAULTS)}.")
    system = _system_prompt(ctx, stage)
    results: dict[str, Any] = {"system_prompt_chars": len(system)}
    with RunStore(sdir) as store:
        base = _cached(ctx.eval_spec(None), store)
        aligned = _cached(ctx.eval_spec(stage.aligned), store) if stage.aligned else None
        # The long principle prompt runs on llama.cpp when the base model is a GGUF (prefix reuse).
        raw = ctx.model_spec(None)
        fast = _cached(raw, store) if is_gguf_spec(raw) else base
        if "context_distillation" in stage.measures and stage.prompts:
            prompts = _prompts_from(ctx, stage, stage.prompts)
            ctx.note(f"{stage.name}: context distillation on {len(prompts)} held-out prompts")
            answers = M.principle_prompted_answers(fast, system, prompts, max_tokens=s["max_tokens"],
                                                   temperature=s["temperature"], seed=ctx.recipe.seed)
            results["context_distillation"] = M.context_distillation(base, aligned, system, prompts, answers,
                                                                    icl_model=fast, seed=ctx.recipe.seed)
        sets = {}
        if "refusal" in stage.measures:
            harmful = load_harmful(ctx.path(s["harmful_file"]))
            sets["refusal"] = [r.text for r in harmful[-int(s["harmful"]):]]
        if "overrefusal" in stage.measures:
            sets["overrefusal"] = [r.text for r in load_benign(ctx.path(s["benign_file"]) if s["benign_file"] else None)]
        models = {"base": base, **({f"base [{fast.identity.get('backend')}]": fast} if fast is not base else {}),
                  f"base+principles [{fast.identity.get('backend')}]": fast,
                  **({"aligned": aligned} if aligned is not None else {})}
        kw = {"max_tokens": s["refusal_tokens"], "seed": ctx.recipe.seed}
        for measure, requests in sets.items():
            ctx.note(f"{stage.name}: {measure} on {len(requests)} requests")
            # base [llama.cpp] beside base: the same weights on two backends, so backend drift is visible
            results[measure] = {who: M.refusal_rate(m, requests, system=system if who.startswith("base+") else None, **kw)
                                for who, m in models.items()}
        if "rubric" in stage.measures:
            prompts = _prompts_from(ctx, stage, stage.prompts) if stage.prompts else sum(sets.values(), [])
            results["rubric"] = _rubric(ctx, stage, store, models, system, prompts, kw)
    atomic_write_json(sdir / "measures.json", results)
    return {"measures": str(sdir / "measures.json")}


def _rubric(ctx: PipelineContext, stage: Stage, store, models: dict, system: str, prompts: list[str], kw: dict) -> dict:
    """The judge's grade of each model's greedy replies to ``prompts``; withheld (with the reason) without a judge."""
    from aligngoals.pipeline import measures as M

    if not ctx.recipe.judge:
        return {"withheld": "no judge model: pass --judge MODEL (a capable one; a 135M judge grades at random)"}
    if not prompts:
        return {"withheld": "no prompts: give the stage held-out prompts or the refusal / overrefusal measures"}
    judge = _cached(ctx.recipe.judge, store)
    ctx.note(f"{stage.name}: rubric, {ctx.recipe.judge} grades {len(models)} x {len(prompts)} replies")
    out: dict[str, Any] = {"judge": judge.identity, "goal": ctx.goal.name}
    for who, m in models.items():
        replies = M.greedy_replies(m, prompts, system=system if who.startswith("base+") else None, **kw)
        out[who] = M.rubric_scores(judge, ctx.goal, prompts, replies, seed=ctx.recipe.seed)
    return out


def load_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
