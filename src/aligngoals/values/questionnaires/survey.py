"""Administer a questionnaire to a model and score it: ``run_survey`` (the CLI's ``survey`` calls this).

Data flow: instrument -> (persona x variant x item) prompts -> CachedModel (run
store; resumable) -> parsed answers or option distributions -> keyed item
matrix per persona (variants x items) -> scoring rule -> profile with
intervals, stability, consistency, comparison -> ``survey.json``.

Two modes:

``rating``
    The model is asked in chat form and generates its answer (greedy); the
    answer is parsed into a scale point (:func:`.prompts.parse_answer`).
    Unparseable answers are counted by kind and left out of the scores
    (never imputed, never silently dropped).
``distribution``
    The same chat prompt is rendered with the model's chat template and the
    log-likelihood of every option as the start of the reply is computed
    (one shared context per prompt). Those give a probability distribution
    over the scale and an expected score per item, with no parsing at all; the
    probability mass the options receive is reported, since a model that would
    rather say something else puts little mass on any option.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from aligngoals.errors import ConfigError
from aligngoals.evaluate.cached import CachedModel
from aligngoals.evaluate.run import Run
from aligngoals.io import atomic_write_json, stable_hash
from aligngoals.models.base import GenerationRequest, GenerationSettings, LoglikelihoodRequest, Model
from aligngoals.models.registry import load_model
from aligngoals.report.schema import validate_report
from aligngoals.values.questionnaires.instrument import Instrument, read_mapping
from aligngoals.values.questionnaires.prompts import (
    Variant,
    build_messages,
    continuation_for,
    country_persona,
    design_variants,
    label_distribution,
    parse_answer,
)
from aligngoals.values.questionnaires.scoring import Scorer, item_means
from aligngoals.values.questionnaires.stats import (
    bootstrap_intervals,
    choose_resample,
    compare_profiles,
    cronbach_alpha,
    icc,
    js_distance,
    sd_across,
)
from aligngoals.values.questionnaires.valuebench import resolve_instrument

SURVEY_FILENAME = "survey.json"
MODES = ("rating", "distribution")

ProgressFactory = Callable[[str, int], Any]


def _clean(v: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python numbers, recursively."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return None if not math.isfinite(f) else round(f, 10)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def default_survey_dir(model_name: str, instrument: Instrument, mode: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"survey-{model_name}-{instrument.name}-{mode}").strip("-")[:70]
    h = stable_hash({"model": model_name, "instrument": instrument.name, "source": instrument.source, "mode": mode})[:8]
    return Path("runs") / f"{slug}-{h}"


def load_target(target: str | Path | Mapping | None) -> dict | None:
    """A target profile / population distribution: ``{"name", "profile": {dim: score},
    "distributions": {item_id: [p per scale point, low to high] | {value_or_label: p}}}``."""
    if target is None:
        return None
    if isinstance(target, Mapping):
        raw = dict(target)
        where = "target"
    else:
        p = Path(target).expanduser()
        raw = read_mapping(p)
        where = str(p)
        raw.setdefault("name", p.stem)
    unknown = set(raw) - {"name", "profile", "distributions", "description", "source"}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}.",
                          hint="A target has 'profile' ({dimension: score}) and/or 'distributions' ({item_id: [p, ...]}).")
    if not raw.get("profile") and not raw.get("distributions"):
        raise ConfigError(f"{where}: neither 'profile' nor 'distributions' is given.",
                          hint="Give a target profile ({dimension: score}) or per-item answer distributions.")
    for d, v in (raw.get("profile") or {}).items():
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise ConfigError(f"{where}: field 'profile.{d}' is {v!r}; expected a number.", hint="Give one score per dimension.")
    return raw


def _target_distribution(instrument: Instrument, spec: Any, where: str) -> np.ndarray:
    k = len(instrument.scale.points)
    if isinstance(spec, Mapping):
        vec = np.zeros(k)
        by_val = {float(p.value): i for i, p in enumerate(instrument.scale.points)}
        by_lab = {p.label.lower(): i for i, p in enumerate(instrument.scale.points)}
        for key, prob in spec.items():
            idx = None
            try:
                idx = by_val.get(float(key))
            except (TypeError, ValueError):
                idx = by_lab.get(str(key).lower())
            if idx is None:
                raise ConfigError(f"{where}: {key!r} is not a value or label of the scale {instrument.scale.values}.",
                                  hint="Key distributions by scale value (e.g. 1..6) or label.")
            vec[idx] = float(prob)
        return vec
    vec = np.asarray(spec, dtype=float)
    if vec.shape != (k,):
        raise ConfigError(f"{where}: has {vec.size} probabilities; the scale has {k} points.",
                          hint="List one probability per scale point, lowest value first.")
    return vec


def _build_requests(instrument: Instrument, variants: Sequence[Variant], personas: Sequence[str | None]):
    cells = []
    for pi, persona in enumerate(personas):
        for v in variants:
            for ii, item in enumerate(instrument.items):
                messages, options = build_messages(instrument, item, v, persona)
                cells.append({"persona": pi, "variant": v, "item": ii, "messages": messages, "options": options})
    return cells


def _administer_rating(cached: CachedModel, cells: list[dict], max_tokens: int, seed: int, advance) -> None:
    settings = GenerationSettings(max_tokens=max_tokens, temperature=0.0, seed=seed)
    reqs = [GenerationRequest(messages=c["messages"], settings=settings) for c in cells]
    outputs = cached.generate(reqs, progress=advance)
    for c, text in zip(cells, outputs):
        parsed = parse_answer(text, c["options"], c["variant"].labels)
        c["output"] = text
        c["value"] = parsed.value
        c["status"] = parsed.status
        c["via"] = parsed.via


def _administer_distribution(cached: CachedModel, model: Model, cells: list[dict], advance) -> None:
    reqs: list[LoglikelihoodRequest] = []
    spans = []
    contexts: dict[tuple, str] = {}
    for c in cells:
        key = tuple((m.role, m.content) for m in c["messages"])
        if key not in contexts:
            contexts[key] = model.apply_chat_template(c["messages"], add_generation_prompt=True)
        ctx = contexts[key]
        conts = [continuation_for(o, c["variant"]) for o in c["options"]]
        spans.append((len(reqs), conts))
        reqs.extend(LoglikelihoodRequest(ctx, s) for s in conts)
    results = cached.loglikelihood(reqs, progress=advance)
    for c, (start, conts) in zip(cells, spans):
        lps = [r.logprob for r in results[start : start + len(conts)]]
        probs, mass, corrected = label_distribution(conts, lps)
        # probabilities per scale point in ascending value order (options may be listed descending)
        by_value = {o.value: p for o, p in zip(c["options"], probs)}
        c["probs"] = [by_value[v] for v in sorted(by_value)]
        c["logprobs"] = {o.label: lp for o, lp in zip(c["options"], lps)}
        c["mass"] = mass
        c["prefix_corrected"] = corrected
        c["value"] = float(sum(v * p for v, p in by_value.items()))  # expected raw answer
        c["status"] = "ok"


def _keyed(instrument: Instrument, ii: int, raw: float | None) -> float:
    if raw is None:
        return math.nan
    return instrument.scale.reverse(raw) if instrument.items[ii].reverse else float(raw)


def _responses(cells: list[dict], mode: str) -> dict:
    """Parse accounting: how many answers were parsed, by status (and the option mass in distribution mode)."""
    statuses: dict[str, int] = {}
    for c in cells:
        statuses[c["status"]] = statuses.get(c["status"], 0) + 1
    n_total = len(cells)
    n_parsed = sum(1 for c in cells if c["value"] is not None)
    responses = {"total": n_total, "parsed": n_parsed, "unparseable": n_total - n_parsed,
                 "parse_rate": n_parsed / n_total if n_total else None, "by_status": dict(sorted(statuses.items()))}
    if mode == "distribution":
        masses = [c["mass"] for c in cells]
        responses["option_mass_mean"] = float(np.mean(masses)) if masses else None
        responses["option_mass_min"] = float(np.min(masses)) if masses else None
        responses["prefix_corrected"] = sum(1 for c in cells if c.get("prefix_corrected"))
    return responses


def _dimension_scores(instrument: Instrument, scorer: Scorer, X: np.ndarray, pooled: dict, intervals: dict,
                      per_variant_scores: list[dict]) -> dict[str, dict]:
    """Per dimension (or group, or index): pooled score, interval, items, answers, spread across variants, alpha."""
    raw_means = scorer.raw_means(item_means(X)) if scorer.rule != "index" else {}
    scores: dict[str, dict] = {}
    for name in scorer.names:
        kind = "index" if scorer.rule == "index" else ("group" if name in scorer.groups else "dimension")
        if kind == "index":
            idx = scorer.index_terms[name][0]
        elif kind == "group":
            idx = np.concatenate([scorer.dim_items[m] for m in scorer.groups[name]])
        else:
            idx = scorer.dim_items[name]
        lo, hi = intervals[name]
        entry = {
            "kind": kind,
            "score": pooled[name],
            "ci_low": lo,
            "ci_high": hi,
            "n_items": int(len(idx)),
            "n_answers": int(np.isfinite(X[:, idx]).sum()),
            "sd_across_variants": sd_across([s[name] for s in per_variant_scores]),
        }
        if scorer.rule != "index":
            entry["raw_mean"] = raw_means[name]
        if kind == "dimension":
            entry["alpha"] = cronbach_alpha(X[:, idx], min_respondents=3)
        scores[name] = entry
    return scores


def _stability(scorer: Scorer, X: np.ndarray, R: np.ndarray, variants: Sequence[Variant], scores: dict,
               per_variant_scores: list[dict]) -> dict:
    """How much the profile moves across prompt variants: spread, ICCs, and means per variant factor."""
    V = len(variants)
    dim_names = [n for n in scorer.names if n not in scorer.groups]
    D = np.array([[s[n] for s in per_variant_scores] for n in dim_names], dtype=float) if dim_names else np.zeros((0, V))
    sds = [scores[n]["sd_across_variants"] for n in dim_names if scores[n]["sd_across_variants"] is not None]
    by_factor: dict[str, dict] = {}
    for factor in ("order", "labels", "frame", "stem"):
        levels: dict[str, list[int]] = {}
        for v in variants:
            levels.setdefault(str(getattr(v, factor)), []).append(v.index)
        if len(levels) < 2:
            continue
        by_factor[factor] = {}
        for lev, rows in levels.items():
            sub = X[rows]
            by_factor[factor][lev] = {
                "variants": rows,
                "mean_keyed": float(np.nanmean(sub)) if np.isfinite(sub).any() else None,
                "mean_raw": float(np.nanmean(R[rows])) if np.isfinite(R[rows]).any() else None,
                "scores": scorer.score(item_means(sub)),
            }
    return {
        "n_variants": V,
        "mean_sd_across_variants": float(np.mean(sds)) if sds else None,
        "icc_items": icc(X.T),
        "icc_dimensions": icc(D),
        "by_factor": by_factor,
        "factor_note": ("With fewer than 4 variants option order and label style change together, so their effects "
                        "cannot be told apart." if V < 4 and len(by_factor) > 0 else None),
        "icc_note": "ICC(2,1): two-way random, absolute agreement, single variant (Shrout & Fleiss 1979); "
                    "ICC(3,1) ignores constant shifts between variants. Targets are items (keyed scores) or dimension scores; "
                    "raters are variants; rows with a missing answer are dropped.",
    }


def _per_variant(variants: Sequence[Variant], X: np.ndarray, R: np.ndarray, per_variant_scores: list[dict]) -> list[dict]:
    per_variant = []
    for v in variants:
        row = X[v.index]
        per_variant.append({
            "variant": v.index,
            "description": v.describe(),
            "parsed": int(np.isfinite(row).sum()),
            "mean_raw": float(np.nanmean(R[v.index])) if np.isfinite(R[v.index]).any() else None,
            "scores": per_variant_scores[v.index],
        })
    return per_variant


def _distributions(instrument: Instrument, cells: list[dict], mode: str) -> dict[str, list[float] | None]:
    """Answer distribution per item (model side), for the comparison with a population."""
    k = len(instrument.scale.points)
    values = instrument.scale.values
    distributions: dict[str, list[float] | None] = {}
    for ii, item in enumerate(instrument.items):
        mine = [c for c in cells if c["item"] == ii]
        if mode == "distribution":
            distributions[item.id] = np.mean([c["probs"] for c in mine], axis=0).tolist()
        else:
            counts = np.zeros(k)
            for c in mine:
                if c["value"] is not None:
                    counts[values.index(c["value"])] += 1
            distributions[item.id] = (counts / counts.sum()).tolist() if counts.sum() else None
    return distributions


def _comparison(instrument: Instrument, scorer: Scorer, pooled: dict, distributions: dict, target: dict,
                mode: str) -> dict:
    """The profile and answer distributions against a target population."""
    comp: dict[str, Any] = {"target": target.get("name")}
    if target.get("profile"):
        comp["profile"] = compare_profiles({n: pooled[n] for n in scorer.names}, target["profile"])
    if target.get("distributions"):
        per_item = {}
        for iid, spec in target["distributions"].items():
            if iid not in distributions:
                per_item[iid] = {"js_distance": None, "reason": "item not administered"}
                continue
            tvec = _target_distribution(instrument, spec, f"target distributions.{iid}")
            mvec = distributions[iid]
            if mvec is None:
                per_item[iid] = {"js_distance": None, "reason": "no parsed answer for this item"}
                continue
            per_item[iid] = {"js_distance": js_distance(mvec, tvec)}
        js = [d["js_distance"] for d in per_item.values() if d["js_distance"] is not None]
        comp["distributions"] = {"per_item": per_item, "mean_js_distance": float(np.mean(js)) if js else None,
                                 "n_items": len(js),
                                 "note": "Jensen-Shannon distance, base 2 (0 = same distribution, 1 = disjoint)."
                                         + (" Rating mode: the model's distribution is the histogram of its answers "
                                            "across variants." if mode == "rating" else "")}
    return comp


def _profile(
    instrument: Instrument,
    scorer: Scorer,
    cells: list[dict],
    variants: Sequence[Variant],
    persona: str | None,
    *,
    mode: str,
    resample: str,
    n_boot: int,
    seed: int,
    target: dict | None,
) -> dict:
    V, I = len(variants), len(instrument.items)
    X = np.full((V, I), np.nan)  # keyed
    R = np.full((V, I), np.nan)  # raw answers
    for c in cells:
        v = c["variant"].index
        R[v, c["item"]] = np.nan if c["value"] is None else c["value"]
        X[v, c["item"]] = _keyed(instrument, c["item"], c["value"])
    pooled = scorer.score(item_means(X))
    used, why = choose_resample(resample, scorer.rule, V)
    intervals = bootstrap_intervals(scorer, X, resample=used, n_boot=n_boot, seed=seed)
    per_variant_scores = [scorer.score(X[v]) for v in range(V)]
    scores = _dimension_scores(instrument, scorer, X, pooled, intervals, per_variant_scores)
    if scorer.rule == "centered":
        allx = item_means(X)
        mrat = float(np.nanmean(allx)) if np.isfinite(allx).any() else math.nan
    else:
        mrat = None
    distributions = _distributions(instrument, cells, mode)
    out: dict[str, Any] = {
        "persona": persona,
        "n_variants": V,
        "responses": _responses(cells, mode),
        "scores": scores,
        "mrat": mrat,
        "intervals": {"method": "percentile bootstrap", "level": 0.95, "resample": used, "n_boot": n_boot,
                      "seed": seed, "note": why},
        "stability": _stability(scorer, X, R, variants, scores, per_variant_scores),
        "per_variant": _per_variant(variants, X, R, per_variant_scores),
        "item_means_keyed": dict(zip(instrument.item_ids, item_means(X).tolist())),
        "distributions": distributions,
    }
    if target:
        out["comparison"] = _comparison(instrument, scorer, pooled, distributions, target, mode)
    return out


def _check_design(mode: str, variants: int) -> None:
    if mode not in MODES:
        raise ConfigError(f"Unknown mode {mode!r}.", hint="Use --mode rating or --mode distribution.")
    if variants < 1:
        raise ConfigError(f"--variants must be at least 1, got {variants}.", hint="Use --variants 4 (default) or more.")


def _instrument_and_target(instrument: Any, *, inventory: Any, key: Any, data_dir: Any, limit: Any,
                           target: Any) -> tuple[Instrument, dict | None]:
    """The instrument (first ``limit`` items) and the target population, checked against each other."""
    inst = instrument if isinstance(instrument, Instrument) else resolve_instrument(
        instrument, inventory=inventory, key=key, data_dir=data_dir)
    inst = inst.head(limit)
    tgt = load_target(target)
    if tgt and tgt.get("distributions"):
        for iid, spec in tgt["distributions"].items():
            if iid in inst.item_ids:
                _target_distribution(inst, spec, f"target distributions.{iid}")
    return inst, tgt


def _administer(run: Run, model: Model, inst: Instrument, design: Sequence[Variant], persona_list: list, *,
                mode: str, max_tokens: int, seed: int) -> list[dict]:
    """Ask every (respondent x variant x item) through the run's cached model; returns the answered cells."""
    cached = run.cached(model)
    cells = _build_requests(inst, design, persona_list)
    n_requests = len(cells) if mode == "rating" else sum(len(c["options"]) for c in cells)
    bar = run.bar(f"Surveying {inst.name} ({mode})", n_requests)
    if mode == "rating":
        _administer_rating(cached, cells, max_tokens, seed, bar.advance)
    else:
        _administer_distribution(cached, model, cells, bar.advance)
    bar.close()
    return cells


