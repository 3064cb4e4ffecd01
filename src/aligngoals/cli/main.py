"""Entry point: ``aligngoals [--debug] COMMAND ...``.

Each command group lives in its own module and registers itself here.
"""

from __future__ import annotations

import sys
import traceback

import typer
from rich.markup import escape

from aligngoals.cli.common import STATE, console
from aligngoals.errors import AligngoalsError

app = typer.Typer(
    name="aligngoals",
    help=(
        "Make what a language model is aligned to explicit, measurable and trainable.\n\n"
        "Goals come in three levels (instructions, preferences, values). Evaluate a model "
        "against them (eval, survey, judge), align it (align) and compare before and after."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of short error messages."),
) -> None:
    STATE["debug"] = debug


def _register_commands() -> None:
    from aligngoals.cli import (
        align_cmd,
        convert_cmd,
        data_cmd,
        eval_cmd,
        goals_cmd,
        judge_cmd,
        pipeline_cmd,
        safety_cmd,
        survey_cmd,
        synth_cmd,
    )

    for module in (eval_cmd, goals_cmd, data_cmd, judge_cmd, survey_cmd, align_cmd, synth_cmd, pipeline_cmd,
                   safety_cmd, convert_cmd):
        module.register(app)


_register_commands()


def main() -> None:
    debug = "--debug" in sys.argv[1:]
    try:
        app()
    except AligngoalsError as exc:
        if debug:
            traceback.print_exc()
        console.print(f"[bold red]Error:[/] {escape(exc.message)}", soft_wrap=True, highlight=False, markup=True)
        if exc.hint:
            console.print(f"[yellow]Fix:[/] {escape(exc.hint)}", soft_wrap=True, highlight=False)
        if not debug:
            console.print("[dim](run with --debug for the traceback)[/]")
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted.[/] Completed requests are saved in the run store; re-run the same command to resume.")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
