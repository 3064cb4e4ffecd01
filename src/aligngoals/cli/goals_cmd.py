"""``aligngoals goals list|show|validate``: the goal library and user goal files.

A thin layer over :mod:`aligngoals.goals`; validation rules live there so that
the CLI and the Python API accept exactly the same files.
"""

from __future__ import annotations

import json
from typing import Optional

import typer
import yaml
from rich.table import Table

from aligngoals.cli.common import console, out
from aligngoals.errors import ConfigError


def list_cmd() -> None:
    """List the built-in goals and value systems."""
    from aligngoals.goals import list_goals, list_value_systems, load_goal, load_value_system

    t = Table(title="Built-in goals")
    for col in ("name", "level", "principles (priority order)", "description"):
        t.add_column(col, overflow="fold")
    for name in list_goals():
        g = load_goal(name)
        t.add_row(name, g.level, " > ".join(p.id for p in g.principles_in_priority_order()), g.description)
    out.print(t)
    v = Table(title="Built-in value systems")
    for col in ("name", "title", "dimensions", "structure"):
        v.add_column(col, overflow="fold")
    for name in list_value_systems():
        vs = load_value_system(name)
        structure = []
        if vs.groups:
            structure.append(f"{len(vs.groups)} groups")
        if vs.circular_order:
            structure.append("circular order")
        if any(g.opposite for g in vs.groups):
            structure.append("opposing groups")
        if any(d.low_pole for d in vs.dimensions):
            structure.append("bipolar dimensions")
        dims = ", ".join(d.id + (" (optional)" if d.optional else "") for d in vs.dimensions)
        v.add_row(name, vs.title, dims, ", ".join(structure) or "-")
    out.print(v)


def show_cmd(
    name: str = typer.Argument(..., help="A built-in goal or value system name, or a goal/value-system YAML or JSON file."),
    as_: Optional[str] = typer.Option(None, "--as", help="Print the normalized spec as yaml or json instead of tables."),
) -> None:
    """Show a goal (principles in priority order, with rules, examples and value dimensions) or a value system."""
    from aligngoals.goals import load_spec_file

    sf = load_spec_file(name)
    spec = sf.spec
    if as_ is not None:
        data = spec.model_dump(mode="json")
        if as_ == "json":
            out.print_json(json.dumps(data, ensure_ascii=False))
        elif as_ == "yaml":
            out.print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100), markup=False, highlight=False)
        else:
            raise ConfigError(f"--as {as_!r}: expected yaml or json.")
        return
    if sf.kind == "goal":
        _show_goal(spec)
    else:
        _show_value_system(spec)


def validate_cmd(
    files: list[str] = typer.Argument(..., help="Goal or value-system files (YAML or JSON) to check."),
) -> None:
    """Check goal and value-system files.

    Checks the schema (unknown keys are errors), unique principle ids and priorities, and that every 'system:dimension' reference names a real dimension; warns about missing data files and unknown suites. Stops with an error naming the file and field at the first invalid file.
    """  # noqa: E501
    from aligngoals.evaluate.suites import list_suites
    from aligngoals.goals import load_spec_file

    known = set(list_suites())
    for f in files:
        sf = load_spec_file(f, known_suites=known)
        spec = sf.spec
        if sf.kind == "goal":
            console.print(
                f"[green]OK[/] {f}: goal [bold]{spec.name}[/] (level {spec.level}, {len(spec.principles)} principle(s), "
                f"{len(spec.dimension_refs())} dimension reference(s))"
            )
        else:
            console.print(f"[green]OK[/] {f}: value system [bold]{spec.name}[/] ({len(spec.dimensions)} dimension(s), {len(spec.groups)} group(s))")
        for w in sf.warnings:
            console.print(f"  [yellow]warning:[/] {w}")


def register(app: typer.Typer) -> None:
    goals_app = typer.Typer(
        help=(
            "Alignment goals as data: goals with prioritised principles (hhh, constitution, or your own YAML) and the "
            "value systems they refer to (schwartz, moral_foundations, hofstede, ethics)."
        ),
        no_args_is_help=True,
    )
    app.add_typer(goals_app, name="goals")
    goals_app.command("list")(list_cmd)
    goals_app.command("show")(show_cmd)
    goals_app.command("validate")(validate_cmd)


def _show_goal(g) -> None:
    out.print(f"[bold]{g.name}[/] (level {g.level}, version {g.version})")
    if g.description:
        out.print(g.description)
    for p in g.principles_in_priority_order():
        out.print(f"\n[bold]{p.priority}. {p.id}[/]: {p.statement}")
        if p.explanation:
            out.print(f"   [dim]{p.explanation}[/]")
        for r in p.rules:
            out.print(f"   - {r}")
        for e in p.positive_examples:
            out.print(f"   [green]+[/] {e}")
        for e in p.negative_examples:
            out.print(f"   [red]-[/] {e}")
        if p.dimensions:
            out.print(f"   dimensions: {', '.join(p.dimensions)}")
    if len(g.principles) > 1:
        out.print("\nWhen principles conflict, the one with the smaller priority number wins.")
    if g.data:
        out.print("\n[bold]Data[/]")
        for d in g.data:
            out.print(f"  {d.path} ({d.format or 'format detected'}, {d.role}) {d.description}")
    if g.suites:
        out.print(f"\n[bold]Suites[/]: {', '.join(g.suites)}")


def _show_value_system(vs) -> None:
    out.print(f"[bold]{vs.title}[/] ({vs.name})")
    if vs.description:
        out.print(vs.description)
    if vs.reference:
        out.print(f"[dim]{vs.reference}[/]")
    t = Table(title="Dimensions")
    for col in ("id", "name", "groups", "definition"):
        t.add_column(col, overflow="fold")
    has_poles = any(d.low_pole for d in vs.dimensions)
    if has_poles:
        t.add_column("low / high", overflow="fold")
    for d in vs.dimensions:
        row = [d.id + (" (optional)" if d.optional else ""), d.name, ", ".join(d.groups), d.definition]
        if has_poles:
            row.append(f"{d.low_pole or ''} / {d.high_pole or ''}")
        t.add_row(*row)
    out.print(t)
    if vs.groups:
        g = Table(title="Higher-order groups")
        for col in ("id", "members", "opposite", "definition"):
            g.add_column(col, overflow="fold")
        for grp in vs.groups:
            g.add_row(grp.id, ", ".join(vs.members(grp.id)), grp.opposite or "-", grp.definition)
        out.print(g)
    if vs.circular_order:
        out.print("[bold]Circular order[/] (neighbours are compatible; values in opposing groups conflict):")
        out.print("  " + " -> ".join(vs.circular_order) + f" -> {vs.circular_order[0]}")
    if vs.instruments:
        out.print("[bold]Instruments[/]: " + "; ".join(f"{k}: {v}" for k, v in vs.instruments.items()))
