"""``aligngoals data formats|inspect|convert``: look at a dataset and normalize it.

A thin layer over :mod:`aligngoals.data`: reading, detection, counting and
writing all happen there; this module only parses options and prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from aligngoals.cli.common import console, out
from aligngoals.errors import ConfigError

_FORMAT_HELP = "Input format (see 'aligngoals data formats'). Detected from the file when omitted."
_SKIP_HELP = "Skip rows that do not fit the format and report how many were skipped and why (default: stop at the first bad row)."
_OPT_HELP = "Reader option KEY=VALUE, repeatable (e.g. --opt inventory=PVQ40, --opt aspect=honesty, --opt split=test)."
_MAP_HELP = "Field mapping RECORD_FIELD=SOURCE_FIELD for jsonl/json/csv/hf_datasets, repeatable (e.g. --map prompt=question)."
_RT_HELP = "Record type to build from a generic file: instruction, conversation, preference_pair, ranking, rating, multiple_choice, social_norm, questionnaire_item."


def _options(opts: Optional[list[str]], maps: Optional[list[str]], record_type: Optional[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for o in opts or []:
        if "=" not in o:
            raise ConfigError(f"--opt {o!r}: expected KEY=VALUE.", hint="For example --opt inventory=PVQ40.")
        k, v = o.split("=", 1)
        options[k.strip()] = v.strip()
    if maps:
        from aligngoals.data import parse_mapping

        options["mapping"] = parse_mapping(",".join(maps))
    if record_type:
        options["record_type"] = record_type
    return options


def _short(v: Any, width: int = 160) -> Any:
    if isinstance(v, str):
        return v if len(v) <= width else v[: width - 3] + "..."
    if isinstance(v, list):
        items = [_short(x, width) for x in v[:6]]
        return items + [f"... ({len(v) - 6} more)"] if len(v) > 6 else items
    if isinstance(v, dict):
        return {k: _short(x, width) for k, x in v.items()}
    return v


def _print_report_skips(rep) -> None:
    if rep.skipped:
        console.print(f"[yellow]Skipped {rep.skipped} bad row(s):[/]")
        for reason, n in rep.skip_reasons.most_common(10):
            console.print(f"  {n} x {reason}")
        for ex in rep.skip_examples[:3]:
            console.print(f"  [dim]e.g. {ex}[/]")


def formats_cmd(name: Optional[str] = typer.Argument(None, help="Show one format in detail.")) -> None:
    """List the readable formats, or describe one (options and an example row)."""
    from aligngoals.data import format_specs, get_format

    if name:
        spec = get_format(name)
        out.print(f"[bold]{spec.name}[/] ({spec.group}) -> {', '.join(spec.produces)}")
        out.print(spec.description)
        if spec.options:
            out.print("[bold]Options[/] (--opt KEY=VALUE):")
            for k, v in spec.options.items():
                out.print(f"  {k}: {v}")
        if spec.example:
            out.print("[bold]Example input[/]:")
            out.print(spec.example, markup=False, highlight=False)
        return
    table = Table(title="Data formats")
    for col in ("format", "group", "records", "description"):
        table.add_column(col, overflow="fold")
    for spec in sorted(format_specs(), key=lambda s: (s.group, s.name)):
        table.add_row(spec.name, spec.group, ", ".join(spec.produces) if len(spec.produces) < 4 else "any", spec.description)
    out.print(table)


def inspect_cmd(
    file: str = typer.Argument(..., help="Data file (.gz is read transparently), a saved HF dataset folder, or a hub name with --format hf_datasets."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help=_FORMAT_HELP),
    skip_bad: bool = typer.Option(False, "--skip-bad", help=_SKIP_HELP),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Read only the first N records."),
    examples: int = typer.Option(2, "--examples", "-n", min=0, help="How many example records to show."),
    opt: Optional[list[str]] = typer.Option(None, "--opt", "-o", help=_OPT_HELP),
    map_: Optional[list[str]] = typer.Option(None, "--map", help=_MAP_HELP),
    record_type: Optional[str] = typer.Option(None, "--record-type", help=_RT_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the inspection as JSON on stdout (for scripts)."),
) -> None:
    """Show what a data file holds: detected format, record counts, field coverage and a few examples.

    Counts: 'rows' are the units of the file (lines, CSV rows, JSON items), 'records' what they became (some formats make two records of one row, e.g. full Moral Stories). Rows filtered by options and bad rows skipped with --skip-bad are counted separately, so rows = kept + filtered + skipped.

    Files whose rows fit no record type (and come without --record-type/--map) are shown as raw rows.
    """  # noqa: E501
    from aligngoals.data import inspect_file

    options = _options(opt, map_, record_type)
    insp = inspect_file(file, format, skip_bad=skip_bad, limit=limit, examples=examples, **options)
    if as_json:
        typer.echo(json.dumps(insp.to_dict(), ensure_ascii=False, default=str, indent=1))
        return
    rep = insp.report
    how = "detected" if insp.detected else "given"
    out.print(f"[bold]{insp.path}[/]  format: [bold]{insp.format}[/] ({how})")
    counts = Table(title="Counts", show_header=False)
    counts.add_column("what")
    counts.add_column("n", justify="right")
    counts.add_row("rows read", str(rep.rows))
    if insp.mode == "records":
        counts.add_row("records", str(rep.records))
        for rt, n in rep.record_types.most_common():
            counts.add_row(f"  {rt}", str(n))
    counts.add_row("filtered by options", str(rep.filtered))
    counts.add_row("bad rows skipped", str(rep.skipped))
    if rep.truncated:
        counts.add_row("stopped at --limit", "yes")
    out.print(counts)
    if insp.mode == "rows":
        console.print(
            "[yellow]These rows match no record type without a mapping;[/] counts and fields are of the raw rows. "
            "To convert, pass --record-type and --map (see docs/data-formats.md)."
        )
    _print_report_skips(rep)
    for rt, cov in insp.coverage.items():
        t = Table(title=f"Field coverage ({rt})")
        t.add_column("field")
        t.add_column("filled", justify="right")
        t.add_column("%", justify="right")
        for f, (filled, total) in cov.items():
            t.add_row(f, f"{filled}/{total}", f"{100 * filled / total:.0f}" if total else "-")
        meta = insp.meta_coverage.get(rt, {})
        if meta:
            total = next(iter(cov.values()))[1] if cov else 0
            for k, filled in list(meta.items())[:12]:
                t.add_row(f"meta.{k}", f"{filled}/{total}", f"{100 * filled / total:.0f}" if total else "-")
            if len(meta) > 12:
                t.add_row(f"meta (+{len(meta) - 12} more keys)", "", "")
        out.print(t)
    for i, ex in enumerate(insp.examples, 1):
        out.print(f"[bold]Example {i}[/]")
        out.print_json(json.dumps(_short(ex), ensure_ascii=False, default=str))


def convert_cmd(
    file: str = typer.Argument(..., help="Input data file (or HF dataset folder / hub name with --format hf_datasets)."),
    to: str = typer.Option(..., "--to", help="jsonl: aligngoals records JSONL (lossless; .gz compresses). hf: a Hugging Face dataset folder (save_to_disk)."),
    out_path: Path = typer.Option(..., "--out", help="Output file (jsonl) or folder (hf)."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help=_FORMAT_HELP),
    skip_bad: bool = typer.Option(False, "--skip-bad", help=_SKIP_HELP),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Convert only the first N records."),
    opt: Optional[list[str]] = typer.Option(None, "--opt", "-o", help=_OPT_HELP),
    map_: Optional[list[str]] = typer.Option(None, "--map", help=_MAP_HELP),
    record_type: Optional[str] = typer.Option(None, "--record-type", help=_RT_HELP),
    pairs: bool = typer.Option(False, "--pairs", help="Turn rankings into all their pairs and ratings into pairs (see --binarize), for reward models and DPO."),
    binarize: str = typer.Option("best_vs_random", "--binarize", help="With --pairs, how ratings become pairs: best_vs_random, best_vs_worst or all_pairs."),
    seed: int = typer.Option(0, "--seed", help="Seed for --binarize best_vs_random."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out folder (hf)."),
) -> None:
    """Read a data file and write its normalized records (JSONL that reads back as records_jsonl, or an HF dataset)."""
    from aligngoals.data import BINARIZE_STRATEGIES, load_records, save_hf, to_pairs, write_jsonl

    if to not in ("jsonl", "hf"):
        raise ConfigError(f"--to {to!r}: expected jsonl or hf.")
    if binarize not in BINARIZE_STRATEGIES:
        raise ConfigError(f"--binarize {binarize!r}: expected one of {', '.join(BINARIZE_STRATEGIES)}.")
    options = _options(opt, map_, record_type)
    with console.status(f"Reading {file} ..."):
        recs = load_records(file, format, skip_bad=skip_bad, limit=limit, **options)
    rep = recs.report
    records = to_pairs(recs, binarize, seed) if pairs else list(recs)
    if not records:
        raise ConfigError(f"No records to write from {file} ({rep.summary()})", hint="Check the reader options (filters) and the format.")
    if to == "jsonl":
        if out_path.exists() and out_path.is_dir():
            raise ConfigError(f"--out {out_path} is a folder; jsonl needs a file path.")
        written = write_jsonl(records, out_path)
    else:
        with console.status(f"Writing Hugging Face dataset to {out_path} ..."):
            written = save_hf(records, out_path, overwrite=overwrite)
    console.print(rep.summary())
    _print_report_skips(rep)
    extra = f" (from {len(recs)} read record(s), via --pairs)" if pairs else ""
    console.print(f"Wrote [bold]{len(records)}[/] record(s){extra} to [bold]{written}[/].")


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(
        help=(
            "Read datasets in the formats alignment people already have (Alpaca, Self-Instruct, Super-NI, ShareGPT, "
            "HH-RLHF, OpenAssistant, UltraFeedback, ETHICS, Moral Stories, Social-Chem-101, TruthfulQA, BBQ, CrowS-Pairs, "
            "MT-Bench, ValueBench, Hugging Face datasets) and normalize them into aligngoals records."
        ),
        no_args_is_help=True,
    )
    app.add_typer(data_app, name="data")
    data_app.command("formats")(formats_cmd)
    data_app.command("inspect")(inspect_cmd)
    data_app.command("convert")(convert_cmd)
