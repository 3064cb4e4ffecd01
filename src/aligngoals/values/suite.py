"""The value suite of a goal: social norms, safety under pressure, dilemmas and value priorities.

Why a suite runner of its own next to :func:`aligngoals.evaluate.runner.run_evaluation`:
these measurements are more than per-item scores. Safety needs a second round of
requests (the judge reads the first round's replies), the norm level 3 compares
generations with an embedding model, and dilemmas end in a Bradley-Terry fit and a
comparison with the goal's declared priorities. What stays the same as in the
runner: every model call goes through :class:`~aligngoals.evaluate.cached.CachedModel`
on the run directory's store (so a run resumes and a re-run is free), per-item
records go to the store's ``items`` table, and results come back as report
``tasks`` entries (level ``values``) plus one ``sections["values"]`` dict.

Use::

    report = run_evaluation(model, specs, run_dir, settings)           # the goal's other suites
    values = run_value_suite(model, "hhh", run_dir, settings)          # this suite
    merge_value_results(report, values)                                # tasks, sections, run counters
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aligngoals.errors import AligngoalsError, ConfigError, DataError, config_error
from aligngoals.evaluate.run import Run
from aligngoals.io import stable_hash
from aligngoals.store import RunStore
from aligngoals.values.measurements import SuiteEnv, measurements_for, plan_all, value_systems_of

ProgressFactory = Callable[[str, int], Any]


class ValueSuiteOptions(BaseModel):
    """What the value suite runs and how big it is. Defaults keep ``eval --goal hhh`` to a few minutes on 2 CPU cores.

    ``--limit N`` (``EvalSettings.limit``) caps every size below at N.
    """

    model_config = ConfigDict(extra="forbid")

    norms: bool = True
    safety: bool = True
    dilemmas: bool = True
    value_dilemmas: bool = True
    """Also rank the basic values of value systems the goal's principles reference (Schwartz), when a set exists."""
    questionnaire: bool = True
    """Administer a questionnaire (the value profile) with :mod:`aligngoals.values.questionnaires`."""
    judge: Literal["self", "model", "none"] = "self"
    """Safety judge: ``self`` (the evaluated model judges; cheap, weak for small models), ``model``
    (the ``judge_model`` passed to :func:`run_value_suite`), or ``none``."""
    judge_scoring: Literal["loglik", "generate"] = "loglik"
    """``loglik`` (REFUSED vs COMPLIED by log-likelihood; never unparsed, names no principles) or
    ``generate`` (the judge writes a verdict and the violated principles; parsed)."""
    norms_judge: bool = False
    """Grade generated rules of thumb with the judge too (optional; off by default)."""
    # sizes (defaults: about 3-5 minutes for the 135M embedded model on 2 busy CPU cores)
    n_harmful: int = Field(8, ge=1)
    """Harmful requests; each also runs under every attack type (8 -> 8 plain + 40 attacked replies)."""
    n_benign: int = Field(10, ge=1)
    n_judge: int = Field(30, ge=1)
    n_ethics: int = Field(30, ge=1)
    n_name: int = Field(20, ge=1)
    n_generate: int = Field(10, ge=1)
    n_dilemmas: Optional[int] = Field(None, ge=1)
    n_items: Optional[int] = Field(None, ge=1)
    """Questionnaire items (None: all)."""
    # details
    safety_max_tokens: int = Field(64, ge=1)
    dilemma_mode: Literal["text", "letter"] = "text"
    dilemma_file: Optional[str] = None
    """A dilemma set file for the goal (default: the built-in set named like the goal)."""
    generate_dilemmas: int = Field(0, ge=0)
    """Scenarios to draft per principle pair with the model (0: none); reported as a separate task."""
    harmful_path: Optional[str] = None
    attacks_path: Optional[str] = None
    attack_types: Optional[list] = None
    """Only these attack types (default: every type in the attack file)."""
    benign_path: Optional[str] = None
    embedding: bool = True
    instrument: str = "auto"
    """Questionnaire: ``auto`` (the project's ``assistant_values`` for hhh; Schwartz's PVQ40 from ValueBench in
    --data-dir for goals that reference Schwartz values when the file is there), a built-in name, an inventory
    name (PVQ40, MFT08, VSM13) or an instrument file."""
    inventory: Optional[str] = None
    questionnaire_mode: Literal["distribution", "rating"] = "distribution"
    """``distribution`` (log-likelihood of every scale label; no parsing) or ``rating`` (generated answers)."""
    variants: int = Field(2, ge=1)
    """Prompt variants per item (paraphrased stems, reversed options, numeric vs verbal labels)."""

    @classmethod
    def from_dict(cls, raw: Optional[dict]) -> "ValueSuiteOptions":
        raw = dict(raw or {})
        unknown = sorted(set(raw) - set(cls.model_fields))
        if unknown:
            raise ConfigError(f"Unknown value-suite option(s): {', '.join(unknown)}.",
                              hint=f"Known: {', '.join(sorted(cls.model_fields))}.")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise config_error(exc, "Value-suite options", raw=raw, hint="See docs/values.md for the options.") from None

    def capped(self, limit: Optional[int]) -> "ValueSuiteOptions":
        if limit is None:
            return self
        d = self.model_dump()
        for k in ("n_harmful", "n_benign", "n_judge", "n_ethics", "n_name", "n_generate"):
            d[k] = min(d[k], limit)
        d["n_dilemmas"] = limit if self.n_dilemmas is None else min(self.n_dilemmas, limit)
        d["n_items"] = limit if self.n_items is None else min(self.n_items, limit)
        return ValueSuiteOptions(**d)


