"""``aligngoals survey``: administer a value questionnaire to a model and report its profile.

A thin layer over :func:`aligngoals.values.questionnaires.run_survey`: parse
options, show progress, print the profile table, point at ``survey.json``.
"""

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


def _f(v, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def print_survey(result: dict) -> None:
    """The profile of each respondent as a table, then parse counts, stability and caveats."""
    inst = result["instrument"]
    rule = inst["rule"]
    for label, prof in result["profiles"].items():
        title = f"{escape(inst['name'])} · {escape(result['model'].get('name', '?'))} · {escape(label)} · {result['settings']['mode']}"
        table = Table(title=title, title_justify="left",
                      caption="score: " + {"centered": "value mean minus the mean over all items (MRAT)",
                                           "mean": "mean of the keyed items", "index": "index formula of item means"}[rule]
                              + "; SD: across variants" + ("; α: Cronbach's alpha over variants" if rule != "index" else "")
                              + "; n: answers used",
                      caption_justify="left")
        table.add_column("dimension", no_wrap=True)
        table.add_column("score", justify="right", no_wrap=True)
        table.add_column("95% CI", justify="right", no_wrap=True)
        if rule != "index":
            table.add_column("raw", justify="right", no_wrap=True)
        table.add_column("SD", justify="right", no_wrap=True)
        if rule != "index":
            table.add_column("α", justify="right", no_wrap=True)
        table.add_column("n", justify="right", no_wrap=True)
        for name, s in prof["scores"].items():
            shown = escape(name) if s["kind"] != "group" else f"[dim]{escape(name)}[/]"
            if s["kind"] == "index":
                shown = f"{escape(name)} {escape(inst['indices'][name]['name'])}"
            alpha = s.get("alpha") or {}
            row = [shown, _f(s["score"]), f"[{_f(s['ci_low'])}, {_f(s['ci_high'])}]"]
            if rule != "index":
                row.append(_f(s.get("raw_mean")))
            row.append(_f(s["sd_across_variants"]))
            if rule != "index":
                row.append(_f(alpha.get("alpha")) if alpha else "")
            row.append(f"{s['n_answers']}")
            table.add_row(*row)
        out.print(table)
        r = prof["responses"]
        line = f"answers: {r['parsed']}/{r['total']} usable"
        bad = {k: v for k, v in r["by_status"].items() if k not in ("ok",)}
        if bad:
            line += " (" + ", ".join(f"{k} {v}" for k, v in bad.items()) + ")"
        if "option_mass_mean" in r and r["option_mass_mean"] is not None:
            line += f"; probability mass on the options: mean {r['option_mass_mean']:.3f}, min {r['option_mass_min']:.3f}"
        out.print(line)
        st = prof["stability"]
        ii, idim = st["icc_items"], st["icc_dimensions"]
        out.print(
            f"stability over {st['n_variants']} variant(s): mean SD {_f(st['mean_sd_across_variants'])}; "
            f"ICC(2,1) items {_f(ii['icc2_1'])} (ICC(3,1) {_f(ii['icc3_1'])}, n={ii['n_targets']}); "
            f"ICC(2,1) dimensions {_f(idim['icc2_1'])}"
            + (f" [dim]({escape(ii['reason'])})[/]" if ii.get("reason") else "")
        )
        effects = []
        for factor in ("order", "labels"):
            levels = st["by_factor"].get(factor)
            if levels:
                effects.append(f"{factor}: " + ", ".join(f"{lev} {_f(v['mean_raw'])}" for lev, v in levels.items()))
        if effects:
            out.print("mean raw answer by " + "; ".join(effects)
                      + (f" [dim]({escape(st['factor_note'])})[/]" if st.get("factor_note") else ""))
        iv = prof["intervals"]
        out.print(f"[dim]intervals: {iv['method']}, resampling {iv['resample']}, {iv['n_boot']} draws"
                  + (f" ({escape(iv['note'])})" if iv.get("note") else "") + "[/]")
        comp = prof.get("comparison")
        if comp:
            if comp.get("profile"):
                cp = comp["profile"]
                out.print(f"vs target {escape(str(comp.get('target')))}: mean |diff| {_f(cp['mean_abs_diff'])}, "
                          f"r {_f(cp['pearson_r'])}, rho {_f(cp['spearman_rho'])}")
            if comp.get("distributions"):
                cd = comp["distributions"]
                out.print(f"vs target distributions: mean JS distance {_f(cd['mean_js_distance'], 3)} over {cd['n_items']} item(s)")
    for note in inst.get("notes", []):
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    for chk in inst.get("source", {}).get("keying_check", []) or []:
        console.print(f"[yellow]keying:[/] item {chk['item']} ({chk['index']}): ValueBench agreement {chk['valuebench_agreement']:+d}, "
                      f"the key's formula implies {chk['implied_by_key']:+d}; the key is used.", highlight=False)


def _list_questionnaires(data_dir) -> None:
    """``survey --list``: built-in instruments and the ValueBench inventories found under --data-dir."""
    from aligngoals.values.questionnaires.valuebench import (
        ALIASES,
        builtin_instruments,
        builtin_keys,
        find_valuebench_csv,
        list_inventories,
    )

    t = Table(title="Questionnaires")
    t.add_column("name")
    t.add_column("kind")
    t.add_column("items")
    for name in builtin_instruments():
        t.add_row(name, "built-in instrument (own items)", "")
    try:
        inv = list_inventories(find_valuebench_csv(data_dir))
    except Exception as exc:  # noqa: BLE001 - listing must not fail on a missing data folder
        inv = {}
        console.print(f"[yellow]ValueBench not found:[/] {escape(str(exc))}")
    keys = builtin_keys()
    for name in sorted(set(inv) | set(keys)):
        aliases = [a for a, v in ALIASES.items() if v == name]
        kind = "ValueBench inventory, " + ("published key" if name in keys else "generic key (mean of agreement)")
        if aliases:
            kind += f" (also: {', '.join(aliases)})"
        t.add_row(name, kind, str(inv.get(name, "")))
    out.print(t)


def survey_command(
    model: str = typer.Option("smollm2", "--model", "-m", help="Model: smollm2 (embedded), gguf:PATH, hf:DIR|ID|PATH.gguf."),
    instrument: Optional[str] = typer.Option(
        None, "--instrument", "-i",
        help="Instrument file (YAML/JSON, or a CSV), a built-in instrument (assistant_values), "
             "or a value inventory name or alias (PVQ40/schwartz, MFT08/moral_foundations, MFT23, VSM13/hofstede)."),
    inventory: Optional[str] = typer.Option(None, "--inventory", help="Which inventory of a ValueBench item bank (PVQ40, MFT08, MFT23, VSM13, ...)."),
    key: Optional[Path] = typer.Option(None, "--key", help="Your own scoring key (YAML) instead of the packaged one."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder holding valuebench/value_orientation.csv (default: ../shared/data)."),
    mode: str = typer.Option("rating", "--mode", help="rating: the model answers and the answer is parsed; "
                             "distribution: log-likelihood of every option gives a distribution and an expected score."),
    variants: int = typer.Option(4, "--variants", min=1, help="Prompt variants per item (instruction paraphrase, option order, numeric/verbal labels)."),
    persona: Optional[List[str]] = typer.Option(None, "--persona", help="Answer as this person (repeatable; each is its own respondent)."),
    country: Optional[List[str]] = typer.Option(None, "--country", help="Answer as a typical person from this country (repeatable)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Administer only the first N items."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (default runs/survey-...); the same command resumes it."),
    target: Optional[Path] = typer.Option(None, "--target", help="YAML/JSON with a target 'profile' and/or per-item 'distributions' to compare with."),
    seed: int = typer.Option(0, "--seed", help="Seed for generation and bootstrap intervals."),
    max_tokens: int = typer.Option(32, "--max-tokens", min=1, help="Rating mode: longest answer generated."),
    n_boot: int = typer.Option(1000, "--n-boot", min=100, help="Bootstrap draws for the 95% intervals."),
    resample: str = typer.Option("auto", "--resample", help="What the intervals resample: auto, items, variants, both, none."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="llama.cpp threads (default: all cores; 1 is faster on a busy machine)."),
    device: Optional[str] = typer.Option(None, "--device", help="hf backend: cpu, cuda, cuda:0."),
    model_arg: Optional[List[str]] = typer.Option(None, "--model-arg", help=MODEL_ARG_HELP),
    list_: bool = typer.Option(False, "--list", help="List the built-in instruments, scoring keys and ValueBench inventories, then exit."),
) -> None:
    """Administer a value questionnaire to a model; writes survey.json and prints the profile.

    Every item is asked under several prompt variants; the profile comes with 95%
    bootstrap intervals, its stability across variants (SD, ICC) and Cronbach's alpha.
    Model answers are saved in the run's store as they complete, so an interrupted
    survey resumes when you re-run the same command.
    """
    from aligngoals.values.questionnaires import run_survey

    if list_:
        _list_questionnaires(data_dir)
        return
    if mode not in ("rating", "distribution"):
        raise ConfigError(f"Unknown --mode {mode!r}.", hint="Use --mode rating or --mode distribution.")
    if resample not in ("auto", "items", "variants", "both", "none"):
        raise ConfigError(f"Unknown --resample {resample!r}.", hint="Use auto, items, variants, both or none.")
    from aligngoals.models.registry import load_model

    options = {}
    if threads:
        options["n_threads"] = threads
    if device:
        options["device"] = device
    options.update(parse_model_args(model_arg))
    with console.status(f"Loading model {model} ..."):
        m = load_model(model, **options)
    try:
        with progress_bar("Surveying", None) as bar:
            def factory(description: str, total: int):
                bar.describe(description)
                bar.set_total(total)
                return bar

            result = run_survey(
                m, instrument, inventory=inventory, key=key, data_dir=data_dir, mode=mode, variants=variants,
                personas=persona or None, countries=country or None, limit=limit, out_dir=out_dir, seed=seed,
                max_tokens=max_tokens, n_boot=n_boot, resample=resample, target=target, progress=factory,
                command=" ".join(shlex.quote(a) for a in ["aligngoals", *sys.argv[1:]]),
            )
    finally:
        m.close()
    print_survey(result)
    run = result["run"]
    from aligngoals.evaluate.samples import write_samples_page

    html = write_samples_page(run["dir"], model=result["model"], run=run, settings=result["settings"],
                              sections={"survey": {"instrument": result["instrument"], "profiles": result["profiles"]}})
    console.print(f"Wrote [bold]{escape(str(Path(run['dir']) / 'survey.json'))}[/] and [bold]{escape(str(html))}[/] "
                  f"({run['requests_computed']} requests computed, {run['requests_cached']} from the store, {run['wall_s']} s).")


def register(app: typer.Typer) -> None:
    app.command("survey")(survey_command)
