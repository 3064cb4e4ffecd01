"""CLI commands for this area (being written; registers nothing yet)."""

import typer


def register(app: typer.Typer) -> None:
    return None
