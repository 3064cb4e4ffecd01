"""``aligngoals eval`` and ``aligngoals tasks``: run tasks on a model, resumably."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from aligngoals.cli.common import MODEL_ARG_HELP, console, out, parse_model_args, progress_bar
from aligngoals.errors import ConfigError


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


#: Breakdown groups with fewer items than this are left out of the console table unless asked for.
SMALL_GROUP_N = 10


def print_metrics_table(report: dict, all_groups: bool = False) -> None:
    table = Table(title=f"{report['model']['name']} · run {report['run']['id']}")
    for col in ("task", "n", "metric", "value", "95% CI"):
        table.add_column(col, justify="right" if col in ("n", "value") else "left")
    for name, t in report["tasks"].items():
        if t.get("skipped"):
            # The full reason (every folder looked in) is in report.json and was logged above.
            table.add_row(name, "0", "skipped", "–", escape(t["skipped"].split(" (looked in")[0]))
            continue
        for metric, m in t["metrics"].items():
            table.add_row(name, str(m["n"]), metric, _fmt(m["value"]), f"[{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}]")
    out.print(table)
    print_breakdowns(report, all_groups=all_groups)


def print_breakdowns(report: dict, all_groups: bool = False) -> None:
    """Per-group metrics (BBQ categories, CrowS-Pairs bias types, ...) and the instruction
    generalization levels, each value with its interval.

    Groups of fewer than :data:`SMALL_GROUP_N` items are left out unless ``all_groups``:
    their intervals span most of [0, 1] (TruthfulQA's 38 categories at 200 items gave
    132 rows with n = 1 to 4); report.json keeps every group.
    """
    rows = [(name, group, metric, m) for name, t in report["tasks"].items()
            for group, metrics in (t.get("breakdown") or {}).items() for metric, m in metrics.items()]
    hidden = {(name, group) for name, group, _, m in rows if not all_groups and (m.get("n") or 0) < SMALL_GROUP_N}
    rows = [r for r in rows if (r[0], r[1]) not in hidden]
    if rows:
        table = Table(title="Breakdown by group")
        for col in ("task", "group", "n", "metric", "value", "95% CI"):
            table.add_column(col, justify="right" if col in ("n", "value") else "left")
        for name, group, metric, m in rows:
            table.add_row(name, escape(str(group)), str(m["n"]), metric, _fmt(m["value"]),
                          f"[{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}]")
        out.print(table)
    if hidden:
        console.print(f"{len(hidden)} breakdown groups with fewer than {SMALL_GROUP_N} items are not shown "
                      "(they are in report.json; --all-groups shows them).", soft_wrap=True)
    levels = (report.get("sections") or {}).get("generalization") or {}
    if levels:
        table = Table(title="Instruction generalization levels (survey sec. 3.1.2)")
        for col in ("level", "task", "n", "metric", "value", "95% CI"):
            table.add_column(col, justify="right" if col in ("n", "value") else "left")
        for level, tasks in levels.items():
            for name, metrics in tasks.items():
                for metric, m in metrics.items():
                    table.add_row(level, name, str(m["n"]), metric, _fmt(m["value"]),
                                  f"[{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}]")
        out.print(table)


def limits_note(report: dict) -> str | None:
    """One line saying which tasks were cut to fewer items than their data holds."""
    cut = [f"{name} {t['n']}/{t['n_available']}" for name, t in report["tasks"].items()
           if t.get("limit") is not None and t.get("n_available", 0) > t.get("n", 0)]
    if not cut:
        return None
    return ("Item limits applied (suite or task defaults keep runs short; --limit N changes them): " + ", ".join(cut))


def print_rm_pairs(report: dict) -> None:
    """Per-section and per-subset accuracy of every rm_pairs task, with intervals."""
    for name, t in report["tasks"].items():
        block = t.get("rm_pairs")
        if not block:
            continue
        table = Table(title=f"{name}: accuracy by {block['scorer']} (chosen rated above rejected; ties 0.5)")
        for col in ("section / subset", "n", "accuracy", "95% CI"):
            table.add_column(col, justify="right" if col in ("n", "accuracy") else "left")
        for sec, v in block["sections"].items():
            table.add_row(f"[bold]{escape(sec)}[/]", str(v["n"]), _fmt(v["value"]), f"[{_fmt(v['ci_low'])}, {_fmt(v['ci_high'])}]")
        for sub, v in block["subsets"].items():
            table.add_row(f"  {escape(sub)}", str(v["n"]), _fmt(v["value"]), f"[{_fmt(v['ci_low'])}, {_fmt(v['ci_high'])}]")
        out.print(table)
        unmapped = block["unmapped_subsets"]
        console.print(f"{name}: score (mean of sections) {_fmt(block['score'])}"
                      + (f"; subsets in no section: {', '.join(unmapped)}" if unmapped else ""), soft_wrap=True)


def tasks_list() -> None:
    """List the built-in tasks (YAML and Python) and suites."""
    from aligngoals.evaluate.suites import list_all_tasks, list_suites, load_suite

    table = Table(title="Built-in tasks")
    for col in ("task", "level", "type", "metrics", "data", "description"):
        table.add_column(col)
    for name, spec in list_all_tasks().items():
        data = spec.data.path or f"datasets:{spec.data.datasets.path}"  # type: ignore[union-attr]
        table.add_row(name, spec.level, spec.type, ", ".join(spec.metrics), data, spec.description)
    out.print(table)
    suites = Table(title="Built-in suites")
    suites.add_column("suite")
    suites.add_column("tasks")
    suites.add_column("description")
    for name in list_suites():
        s = load_suite(name)
        suites.add_row(name, ", ".join(Path(e.task).stem for e in s.entries()), s.description)
    out.print(suites)
    out.print("Data paths are relative to --data-dir (the project ships no datasets); "
              "a task whose file is missing is skipped and reported as such.")


def eval_command(
    model: str = typer.Option("smollm2", "--model", "-m", help="Model: smollm2 (embedded), gguf:PATH, hf:DIR|ID|PATH.gguf, vllm:DIR|ID|smollm2, openai:MODEL@URL."),
    suite: Optional[str] = typer.Option(None, "--suite", "-s", help="A built-in suite name (see 'aligngoals tasks list') or a suite YAML path."),
    tasks: Optional[str] = typer.Option(None, "--tasks", "-t", help="Comma-separated task names, task YAML paths or module:NAME Python tasks."),
    goal: Optional[str] = typer.Option(None, "--goal", "-g", help="A goal (built-in name or file): runs the suites that evaluate it."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory. Default: runs/<run-id>; the same command resumes the same run."),
    seed: int = typer.Option(0, "--seed", help="Seed for sampling, few-shot draws and bootstrap intervals."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use at most N items of each task (overrides suite and task defaults)."),
    limit_mode: Optional[str] = typer.Option(None, "--limit-mode", help="Which N items a limit keeps: 'first' (as lm-eval's --limit) or 'random' (a seeded sample). Default: each task's own setting (random for the standard benchmarks); the report says which was used."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder that relative data paths in task files resolve against."),
    device: Optional[str] = typer.Option(None, "--device", help="hf backend: cpu, cuda, cuda:0 (default: cuda if available)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="hf backend: batch size."),
    prefix_token_id: Optional[int] = typer.Option(None, "--prefix-token-id", min=0, help="Token an empty context is conditioned on (default: the tokenizer's BOS, else its end-of-text, as lm-eval; its prefix_token_id model argument)."),
    no_prefix_reuse: bool = typer.Option(False, "--no-prefix-reuse", help="Recompute shared contexts for every choice (for benchmarking)."),
    in_context_goal: Optional[str] = typer.Option(None, "--in-context-goal", help="State this goal's principles (priority order) in the system prompt: the zero-training alignment baseline."),
    scorer: Optional[str] = typer.Option(None, "--scorer", help="rm:DIR: also score every generated answer with a reward model ('aligngoals align reward' output); adds a 'reward' metric."),
    ref_model: Optional[str] = typer.Option(None, "--ref-model", help="rm_pairs task: score the evaluated model (a DPO policy) by its implicit reward log pi - log pi_ref against this reference model."),
    section_map: Optional[Path] = typer.Option(None, "--section-map", help="rm_pairs task: YAML 'sections: {Name: [subset, ...]}' replacing RewardBench's section map."),
    all_groups: bool = typer.Option(False, "--all-groups", help=f"Print breakdown groups of fewer than {SMALL_GROUP_N} items too (report.json always has them)."),
    judge: Optional[str] = typer.Option(None, "--judge", "-j", help="With --goal: grade the value suite's safety replies with this model (any backend) instead of the evaluated one."),
    model_arg: Optional[List[str]] = typer.Option(None, "--model-arg", help=MODEL_ARG_HELP),
) -> None:
    """Evaluate a model on a suite, a goal's suites, or tasks; writes report.json and report.html to the run directory.

    Every model answer is saved in the run's SQLite store as it completes, so an
    interrupted run resumes where it stopped when you re-run the same command.
    Tasks whose data file is missing under --data-dir are skipped and listed as
    skipped in the report.
    """
    from aligngoals.pipeline import evaluate

    if limit_mode not in (None, "first", "random"):
        raise ConfigError(f"--limit-mode {limit_mode!r} is not 'first' or 'random'.")

    with progress_bar("Evaluating", None) as bar:
        def factory(description: str, total: int):
            bar.describe(description)
            bar.set_total(total)
            return bar

        report = evaluate(
            model, suite=suite, tasks=tasks, goal=goal, out=out_dir, seed=seed, limit=limit, data_dir=data_dir,
            in_context_goal=in_context_goal, scorer=scorer, judge=judge, device=device, batch_size=batch_size,
            prefix_reuse=not no_prefix_reuse, model_options=parse_model_args(model_arg), progress=factory,
            prefix_token_id=prefix_token_id, limit_mode=limit_mode, ref_model=ref_model, section_map=section_map,
            command=" ".join(shlex.quote(a) for a in ["aligngoals", *sys.argv[1:]]),
            log=lambda msg: console.print(f"[yellow]{escape(msg)}[/]", soft_wrap=True),
        )
    run_dir = Path(report["run"]["dir"])
    j, h = run_dir / "report.json", run_dir / "report.html"
    print_metrics_table(report, all_groups=all_groups)
    print_rm_pairs(report)
    note = limits_note(report)
    if note:
        console.print(note, soft_wrap=True)
    console.print(f"Wrote [bold]{j}[/] and [bold]{h}[/] "
                  f"({report['run']['requests_computed']} requests computed, {report['run']['requests_cached']} from the store, "
                  f"{report['run']['wall_s']} s).")


def register(app: typer.Typer) -> None:
    tasks_app = typer.Typer(help="List and inspect evaluation tasks and suites.", no_args_is_help=True)
    app.add_typer(tasks_app, name="tasks")
    tasks_app.command("list")(tasks_list)
    app.command("eval")(eval_command)