def _respondents(personas: Sequence[str] | None, countries: Sequence[str] | None) -> tuple[list, list[str]]:
    """(persona prompts, labels): the model's own voice ("default") unless personas or countries are given."""
    persona_list: list[str | None] = [*(personas or []), *(country_persona(c) for c in (countries or []))]
    labels = [*(f"persona: {p}" for p in (personas or [])), *(f"country: {c}" for c in (countries or []))]
    if not persona_list:
        persona_list, labels = [None], ["default"]
    if len(set(labels)) != len(labels):
        raise ConfigError("The same persona or country is given twice.", hint="Give each persona once.")
    return persona_list, labels


def _item_records(inst: Instrument, cells: list[dict], labels: list[str]) -> list[tuple[str, dict]]:
    """Per-answer records for the run store: prompt, raw output or probabilities, parsed value, status."""
    return [
        (f"{c['persona']}/{c['variant'].index}/{inst.items[c['item']].id}", {
            "persona": labels[c["persona"]], "variant": c["variant"].to_dict(), "item": inst.items[c["item"]].id,
            "prompt": [m.content for m in c["messages"]], "output": c.get("output"), "probs": c.get("probs"),
            "value": c["value"], "status": c["status"]})
        for c in cells
    ]


def _answers(inst: Instrument, cells: list[dict], labels: list[str], mode: str) -> list[dict]:
    """The answers listed in survey.json (raw output in rating mode, the distribution otherwise)."""
    answers = []
    for c in cells:
        a = {"respondent": labels[c["persona"]], "variant": c["variant"].index, "item": inst.items[c["item"]].id,
             "value": c["value"], "status": c["status"]}
        if mode == "rating":
            a["output"] = c["output"]
        else:
            a["probs"] = c["probs"]
            a["mass"] = c["mass"]
        answers.append(a)
    return answers


