"""``aligngoals synth``: make SFT data and preference pairs from a goal and a model."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from aligngoals.cli.common import console, progress_bar
from aligngoals.errors import ConfigError


class SynthMethod(str, Enum):
    constitutional = "constitutional"
    self_align = "self-align"
    ai_feedback = "ai-feedback"
    self_instruct = "self-instruct"
    red_team = "red-team"
    verbose_clone = "verbose-clone"


def register(app: typer.Typer) -> None:
    @app.command("synth")
    def synth(
        method: SynthMethod = typer.Argument(..., help="constitutional | self-align | ai-feedback | self-instruct | red-team | verbose-clone"),
        model: str = typer.Option("smollm2", "--model", "-m", help="The model that writes answers (the policy)."),
        goal: Optional[str] = typer.Option(None, "--goal", "-g", help="Goal name or YAML file whose principles guide the method (not needed for self-instruct)."),
        prompts: Optional[Path] = typer.Option(None, "--prompts", "-p", help="Prompts: JSONL of {\"prompt\": ...}, a .txt file, or any data file (--format). For self-instruct: the seed tasks. Not used by red-team."),
        fmt: Optional[str] = typer.Option(None, "--format", help="Data format of --prompts (detected when omitted)."),
        out: Path = typer.Option(Path("runs/synth"), "--out", "-o", help="Output folder: sft.jsonl, pairs.jsonl, traces.jsonl and the run store (re-run to resume)."),
        feedback_model: Optional[str] = typer.Option(None, "--feedback-model", "--teacher", help="A separate teacher: compares answers (ai-feedback), critiques and revises (constitutional), writes questions and answers (self-align, red-team, self-instruct). Default: --model."),
        exemplars: Optional[int] = typer.Option(None, "--exemplars", min=0, help="In-context exemplars: self-align (0-5, default 5, with internal thoughts), constitutional (0-3, default 2, critique/revision)."),
        topics: int = typer.Option(4, "--topics", min=1, help="red-team: topics the model proposes per question type."),
        keep_inconsistent: bool = typer.Option(False, "--keep-inconsistent", help="ai-feedback: keep pairs whose preference flips with the order (the averaged soft label decides), as RL-CAI trains on all comparisons."),
        limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N prompts."),
        rounds: int = typer.Option(1, "--rounds", min=1, help="constitutional: critique-revise rounds."),
        num: int = typer.Option(10, "--num", min=1, help="self-instruct: new instructions to keep."),
        max_tokens: int = typer.Option(160, "--max-tokens", min=1, help="Longest answer, in tokens."),
        seed: int = typer.Option(0, "--seed"),
    ) -> None:
        """Synthesize alignment data: critique-and-revise against principles (constitutional, SL-CAI data),
        SELF-ALIGN principle-driven answers (self-align; questions from red-team), AI-feedback
        preference pairs with soft labels (ai-feedback, RL-CAI data), Self-Instruct instructions and
        instances (self-instruct), or verbose-cloning answers (verbose-clone).

        For the whole loop in one command (synthesize, align, evaluate, compare) see 'aligngoals pipeline'.

        Writes records in the aligngoals records JSONL format, readable by 'aligngoals align'
        and 'aligngoals data inspect'.
        """
        from aligngoals.evaluate.cached import CachedModel
        from aligngoals.goals import load_goal
        from aligngoals.models.registry import load_model
        from aligngoals.store import RunStore
        from aligngoals.synth import load_prompts, load_seed_instructions

        if out.is_file() or out.suffix.lower() in {".jsonl", ".json", ".csv", ".txt", ".gz"}:
            raise ConfigError(f"--out {out} looks like a file, but --out takes a folder (it receives sft.jsonl, "
                              "pairs.jsonl, traces.jsonl and the run store).",
                              hint=f"Pass a folder, for example --out {out.with_suffix('')}.")
        if method in (SynthMethod.constitutional, SynthMethod.self_align, SynthMethod.ai_feedback) and not goal:
            raise ConfigError(f"synth {method.value} needs --goal (a goal name such as 'hhh' or a goal YAML file).")
        g = load_goal(goal) if goal else None
        if method != SynthMethod.red_team and prompts is None:
            raise ConfigError(f"synth {method.value} needs --prompts.")
        if method == SynthMethod.self_instruct:
            items = load_seed_instructions(prompts, fmt, limit=limit)
        elif method == SynthMethod.red_team:
            items = []
        else:
            items = load_prompts(prompts, fmt, limit=limit)
        store = RunStore(out)
        with console.status(f"Loading model {model} ..."):
            policy = CachedModel(load_model(model), store)
            fb = policy
            if feedback_model and feedback_model != model:
                fb = CachedModel(load_model(feedback_model), store)
        total = {"constitutional": len(items) * (rounds + 1), "self-align": len(items), "ai-feedback": len(items) * 2,
                 "self-instruct": num, "red-team": topics * 10, "verbose-clone": len(items)}[method.value]
        with progress_bar(f"synth {method.value}", total) as bar:
            result = _run_method(method, policy, fb, g, items, rounds=rounds, max_tokens=max_tokens, seed=seed,
                                 exemplars=exemplars, topics=topics, num=num, keep_inconsistent=keep_inconsistent,
                                 progress=bar.advance)
        paths = result.write(out)
        if method == SynthMethod.red_team:  # the questions, ready for --prompts of self-align
            from aligngoals.io import atomic_write_jsonl

            paths["prompts"] = atomic_write_jsonl(out / "prompts.jsonl",
                                                  [{"prompt": t["question"]} for t in result.traces if t["kept"]])
        store.set_meta("synth", {"method": method.value, "model": policy.identity, "goal": g.name if g else None,
                                 "stats": result.stats})
        store.close()
        console.print(f"[bold]{method.value}[/]: {result.stats}")
        for kind, p in paths.items():
            console.print(f"  {kind}: {p}")


def _run_method(method: SynthMethod, policy, fb, g, items, *, rounds, max_tokens, seed, exemplars, topics, num,
                keep_inconsistent, progress):
    """One synthesis method; ``fb`` is the teacher (the policy itself without --teacher)."""
    from aligngoals.synth import (
        ai_feedback_pairs,
        critique_and_revise,
        red_team_prompts,
        self_align,
        self_instruct,
        verbose_cloning,
    )

    if method == SynthMethod.constitutional:
        return critique_and_revise(policy, g, items, critic=fb, rounds=rounds, max_tokens=max_tokens, seed=seed,
                                   exemplars=2 if exemplars is None else exemplars, progress=progress)
    if method == SynthMethod.self_align:
        return self_align(fb, g, items, exemplars=5 if exemplars is None else exemplars, max_tokens=max_tokens,
                          seed=seed, progress=progress)
    if method == SynthMethod.ai_feedback:
        return ai_feedback_pairs(policy, fb, g, items, max_tokens=max_tokens, seed=seed,
                                 drop_inconsistent=not keep_inconsistent, progress=progress)
    if method == SynthMethod.red_team:
        return red_team_prompts(fb, topics_per_type=topics, seed=seed, progress=progress)
    if method == SynthMethod.verbose_clone:
        return verbose_cloning(policy, items, max_tokens=max_tokens, seed=seed, progress=progress)
    return self_instruct(fb, items, num=num, seed=seed, progress=progress)
