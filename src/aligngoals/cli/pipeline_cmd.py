"""``aligngoals pipeline RECIPE --out DIR``: the whole loop (synthesize, align, evaluate, compare) in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aligngoals.cli.common import console


def register(app: typer.Typer) -> None:
    @app.command("pipeline")
    def pipeline(
        recipe: str = typer.Argument(..., help="A recipe YAML file or a built-in recipe: self-align-hhh, constitutional-hhh, dpo-hh-harmless."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder: one sub-folder per stage, lineage.json, report.json and report.md. Re-run the same command to resume."),
        teacher: Optional[str] = typer.Option(None, "--teacher", help="A separate model (any backend, e.g. a served one) for the synthesis and feedback stages; default: the recipe's model teaches itself."),
        judge: Optional[str] = typer.Option(None, "--judge", help="A capable model (any backend, e.g. a served one) that grades replies 1-10 against the goal's principles: the 'rubric' measure of evaluate stages. Without it that measure is withheld."),
        model: Optional[str] = typer.Option(None, "--model", "-m", help="Replace the recipe's base model."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Folder that '{data_dir}' in the recipe's paths means (default ../shared/data)."),
        seed: Optional[int] = typer.Option(None, "--seed"),
        list_recipes: bool = typer.Option(False, "--list", help="List the built-in recipes and exit."),
    ) -> None:
        """Run a recipe: turn a goal into data, train on it and measure before and after.

        Each stage writes its own folder in OUT with a stage.json; a re-run skips the
        finished stages, continues an interrupted one (its model calls are in the run
        store, its training in checkpoints), and re-runs a stage whose settings changed
        together with every stage after it. lineage.json links goal, data, method,
        settings and the hashes of the base and the output model; report.md shows
        before/after beside the in-context baseline (principles in the prompt, no training).
        """
        from aligngoals.pipeline.recipe import builtin_recipes, load_recipe
        from aligngoals.pipeline.run import run_pipeline
        from aligngoals.pipeline.summary import report_markdown

        if list_recipes:
            for name, path in sorted(builtin_recipes().items()):
                console.print(f"{name}: {path}")
            return
        spec, folder = load_recipe(recipe, teacher=teacher, judge=judge, model=model, data_dir=data_dir, seed=seed)
        report = run_pipeline(spec, folder, out, note=lambda m: console.print(f"[dim]{m}[/]"))
        typer.echo(report_markdown(report))
        console.print(f"Report: {out / 'report.md'}  lineage: {out / 'lineage.json'}")