def run_survey(
    model: Model | str,
    instrument: Instrument | str | None = None,
    *,
    inventory: str | None = None,
    key: str | Path | None = None,
    data_dir: str | Path | None = None,
    mode: str = "rating",
    variants: int = 4,
    personas: Sequence[str] | None = None,
    countries: Sequence[str] | None = None,
    limit: int | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    max_tokens: int = 32,
    n_boot: int = 1000,
    resample: str = "auto",
    target: str | Path | Mapping | None = None,
    progress: ProgressFactory | None = None,
    command: str | None = None,
) -> dict:
    """Administer ``instrument`` to ``model`` and return (and write) the survey result.

    ``model`` is a :class:`Model` or a ``--model`` string; ``instrument`` an
    :class:`Instrument`, a file or a name (see
    :func:`.valuebench.resolve_instrument`). Every model request goes through
    the run store in ``out_dir`` (default ``runs/survey-...``), so re-running
    the same call resumes and gives the same result; ``survey.json`` is
    written there atomically. ``personas`` and ``countries`` each add a
    respondent (profile) beside the model's own voice, which is always
    included as ``default`` unless personas or countries are given.
    """
    _check_design(mode, variants)
    own_model = isinstance(model, str)
    if isinstance(model, str):
        model = load_model(model)
    inst, tgt = _instrument_and_target(instrument, inventory=inventory, key=key, data_dir=data_dir, limit=limit,
                                       target=target)
    persona_list, labels = _respondents(personas, countries)
    design = design_variants(variants, len(inst.prompt.stems))
    run_dir = Path(out_dir) if out_dir else default_survey_dir(model.name, inst, mode)
    fingerprint = {"model": model.identity, "instrument": inst.name, "mode": mode}
    run = Run(run_dir, kind="survey_fingerprint", fingerprint=fingerprint, command=command, progress=progress,
              describe=lambda previous: (
                  f"Run directory {run_dir} holds a different survey (model {previous.get('model', {}).get('name')}, "
                  f"instrument {previous.get('instrument')}, mode {previous.get('mode')})."))
    try:
        with run:
            store = run.store
            assert store is not None
            cells = _administer(run, model, inst, design, persona_list, mode=mode, max_tokens=max_tokens, seed=seed)
            store.put_items(f"survey:{inst.name}:{mode}", _item_records(inst, cells, labels))
            scorer = Scorer(inst)
            profiles = {label: _profile(inst, scorer, [c for c in cells if c["persona"] == pi], design, persona_list[pi],
                                        mode=mode, resample=resample, n_boot=n_boot, seed=seed, target=tgt)
                        for pi, label in enumerate(labels)}
            answers = _answers(inst, cells, labels, mode)
            result = run.envelope(
                model=model,
                report_kind="survey",
                instrument=inst.summary(),
                settings={"mode": mode, "variants": [v.to_dict() for v in design], "respondents": labels,
                          "personas": list(personas or []), "countries": list(countries or []), "limit": limit,
                          "seed": seed, "max_tokens": max_tokens if mode == "rating" else None, "n_boot": n_boot,
                          "resample": resample, "target": tgt.get("name") if tgt else None},
                profiles=profiles,
                answers=answers,
            )
            result = validate_report(_clean(result), source=str(run_dir / SURVEY_FILENAME))
            atomic_write_json(run_dir / SURVEY_FILENAME, result)
            store.set_meta("survey", {"file": SURVEY_FILENAME, "finished": result["run"]["finished"]})
            return result
    finally:
        if own_model:
            model.close()