def is_value_goal(goal: Any) -> bool:
    """True when ``goal`` (a name, a file or a Goal) is at the value level and has principles to rank."""
    from aligngoals.goals import load_goal

    g = goal if hasattr(goal, "principles_in_priority_order") else load_goal(goal)
    return g.level == "values" and bool(g.principles)


def run_value_suite(
    model: Any,
    goal: Any,
    run_dir: str | Path,
    settings: Any,
    *,
    progress: Optional[ProgressFactory] = None,
    judge_model: Any = None,
    options: Optional[ValueSuiteOptions | dict] = None,
) -> dict:
    """Run the value suite of ``goal`` (a name, a file or a :class:`~aligngoals.goals.Goal`) on ``model``.

    ``settings`` is an :class:`~aligngoals.evaluate.runner.EvalSettings` (seed, limit, data_dir;
    ``settings.extra["values"]`` may hold :class:`ValueSuiteOptions` fields). Returns
    ``{"tasks": {name: entry}, "section": {...}, "stats": {"cached", "computed"}, "wall_s"}``.
    """
    from aligngoals.goals import load_goal

    t0 = time.perf_counter()
    g = goal if hasattr(goal, "principles_in_priority_order") else load_goal(goal)
    if not g.principles:
        raise ConfigError(f"Goal {g.name!r} has no principles, so it has no value suite.",
                          hint="Use a value-level goal such as hhh or constitution.")
    if options is None:
        options = (getattr(settings, "extra", None) or {}).get("values")
    opts = options if isinstance(options, ValueSuiteOptions) else ValueSuiteOptions.from_dict(options)
    opts = opts.capped(getattr(settings, "limit", None))
    seed = int(getattr(settings, "seed", 0))
    data_dir = getattr(settings, "data_dir", None)
    if opts.judge == "model" and judge_model is None:
        raise ConfigError("Value-suite option judge=model needs a judge model.", hint="Pass judge_model, or use judge=self.")
    # Unset (None) options are left out so that adding an option later does not orphan older runs.
    fp = {"goal": g.name, "goal_hash": stable_hash(g.model_dump(mode="json"))[:16],
          "options": {k: v for k, v in opts.model_dump().items() if v is not None},
          "seed": seed, "model": model.identity, "judge_model": None if judge_model is None else judge_model.identity}
    with Run(run_dir, kind="values_fingerprint", fingerprint=fp, progress=progress, describe=lambda previous: (
            f"Run directory {run_dir} holds a value suite run with other settings (goal {previous.get('goal')})."
    )) as run:
        cached = run.cached(model)
        judge = cached if opts.judge == "self" else (run.cached(judge_model) if opts.judge == "model" else None)
        assert run.store is not None
        env = SuiteEnv(goal=g, opts=opts, seed=seed, data_dir=data_dir, model=cached, judge=judge, store=run.store)
        env.section.update({"goal": g.name, "declared_priorities": [p.id for p in g.principles_in_priority_order()],
                            "options": opts.model_dump()})
        planned = plan_all(measurements_for(opts), env)  # plan everything first: one bar knows the total
        bar = run.bar("Value suite", sum(m.request_count(env) for m in planned))
        env.advance = bar.advance
        for m in planned:
            m.run(env)
        bar.close()
        if env.notes:
            env.section["notes"] = env.notes
        stats = run.stats
    tasks, section, skipped = env.tasks, env.section, env.skipped

    # --- questionnaire (its own run context; same run directory, so it resumes too) ----------------
    if opts.questionnaire:
        try:
            q = _questionnaire(model, g, opts, run_dir, data_dir=data_dir, seed=seed, progress=progress)
        except (DataError, ConfigError) as exc:
            skipped["questionnaire"] = exc.message
        else:
            tasks.update(q["tasks"])
            section["questionnaire"] = q["section"]
            for k in stats:
                stats[k] += q["stats"][k]
    if skipped:
        section["skipped"] = skipped
    with RunStore(run_dir) as store:
        store.set_meta("values_section", section)
    return {"tasks": tasks, "section": section, "stats": stats, "wall_s": round(time.perf_counter() - t0, 3)}


