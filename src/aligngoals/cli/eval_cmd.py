"""``aligngoals eval`` and ``aligngoals tasks``: run tasks on a model, resumably."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..errors import ConfigError
from .common import console, out, progress_bar


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def print_metrics_table(report: dict) -> None:
    table = Table(title=f"{report['model']['name']} · run {report['run']['id']}")
    for col in ("task", "n", "metric", "value", "95% CI"):
        table.add_column(col, justify="right" if col in ("n", "value") else "left")
    for name, t in report["tasks"].items():
        for metric, m in t["metrics"].items():
            table.add_row(name, str(m["n"]), metric, _fmt(m["value"]), f"[{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}]")
    out.print(table)


def register(app: typer.Typer) -> None:
    tasks_app = typer.Typer(help="List and inspect evaluation tasks and suites.", no_args_is_help=True)
    app.add_typer(tasks_app, name="tasks")

    @tasks_app.command("list")
    def tasks_list() -> None:
        """List the built-in tasks and suites."""
        from ..evaluate.suites import list_builtin_tasks, list_suites, load_suite
        from ..evaluate.tasks.spec import load_task_spec

        table = Table(title="Built-in tasks")
        for col in ("task", "level", "type", "description"):
            table.add_column(col)
        for name, path in list_builtin_tasks().items():
            spec = load_task_spec(path)
            table.add_row(name, spec.level, spec.type, spec.description)
        out.print(table)
        suites = Table(title="Built-in suites")
        suites.add_column("suite")
        suites.add_column("tasks")
        suites.add_column("description")
        for name in list_suites():
            s = load_suite(name)
            suites.add_row(name, ", ".join(Path(t).stem for t in s.tasks), s.description)
        out.print(suites)

    @app.command("eval")
    def eval_command(
        model: str = typer.Option("smollm2", "--model", "-m", help="Model: smollm2 (embedded), gguf:PATH, hf:DIR|ID|PATH.gguf."),
        suite: Optional[str] = typer.Option(None, "--suite", "-s", help="A built-in suite name (see 'aligngoals tasks list') or a suite YAML path."),
        tasks: Optional[str] = typer.Option(None, "--tasks", "-t", help="Comma-separated task names or task YAML paths."),
        out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory. Default: runs/<run-id>; the same command resumes the same run."),
        seed: int = typer.Option(0, "--seed", help="Seed for sampling, few-shot draws and bootstrap intervals."),
        limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N items of each task."),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder that relative data paths in task files resolve against."),
        device: Optional[str] = typer.Option(None, "--device", help="hf backend: cpu, cuda, cuda:0 (default: cuda if available)."),
        batch_size: int = typer.Option(8, "--batch-size", min=1, help="hf backend: batch size."),
        no_prefix_reuse: bool = typer.Option(False, "--no-prefix-reuse", help="Recompute shared contexts for every choice (for benchmarking)."),
    ) -> None:
        """Evaluate a model on a suite or on tasks; writes report.json and report.html to the run directory.

        Every model answer is saved in the run's SQLite store as it completes, so an
        interrupted run resumes where it stopped when you re-run the same command.
        """
        from ..evaluate.runner import EvalSettings, default_run_id, run_evaluation
        from ..evaluate.suites import load_suite, resolve_task, suite_tasks
        from ..models.registry import load_model
        from ..report import write_report

        if suite and tasks:
            raise ConfigError("Pass either --suite or --tasks, not both.")
        if not suite and not tasks:
            suite = "quick"
        if suite:
            spec = load_suite(suite)
            task_specs = suite_tasks(spec)
            label = spec.name
        else:
            refs = [t.strip() for t in (tasks or "").split(",") if t.strip()]
            task_specs = [resolve_task(t) for t in refs]
            label = "+".join(t.name for t in task_specs)
        settings = EvalSettings(seed=seed, limit=limit, suite=suite, data_dir=str(data_dir) if data_dir else None)
        with console.status(f"Loading model {model} ..."):
            m = load_model(model, device=device, batch_size=batch_size)
        m.prefix_reuse = not no_prefix_reuse
        run_dir = out_dir or Path("runs") / default_run_id(m.name, label, settings)
        console.print(f"Run directory: [bold]{run_dir}[/]")
        with progress_bar("Evaluating", None) as bar:
            def factory(description: str, total: int):
                bar.describe(description)
                bar.set_total(total)
                return bar

            report = run_evaluation(m, task_specs, run_dir, settings, progress=factory,
                                    command=" ".join(shlex.quote(a) for a in ["aligngoals", *sys.argv[1:]]))
        m.close()
        j, h = write_report(report, run_dir)
        print_metrics_table(report)
        console.print(f"Wrote [bold]{j}[/] and [bold]{h}[/] "
                      f"({report['run']['requests_computed']} requests computed, {report['run']['requests_cached']} from the store, "
                      f"{report['run']['wall_s']} s).")
