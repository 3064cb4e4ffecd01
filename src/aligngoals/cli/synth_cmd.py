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


def register(app: typer.Typer) -> None:
    @app.command("synth")
    def synth(
        method: SynthMethod = typer.Argument(..., help="constitutional | self-align | ai-feedback | self-instruct"),
        model: str = typer.Option("smollm2", "--model", "-m", help="The model that writes answers (the policy)."),
        goal: Optional[str] = typer.Option(None, "--goal", "-g", help="Goal name or YAML file whose principles guide the method (not needed for self-instruct)."),
        prompts: Path = typer.Option(..., "--prompts", "-p", help="Prompts: JSONL of {\"prompt\": ...}, a .txt file, or any data file (--format). For self-instruct: the seed tasks."),
        fmt: Optional[str] = typer.Option(None, "--format", help="Data format of --prompts (detected when omitted)."),
        out: Path = typer.Option(Path("runs/synth"), "--out", "-o", help="Output folder: sft.jsonl, pairs.jsonl, traces.jsonl and the run store (re-run to resume)."),
        teacher: Optional[str] = typer.Option(None, "--teacher", help="A separate model of any backend (smollm2, gguf:, hf:, vllm:, openai:MODEL@URL): constitutional: critiques and revises --model's answers; ai-feedback: compares them; self-align and self-instruct: writes the data. Default: --model itself."),
        feedback_model: Optional[str] = typer.Option(None, "--feedback-model", help="ai-feedback: the same as --teacher (kept for older scripts)."),
        limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N prompts."),
        rounds: int = typer.Option(1, "--rounds", min=1, help="constitutional: critique-revise rounds."),
        num: int = typer.Option(10, "--num", min=1, help="self-instruct: new instructions to keep."),
        max_tokens: int = typer.Option(160, "--max-tokens", min=1, help="Longest answer, in tokens."),
        seed: int = typer.Option(0, "--seed"),
    ) -> None:
        """Synthesize alignment data: critique-and-revise against principles, principle-driven answers,
        AI-feedback preference pairs, or Self-Instruct instructions.

        Writes records in the aligngoals records JSONL format, readable by 'aligngoals align'
        and 'aligngoals data inspect'.
        """
        from aligngoals.evaluate.cached import CachedModel
        from aligngoals.goals import load_goal
        from aligngoals.models.registry import load_model
        from aligngoals.store import RunStore
        from aligngoals.synth import ai_feedback_pairs, critique_and_revise, load_prompts, self_align, self_instruct

        if out.is_file() or out.suffix.lower() in {".jsonl", ".json", ".csv", ".txt", ".gz"}:
            raise ConfigError(f"--out {out} looks like a file, but --out takes a folder (it receives sft.jsonl, "
                              "pairs.jsonl, traces.jsonl and the run store).",
                              hint=f"Pass a folder, for example --out {out.with_suffix('')}.")
        if method != SynthMethod.self_instruct and not goal:
            raise ConfigError(f"synth {method.value} needs --goal (a goal name such as 'hhh' or a goal YAML file).")
        g = load_goal(goal) if goal else None
        items = load_prompts(prompts, fmt, limit=limit)
        if teacher and feedback_model and teacher != feedback_model:
            raise ConfigError("--teacher and --feedback-model name different models.", hint="Pass only --teacher.")
        teacher = teacher or feedback_model
        store = RunStore(out)
        with console.status(f"Loading model {model} ..."):
            policy = CachedModel(load_model(model), store)
            tutor = CachedModel(load_model(teacher), store) if teacher and teacher != model else policy
        total = {"constitutional": len(items) * (rounds + 1), "self-align": len(items), "ai-feedback": len(items) * 2,
                 "self-instruct": num}[method.value]
        with progress_bar(f"synth {method.value}", total) as bar:
            if method == SynthMethod.constitutional:
                result = critique_and_revise(policy, g, items, rounds=rounds, max_tokens=max_tokens, seed=seed,
                                             progress=bar.advance, teacher=tutor)
            elif method == SynthMethod.self_align:
                result = self_align(tutor, g, items, max_tokens=max_tokens, seed=seed, progress=bar.advance)
            elif method == SynthMethod.ai_feedback:
                result = ai_feedback_pairs(policy, tutor, g, items, max_tokens=max_tokens, seed=seed, progress=bar.advance)
            else:
                result = self_instruct(tutor, items, num=num, seed=seed, progress=bar.advance)
        paths = result.write(out)
        store.set_meta("synth", {"method": method.value, "model": policy.identity, "teacher": tutor.identity,
                                 "goal": g.name if g else None,
                                 "stats": result.stats})
        store.close()
        console.print(f"[bold]{method.value}[/]: {result.stats}")
        for kind, p in paths.items():
            console.print(f"  {kind}: {p}")
