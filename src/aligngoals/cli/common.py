"""Shared CLI plumbing: one console, error reporting, progress bars.

Why: every command must turn user mistakes into a one-paragraph message and
show progress the same way; keeping that here keeps the commands short.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)
out = Console()

STATE = {"debug": False}


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator["ProgressHandle"]:
    """A rich progress bar on stderr; yields a handle whose ``advance(n)`` moves it."""
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as prog:
        task = prog.add_task(description, total=total)
        yield ProgressHandle(prog, task)


class ProgressHandle:
    def __init__(self, prog: Progress, task: int) -> None:
        self._prog = prog
        self._task = task

    def advance(self, n: int = 1) -> None:
        self._prog.advance(self._task, n)

    def describe(self, text: str) -> None:
        self._prog.update(self._task, description=text)

    def set_total(self, total: int) -> None:
        self._prog.update(self._task, total=total)
