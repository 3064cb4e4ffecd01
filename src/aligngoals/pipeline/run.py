"""``run_pipeline``: run a recipe's stages in order, resumably, and record lineage.

Resume rule (why fingerprints): each stage's fingerprint hashes its own spec,
the recipe's global settings (goal content, models, seed, data_dir) and the
fingerprint of the stage before it. A stage whose ``stage.json`` says ``done``
with the same fingerprint is skipped; one that was interrupted (``running``,
same fingerprint) runs again in its folder, where its run store and training
checkpoints let it continue; a changed fingerprint (a changed setting here or
upstream) clears the folder and runs the stage afresh, and so every later one.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from aligngoals.errors import ConfigError
from aligngoals.io import atomic_write_json, atomic_write_text, stable_hash
from aligngoals.pipeline.recipe import Recipe
from aligngoals.pipeline.stages import PipelineContext, load_json, run_align, run_evaluate, run_synthesize
from aligngoals.pipeline.summary import report_markdown

STAGE_FILE = "stage.json"
LINEAGE_FILE = "lineage.json"
REPORT_FILE = "report.json"


def _file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_hash(spec: str) -> dict:
    """The base model's or a trained model's content fingerprint (what lineage links)."""
    from aligngoals.align.modeling import resolve_base

    try:
        src = resolve_base(spec)
    except Exception as exc:  # a served teacher has no local weights: record why
        return {"spec": spec, "unavailable": str(exc)}
    return {"spec": spec, **src.fingerprint}


def _global_fingerprint(recipe: Recipe, goal: Any) -> str:
    return stable_hash({"goal": goal.model_dump(), "model": recipe.model, "teacher": recipe.teacher,
                        "seed": recipe.seed, "data_dir": recipe.data_dir})


def run_pipeline(recipe: Recipe, recipe_dir: Path, out: str | Path, *, note: Callable[[str], None] = print) -> dict:
    """Run (or resume) every stage of ``recipe`` into ``out``; returns the final report."""
    from aligngoals.goals import load_goal

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    goal = load_goal(recipe.goal)
    ctx = PipelineContext(recipe=recipe, recipe_dir=recipe_dir, out=out, note=note, goal=goal)
    atomic_write_json(out / "recipe.json", recipe.model_dump())
    prev = _global_fingerprint(recipe, goal)
    runners = {"synthesize": run_synthesize, "align": run_align, "evaluate": run_evaluate,
               "compare": _compare_stage}
    for stage in recipe.stages:
        spec = stage.model_dump()
        if stage.kind == "evaluate" and "rubric" in stage.measures:
            spec["judge"] = recipe.judge  # only the evaluate stage sees the judge: a new one re-runs just that
        fp = stable_hash({"stage": spec, "upstream": prev})
        sdir = out / stage.name
        state = load_json(sdir / STAGE_FILE) if (sdir / STAGE_FILE).is_file() else None
        if state and state.get("fingerprint") == fp and state.get("status") == "done":
            note(f"stage {stage.name}: done earlier, skipped")
            ctx.outputs[stage.name] = state["outputs"]
            prev = fp
            continue
        if state and state.get("fingerprint") != fp:
            note(f"stage {stage.name}: settings changed since the last run; running it again")
            shutil.rmtree(sdir)
        elif state:
            note(f"stage {stage.name}: interrupted earlier; continuing")
        elif sdir.exists() and any(sdir.iterdir()):
            raise ConfigError(f"{sdir} exists but was not written by this pipeline (no {STAGE_FILE}).",
                              hint="Choose another --out directory or remove that folder.")
        sdir.mkdir(parents=True, exist_ok=True)
        started = time.time()
        atomic_write_json(sdir / STAGE_FILE, {"stage": stage.name, "status": "running", "fingerprint": fp,
                                              "started": started})
        outputs = runners[stage.kind](ctx, stage, sdir)
        ctx.outputs[stage.name] = outputs
        atomic_write_json(sdir / STAGE_FILE, {"stage": stage.name, "status": "done", "fingerprint": fp,
                                              "started": started, "seconds": round(time.time() - started, 1),
                                              "outputs": outputs})
        write_lineage(ctx)
        prev = fp
    write_lineage(ctx)
    return write_report(ctx)


def write_lineage(ctx: PipelineContext) -> Path:
    """``lineage.json``: goal, data, method, settings, base model hash and output model hash of every model made."""
    goal = ctx.goal
    models = []
    for stage in ctx.recipe.stages:
        out = ctx.outputs.get(stage.name)
        if stage.kind != "align" or not out:
            continue
        data = Path(out["data"])
        models.append({
            "stage": stage.name, "method": stage.method, "settings": stage.settings,
            "data": {"path": str(data), "sha256": _file_sha256(data) if data.is_file() else None,
                     "made_by": stage.data if (stage.data or "").startswith("@") else None},
            "base_model": model_hash(out["base"]), "output_model": model_hash(out["model"]),
        })
    synth = {s.name: {"method": s.method, "settings": s.settings, "policy": ctx.outputs[s.name].get("policy"),
                      "teacher": ctx.outputs[s.name].get("teacher"), "stats": ctx.outputs[s.name].get("stats")}
             for s in ctx.recipe.stages if s.kind == "synthesize" and s.name in ctx.outputs}
    lineage = {"recipe": ctx.recipe.name, "goal": {"name": goal.name, "version": goal.version,
                                                    "sha256": stable_hash(goal.model_dump())},
               "teacher": ctx.recipe.teacher, "synthesized": synth, "models": models}
    return atomic_write_json(ctx.out / LINEAGE_FILE, lineage)


def _align_rows(align_dir: Path) -> dict:
    """Held-out before/after (paired intervals) and the in-context baseline of one align stage."""
    from aligngoals.align.compare import compare_runs
    from aligngoals.align.evaluation import metric_values

    out: dict[str, Any] = {}
    if not (align_dir / "eval" / "after" / REPORT_FILE).is_file():
        return out
    _, _, rows = compare_runs(align_dir)
    out["before_after"] = [r.to_dict() for r in rows]
    for phase in ("in_context", "implicit"):
        p = align_dir / "eval" / phase / REPORT_FILE
        if p.is_file():
            out[phase] = metric_values(load_json(p))
            if phase == "implicit":
                out["implicit_ci"] = {f"{t}.{m}": [v["ci_low"], v["ci_high"]]
                                      for t, task in load_json(p)["tasks"].items() for m, v in task["metrics"].items()}
    return out


def _compare_stage(ctx: PipelineContext, stage: Any, sdir: Path) -> dict:
    write_report(ctx)
    return {"report": str(ctx.out / REPORT_FILE), "markdown": str(ctx.out / "report.md")}


def write_report(ctx: PipelineContext) -> dict:
    """The final report: every align stage's held-out before/after beside the in-context baseline,
    and every evaluate stage's measures for base, base + principles and the aligned model."""
    report: dict[str, Any] = {"recipe": ctx.recipe.name, "goal": ctx.goal.name, "align": {}, "evaluate": {}}
    for stage in ctx.recipe.stages:
        out = ctx.outputs.get(stage.name)
        if not out:
            continue
        if stage.kind == "align":
            report["align"][stage.name] = {"method": stage.method, **_align_rows(Path(out["dir"]))}
        elif stage.kind == "evaluate":
            m = load_json(out["measures"])
            cd = m.get("context_distillation")
            if cd:
                m["context_distillation"] = {k: v for k, v in cd.items() if k != "items"}
            for key in ("refusal", "overrefusal"):
                if key in m:
                    m[key] = {who: {k: v for k, v in row.items() if k != "items"} for who, row in m[key].items()}
            report["evaluate"][stage.name] = m
    atomic_write_json(ctx.out / REPORT_FILE, report)
    atomic_write_text(ctx.out / "report.md", report_markdown(report))
    return report
