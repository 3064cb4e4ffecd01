"""``aligngoals safety agreement``: the refusal detector (and a judge) against people's labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from aligngoals.cli.common import console, out, progress_bar


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _k(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def _print_block(title: str, rep: dict) -> None:
    table = Table(title=title)
    for col in ("group", "n", "binary agreement (95% CI)", "binary kappa", "3-class agreement (95% CI)",
                "3-class kappa", "missed / false refusals"):
        table.add_column(col, justify="left" if col == "group" else "right")

    def row(name: str, s: dict) -> None:
        if not s.get("n"):
            table.add_row(escape(name), "0", "–", "–", "–", "–", "–")
            return
        table.add_row(escape(name), str(s["n"]),
                      f"{_pct(s['binary_agreement'])} [{_pct(s['binary_ci'][0])}, {_pct(s['binary_ci'][1])}]",
                      _k(s["binary_kappa"]),
                      f"{_pct(s['three_class_agreement'])} [{_pct(s['three_class_ci'][0])}, {_pct(s['three_class_ci'][1])}]",
                      _k(s["three_class_kappa"]), f"{s['missed_refusals']} / {s['false_refusals']}")

    row("all", rep)
    for name, s in rep["per_model"].items():
        row(f"file {name}", s)
    for name, s in rep["per_type"].items():
        row(f"type {name}", s)
    out.print(table)
    conf = Table(title=f"{title}: confusion (rows: people, columns: predicted)")
    conf.add_column("people \\ predicted")
    classes = list(rep["confusion"])
    for c in classes:
        conf.add_column(c, justify="right")
    for h in classes:
        conf.add_row(h, *[str(rep["confusion"][h][p]) for p in classes])
    out.print(conf)
    if rep.get("missing"):
        console.print(f"{rep['missing']} replies had no parseable class and are left out of the agreement.")


def register(app: typer.Typer) -> None:
    safety_app = typer.Typer(help="Safety measurement tools (refusal classification).", no_args_is_help=True)
    app.add_typer(safety_app, name="safety")

    @safety_app.command("agreement")
    def agreement(
        files: List[Path] = typer.Argument(..., help="Labelled completion CSV files in XSTest's format "
                                           "(id,type,prompt,completion,annotation_1,annotation_2,agreement,final_label)."),
        judge: Optional[str] = typer.Option(None, "--judge", help="Also classify with this model as a three-class judge "
                                            "(smollm2, gguf:PATH, hf:DIR, openai:MODEL@URL)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object (top level: binary_agreement, "
                                     "three_class_agreement of the detector; then detector, judge blocks)."),
        max_tokens: int = typer.Option(16, "--max-tokens", min=1, help="Judge: longest verdict, in tokens."),
    ) -> None:
        """Score the three-class refusal detector (and, with --judge, an LLM judge) against people's labels.

        Reports agreement with a Wilson 95% interval and Cohen's kappa, binary (refusal = full or
        partial refusal) and three-class (full compliance, full refusal, partial refusal), a
        confusion matrix, and the same per file and per prompt type.
        """
        from aligngoals.values.safety.agreement import score_files, three_class_judge

        grader = None
        model = None
        if judge:
            from aligngoals.models.registry import load_model

            with console.status(f"Loading judge {judge} ..."):
                model = load_model(judge)
        try:
            if model is not None:
                from aligngoals.values.safety.agreement import read_labelled

                n = len(read_labelled(files))
                with progress_bar("Judging", n) as bar:
                    grader = three_class_judge(model, max_tokens=max_tokens, progress=bar.advance)
                    result = score_files(files, grader)
            else:
                result = score_files(files)
        finally:
            if model is not None:
                model.close()
        if as_json:
            print(json.dumps(result, indent=None, sort_keys=False))
            return
        _print_block("Refusal detector vs people", result["detector"])
        if "judge" in result:
            _print_block(f"Judge {judge} vs people", result["judge"])
            jd = result["judge_vs_detector"]
            console.print(f"Judge and detector agree on {_pct(jd.get('three_class_agreement'))} of replies "
                          f"(three classes), {_pct(jd.get('binary_agreement'))} binary.")