def choose_instrument(goal: Any, opts: "ValueSuiteOptions", data_dir: Optional[str]) -> str:
    """The questionnaire for ``goal`` when the option is ``auto`` (see :attr:`ValueSuiteOptions.instrument`)."""
    if opts.instrument != "auto":
        return opts.instrument
    if goal.name != "hhh" and "schwartz" in value_systems_of(goal):
        from aligngoals.values.questionnaires import find_valuebench_csv

        try:
            find_valuebench_csv(data_dir)
            return "schwartz"
        except (DataError, ConfigError):
            pass
    return "assistant_values"


def _questionnaire(model: Any, goal: Any, opts: "ValueSuiteOptions", run_dir: str | Path, *, data_dir: Optional[str],
                   seed: int, progress: Optional[ProgressFactory]) -> dict:
    """The value profile: run_survey in the run directory, condensed to a task entry and a section."""
    from aligngoals.values.questionnaires import run_survey

    name = choose_instrument(goal, opts, data_dir)
    res = run_survey(model, name, inventory=opts.inventory, data_dir=data_dir, mode=opts.questionnaire_mode,
                     variants=opts.variants, limit=opts.n_items, out_dir=run_dir, seed=seed, progress=progress)
    prof = res["profiles"]["default"]
    inst = res["instrument"]
    scale = inst.get("scale") or []
    metrics = {}
    dims = {}
    for dim, e in prof["scores"].items():
        dims[dim] = {k: e.get(k) for k in ("kind", "score", "ci_low", "ci_high", "sd_across_variants", "alpha",
                                         "n_items", "n_answers", "raw_mean")}
        metrics[dim] = {"value": e.get("score"), "ci_low": e.get("ci_low"), "ci_high": e.get("ci_high"),
                        "n": e.get("n_answers", 0)}
    st = prof["stability"]
    section = {
        "instrument": inst.get("name"),
        "title": inst.get("title"),
        "rule": inst.get("rule"),
        "reference": inst.get("reference"),
        "scale": scale,
        "mode": opts.questionnaire_mode,
        "n_variants": prof["n_variants"],
        "n_items": inst.get("n_items"),
        "profile": dims,
        "stability": {"mean_sd_across_variants": st.get("mean_sd_across_variants"), "icc_items": st.get("icc_items"),
                      "icc_dimensions": st.get("icc_dimensions"), "icc_note": st.get("icc_note"),
                      "factor_note": st.get("factor_note")},
        "responses": prof["responses"],
        "intervals": prof["intervals"],
        "survey_file": str(Path(run_dir) / "survey.json"),
    }
    task = {"level": "values", "type": "questionnaire", "n": prof["responses"]["parsed"], "metrics": metrics,
            "description": f"Questionnaire {inst.get('name')} ({opts.questionnaire_mode} mode, "
                           f"{prof['n_variants']} variants); per-dimension scores"}
    return {"tasks": {f"questionnaire_{inst.get('name')}": task}, "section": section, "stats": {
        "cached": res["run"]["requests_cached"], "computed": res["run"]["requests_computed"]}}


def merge_value_results(report: dict, values: dict) -> dict:
    """Add a :func:`run_value_suite` result to a report from ``run_evaluation`` (in place; also returned)."""
    clash = sorted(set(values["tasks"]) & set(report.get("tasks", {})))
    if clash:
        raise AligngoalsError(f"Value-suite task names clash with tasks already in the report: {', '.join(clash)}.")
    report.setdefault("tasks", {}).update(values["tasks"])
    report.setdefault("sections", {}).setdefault("values", {}).update(values["section"])
    run = report.setdefault("run", {})
    run["requests_cached"] = run.get("requests_cached", 0) + values["stats"]["cached"]
    run["requests_computed"] = run.get("requests_computed", 0) + values["stats"]["computed"]
    run["wall_s"] = round(run.get("wall_s", 0.0) + values["wall_s"], 3)
    if "finished" in run:  # the value suite ran after run_evaluation stamped its finish time
        import datetime as _dt

        run["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    report.setdefault("settings", {})["value_suite"] = values["section"].get("options")
    return report
