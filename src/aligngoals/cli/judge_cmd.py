"""``aligngoals judge`` and ``aligngoals leaderboard``: LLM-judge earlier runs, then rate them.

Why two commands: judging is the slow, resumable part (every judge call is
stored); the leaderboard only reads stored verdicts, so it can be recomputed
with another baseline, tie model or K-factor, or pooled over several judges,
without asking a model anything.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from aligngoals.cli.common import console, out, progress_bar
from aligngoals.errors import ConfigError


def _f(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.0f}%"


def _ci(lo, hi, digits: int = 0) -> str:
    if lo is None or hi is None:
        return "–"
    return f"[{lo:.{digits}f}, {hi:.{digits}f}]"


def print_judge_summaries(judges: list[dict]) -> None:
    """One row per judge run: the accounting that says how far to trust its verdicts."""
    table = Table(title="Judges")
    for col in ("judge", "mode", "goal", "calls", "parse failures", "pairs", "inconsistent", "flips",
                "picks 1st", "self-pref. risk"):
        table.add_column(col, justify="left" if col in ("judge", "mode", "goal", "self-pref. risk") else "right")
    for s in judges:
        j = s["judgments"]
        p = s.get("pairs") or {}
        pos = s.get("position") or {}
        name = (s.get("judge") or {}).get("name", "?")
        table.add_row(
            escape(str(name)), s["mode"], escape(str(s.get("goal") or "–")),
            str(j["n"]), f"{j['parse_failures']} ({_pct(j['parse_failure_rate'])})",
            str(p.get("n", "–")),
            f"{p['inconsistent']} ({_pct(p['inconsistency_rate'])})" if p else "–",
            f"{p['flips']} ({_pct(p['flip_rate'])})" if p else "–",
            _pct(pos.get("first_position_rate")) if pos else "–",
            escape(", ".join(s.get("self_preference_risk") or [])) or "none",
        )
    out.print(table)
    for s in judges:
        pr = s.get("principles")
        if pr:
            t = Table(title=f"Principles cited by the judge (goal {escape(str(s.get('goal')))})")
            t.add_column("principle")
            t.add_column("cited", justify="right")
            for model in pr["by_model"]:
                t.add_column(f"against {escape(model)}", justify="right")
            for pid in pr["ids"]:
                t.add_row(escape(pid), str(pr["cited"].get(pid, 0)),
                          *[str(pr["by_model"][m].get(pid, 0)) for m in pr["by_model"]])
            out.print(t)
            top = ", ".join(f"{escape(x['id'])} ({x['n']})" for x in pr.get("most_cited", [])[:5]) or "none"
            console.print(f"Most often cited principles: {top}. "
                          f"Verdicts citing at least one principle: {_pct(pr['cite_rate'])}.")
        if s["mode"] == "single" and s.get("ratings"):
            t = Table(title="Single-answer grades (1-10)")
            for col in ("model", "mean grade", "95% CI", "graded", "parse failures"):
                t.add_column(col, justify="left" if col == "model" else "right")
            for m, r in s["ratings"].items():
                t.add_row(escape(m), _f(r["value"], 2), _ci(r["ci_low"], r["ci_high"], 2), str(r["n_graded"]),
                          str(r["parse_failures"]))
            out.print(t)


def print_leaderboard(result: dict) -> None:
    board = result["leaderboard"]
    base = board.get("baseline")
    bt = board["method"]["bradley_terry"]
    title = (f"Leaderboard · {board['n_battles']} battles · Bradley-Terry (ties: {bt['ties']}) with "
             f"95% bootstrap CI · Elo K={board['method']['elo']['k']:g}")
    table = Table(title=title)
    cols = ["rank", "model", "BT rating (95% CI)", "Elo", "W/T/L", "score rate (95% CI)"]
    if base:
        cols += [f"win rate vs {escape(base)} (95% CI)", "length-controlled (95% CI)"]
    for col in cols:
        table.add_column(col, justify="left" if col == "model" else "right")
    withheld: list[str] = []
    for r in board["models"]:
        sr = r["score_rate"]
        row = [str(r["rank"]), escape(r["model"]), f"{r['rating']:.0f} {_ci(r['ci_low'], r['ci_high'])}",
               f"{r['elo']:.0f}", f"{r['wins']}/{r['ties']}/{r['losses']}",
               f"{_f(sr['value'], 2)} {_ci(sr['ci_low'], sr['ci_high'], 2)}"]
        if base:
            vs = r.get("vs_baseline") or {}
            wr, lc = vs.get("win_rate") or {}, vs.get("lc_win_rate") or {}
            if r["model"] == base:
                row += ["baseline", ""]
            else:
                lc_cell = ("withheld" if lc.get("withheld")
                           else f"{_f(lc.get('value'), 2)} {_ci(lc.get('ci_low'), lc.get('ci_high'), 2)}")
                row += [f"{_f(wr.get('value'), 2)} {_ci(wr.get('ci_low'), wr.get('ci_high'), 2)}", lc_cell]
                if lc.get("withheld"):
                    withheld.append(f"{r['model']}: {lc['withheld']}")
        table.add_row(*row)
    out.print(table)
    for note in withheld:
        console.print(f"Length-controlled win rate withheld for {escape(note)}.", soft_wrap=True)
    if bt.get("nu") is not None:
        console.print(f"Davidson tie parameter nu = {bt['nu']:.3f}.")
    ha = result.get("human_agreement")
    if ha:
        console.print(
            f"Agreement with human labels on {ha['n']} pairs ({ha['n_missing']} missing, {ha['n_unmatched']} unmatched): "
            f"{_pct(ha['with_ties'])} with ties, {_pct(ha['without_ties'])} without ties "
            f"(n={ha['n_without_ties']}), Cohen's kappa {_f(ha['kappa'], 2)}."
        )


def judge_command(
    run_args: Optional[List[str]] = typer.Argument(None, metavar="[RUN]...", help="Run directories to compare (or use --runs)."),
    runs: Optional[List[str]] = typer.Option(None, "--runs", "-r", help="A run directory, or LABEL=DIR; repeat, or list them after --runs."),
    judge: str = typer.Option("smollm2", "--judge", "-j", help="Judge model: smollm2 (embedded), gguf:PATH, hf:DIR|ID, openai:MODEL@URL."),
    mode: str = typer.Option("pairwise", "--mode", help="pairwise (both orders), single (1-10 grades), or a mode a plug-in adds."),
    goal: Optional[str] = typer.Option(None, "--goal", "-g", help="Judge by a goal's principles (built-in name or YAML); the judge must cite principle ids."),
    baseline: Optional[str] = typer.Option(None, "--baseline", "-b", help="Compare every run with this run label only (default: every pair of runs)."),
    task: Optional[List[str]] = typer.Option(None, "--task", "-t", help="Only items of this task (repeatable; default: every generation task the runs share)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="At most N items per task."),
    templates: Optional[Path] = typer.Option(None, "--templates", help="Judge prompt file: YAML like the defaults (docs/judging.md) or MT-Bench's judge_prompts.jsonl."),
    max_tokens: int = typer.Option(256, "--max-tokens", min=1, help="Longest judge answer, in tokens."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Judge run directory (default: runs/judge-...); the same command resumes it."),
    seed: int = typer.Option(0, "--seed", help="Generation seed of the judge (decoding is greedy)."),
    n_ctx: int = typer.Option(4096, "--n-ctx", min=512, help="Context length for llama.cpp judges (prompt + verdict)."),
) -> None:
    """Compare the generations of earlier runs on the same prompts with an LLM judge.

    Pairwise mode shows every pair in both orders; a verdict that changes with the
    order counts as a tie and is reported as inconsistency. Unparseable verdicts are
    kept with their raw text and counted. Every judge call is saved in the judge
    run's store, so re-running the same command resumes. Then run
    'aligngoals leaderboard DIR' for ratings.
    """
    from aligngoals.judges import default_judge_dir, judge_runs, load_templates, open_runs
    from aligngoals.models.registry import load_model

    specs = list(runs or []) + list(run_args or [])
    if len(specs) < 2:
        raise ConfigError("Pass at least two runs to compare.", hint="aligngoals judge --runs RUN_A RUN_B --judge smollm2")
    from aligngoals.judges.modes import JUDGE_MODES

    if mode not in JUDGE_MODES:
        raise ConfigError(f"Unknown --mode {mode!r}.", hint=f"Use one of: {', '.join(JUDGE_MODES.names())}.")
    refs = open_runs(specs)
    tset = load_templates(templates)
    goal_obj = None
    if goal:
        from aligngoals.goals import load_goal

        goal_obj = load_goal(goal)
    options = {"n_ctx": n_ctx} if judge == "smollm2" or judge.startswith("gguf:") else {}
    with console.status(f"Loading judge {judge} ..."):
        model = load_model(judge, **options)
    try:
        run_dir = out_dir or default_judge_dir(refs, model, mode, goal_obj.name if goal_obj else None)
        console.print(f"Judge run directory: [bold]{escape(str(run_dir))}[/]")
        with progress_bar("Judging", None) as bar:
            def factory(description: str, total: int):
                bar.describe(description)
                bar.set_total(total)
                return bar

            summary = judge_runs(
                refs, model, run_dir, mode=mode, goal=goal_obj, templates=tset, baseline=baseline,
                tasks=task or None, limit=limit, max_tokens=max_tokens, seed=seed, progress=factory,
                command=" ".join(shlex.quote(a) for a in ["aligngoals", *sys.argv[1:]]),
            )
    finally:
        model.close()
    sel = summary["selection"]
    console.print(f"Compared {sel['selected']} items ({', '.join(f'{k} {v}' for k, v in sel['tasks'].items())})"
                  + (f"; {sel['prompt_mismatch']} shared items left out because their prompts differ" if sel["prompt_mismatch"] else "")
                  + f". Requests: {summary['requests']['computed']} computed, {summary['requests']['cached']} from the store.")
    print_judge_summaries([summary])
    if summary.get("self_preference_risk"):
        console.print(f"[yellow]The judge is the same model as run(s) {escape(', '.join(summary['self_preference_risk']))}: "
                      "its verdicts may favour its own answers (self-preference). Prefer a judge that is not a contestant.[/]",
                      soft_wrap=True)
    from aligngoals.evaluate.samples import write_samples_page

    html = write_samples_page(run_dir, model={"name": f"judge {judge}", "backend": mode},
                              run={"id": Path(run_dir).name, "dir": str(run_dir)}, sections={"judge": summary})
    console.print(f"Wrote [bold]{escape(str(Path(run_dir) / 'judge.json'))}[/] and [bold]{escape(str(html))}[/]. "
                  f"Next: aligngoals leaderboard {escape(str(run_dir))}")


def leaderboard_command(
    judge_runs_: List[Path] = typer.Argument(..., metavar="JUDGE_RUN...", help="Judge run directories (from 'aligngoals judge'); their battles are pooled."),
    baseline: Optional[str] = typer.Option(None, "--baseline", "-b", help="Run label for win rates and length-controlled win rates (default: the judge run's baseline)."),
    ties: str = typer.Option("half", "--ties", help="Bradley-Terry tie model: half (a tie is half a win) or davidson."),
    elo_k: float = typer.Option(16.0, "--elo-k", min=0.001, help="Elo K-factor (averaged over random battle orders)."),
    n_boot: int = typer.Option(1000, "--n-boot", min=0, help="Bootstrap replicates for the intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap and of the Elo orders."),
    human: Optional[Path] = typer.Option(None, "--human", help="JSONL of human labels {task, item_id, model_a, model_b, winner}: report agreement."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Where to write the leaderboard JSON (default: leaderboard.json in the first judge run)."),
) -> None:
    """Rate the compared runs from stored judge verdicts: Bradley-Terry and Elo with intervals, win rates, judge reliability."""
    from aligngoals.io import atomic_write_json
    from aligngoals.judges import judge_leaderboard, read_human_labels

    if ties not in ("half", "davidson"):
        raise ConfigError(f"Unknown --ties {ties!r}.", hint="Use half or davidson.")
    labels = read_human_labels(human) if human else None
    result = judge_leaderboard(judge_runs_, baseline=baseline, ties=ties, elo_k=elo_k, n_boot=n_boot,  # type: ignore[arg-type]
                               seed=seed, human=labels)
    print_leaderboard(result)
    print_judge_summaries(result["judges"])
    path = json_out or Path(judge_runs_[0]) / "leaderboard.json"
    atomic_write_json(path, result)
    console.print(f"Wrote [bold]{escape(str(path))}[/].")


def register(app: typer.Typer) -> None:
    app.command("judge")(judge_command)
    app.command("leaderboard")(leaderboard_command)
