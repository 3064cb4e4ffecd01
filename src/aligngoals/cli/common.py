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


MODEL_ARG_HELP = (
    "Backend option KEY=VALUE, repeatable; passed to the model backend as is (values parse as JSON "
    "numbers/booleans, else text). vllm: tensor_parallel_size=4, pipeline_parallel_size=2, data_parallel_size=2, "
    "gpu_memory_utilization=0.85, max_model_len=4096, dtype=bfloat16, distributed_executor_backend=ray; "
    "hf: device=cuda, dtype=bfloat16; smollm2 or gguf: n_ctx=4096, n_threads=8, n_threads_batch=8, batch_sequences=1."
)


def parse_model_args(pairs: list[str] | None) -> dict:
    """``["tensor_parallel_size=4", "dtype=bfloat16"]`` -> ``{"tensor_parallel_size": 4, "dtype": "bfloat16"}``."""
    import json

    from aligngoals.errors import ConfigError

    options: dict = {}
    for raw in pairs or []:
        key, sep, value = raw.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConfigError(f"--model-arg {raw!r} is not KEY=VALUE with KEY a Python identifier.",
                              hint="Write e.g. --model-arg tensor_parallel_size=4 --model-arg dtype=bfloat16.")
        if key in options:
            raise ConfigError(f"--model-arg {key} is given twice.", hint="Pass each option once.")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options
