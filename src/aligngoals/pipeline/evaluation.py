"""``aligngoals.evaluate(...)``: the one Python entry point for everything ``aligngoals eval`` does.

Why here, above the value suite and alignment layers: evaluating a goal runs the
goal's task suites (evaluate), its value suite (values) and, on request, a
reward-model scorer and the in-context baseline (align). The CLI is a thin layer
over this function, so a Python user gets exactly the report the command writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from aligngoals.errors import ConfigError
from aligngoals.evaluate.run import ProgressFactory
from aligngoals.evaluate.runner import EvalSettings, default_run_id, run_evaluation
from aligngoals.evaluate.samples import write_run_report
from aligngoals.evaluate.suites import resolve_selection
from aligngoals.models.base import Model
from aligngoals.models.registry import load_model
from aligngoals.values.suite import is_value_goal, merge_value_results, run_value_suite


def _load(model: Model | str, *, device: Optional[str], batch_size: int, options: dict) -> tuple[Model, bool]:
    if isinstance(model, str):
        return load_model(model, device=device, batch_size=batch_size, **options), True
    return model, False


def evaluate(
    model: Model | str = "smollm2",
    *,
    suite: Optional[str] = None,
    tasks: Optional[str] = None,
    goal: Optional[str] = None,
    out: Optional[str | Path] = None,
    seed: int = 0,
    limit: Optional[int] = None,
    data_dir: Optional[str | Path] = None,
    in_context_goal: Optional[str] = None,
    scorer: Optional[str] = None,
    judge: Model | str | None = None,
    device: Optional[str] = None,
    batch_size: int = 8,
    prefix_reuse: bool = True,
    prefix_token_id: Optional[int] = None,
    limit_mode: Optional[str] = None,
    ref_model: Model | str | None = None,
    section_map: Optional[str | Path] = None,
    model_options: Optional[dict[str, Any]] = None,
    progress: Optional[ProgressFactory] = None,
    command: Optional[str] = None,
    log: Optional[Callable[[str], None]] = None,
    write: bool = True,
) -> dict:
    """Evaluate ``model`` on a suite, a goal's suites (plus its value suite), or tasks; return the report.

    ``model`` and ``judge`` are ``--model`` strings (``smollm2``, ``hf:DIR``, ``openai:M@URL``, ...)
    or loaded models. Exactly one of ``suite``, ``tasks`` and ``goal`` may be given (default:
    the ``quick`` suite). ``out`` is the run directory (default ``runs/<run-id>``; the same call
    resumes the same run). With ``write`` the report goes to ``out/report.json`` and
    ``report.html``. ``judge`` grades the value suite's safety replies with another model
    instead of the evaluated one. ``prefix_token_id`` overrides the token an empty context is
    conditioned on (lm-eval's ``prefix_token_id``); ``limit_mode`` (``first``/``random``) says which
    N items a limit keeps. ``rm_pairs`` tasks are scored by ``scorer`` (a reward model), else by the
    implicit reward against ``ref_model``, else by log-likelihood; ``section_map`` replaces
    RewardBench's section map.
    """
    _check_selection(suite, tasks, goal, judge)
    label, task_specs, suite_limits = resolve_selection(suite=suite, tasks=tasks, goal=goal)
    if not (suite or tasks or goal):
        suite = "quick"
    settings = EvalSettings(seed=seed, limit=limit, suite=suite, data_dir=str(data_dir) if data_dir else None,
                            limits=suite_limits, goal=goal, limit_mode=limit_mode)
    m, own = _load(model, device=device, batch_size=batch_size, options=model_options or {})
    judge_model, own_judge = (None, False) if judge is None else _load(judge, device=device, batch_size=batch_size,
                                                                       options={})
    try:
        if prefix_token_id is not None:
            m.set_prefix_token_id(prefix_token_id)
        if in_context_goal:
            from aligngoals.align.in_context import InContextGoalModel

            m = InContextGoalModel(m, in_context_goal)
        m.prefix_reuse = prefix_reuse
        run_dir = Path(out) if out else Path("runs") / default_run_id(m.name, label, settings)
        if log:
            log(f"Run directory: {run_dir}")
        report = run_evaluation(m, task_specs, run_dir, settings, progress=progress, command=command, log=log)
        if goal and is_value_goal(goal):  # value goals also run the value suite (norms, safety, dilemmas, questionnaire)
            options = {"judge": "model"} if judge_model is not None else None
            merge_value_results(report, run_value_suite(m, goal, run_dir, settings, progress=progress,
                                                        judge_model=judge_model, options=options))
    finally:
        if own:
            m.close()
        if own_judge and judge_model is not None:
            judge_model.close()
    _post_score(report, run_dir, task_specs, scorer=scorer, ref_model=ref_model, section_map=section_map, seed=seed,
                device=device, batch_size=batch_size, log=log)
    if write:
        write_run_report(report, run_dir)
    return report


def _post_score(report: dict, run_dir: Path, task_specs, *, scorer, ref_model, section_map, seed: int, device,
                batch_size: int, log) -> None:
    """Reward-model scores of generated answers (``--scorer``) and the ``rm_pairs`` tasks' scores."""
    rm = None
    if scorer:
        from aligngoals.align.scoring import add_reward_scores, load_scorer

        rm = load_scorer(scorer, device=device or "cpu", batch_size=batch_size)
        if not add_reward_scores(report, run_dir, rm, seed=seed) and log and not _has_rm_pairs(task_specs):
            log("--scorer: no task in this run has generated answers to score.")
    if _has_rm_pairs(task_specs):
        _score_rm_pairs(report, run_dir, rm, ref_model, section_map, seed=seed, device=device, batch_size=batch_size)


def _check_selection(suite, tasks, goal, judge) -> None:
    if sum(bool(x) for x in (suite, tasks, goal)) > 1:
        raise ConfigError("Pass only one of suite, tasks and goal.", hint="e.g. --suite quick, or --goal hhh.")
    if judge is not None and not goal:
        raise ConfigError("A judge model needs a goal (it judges the value suite of a value goal).",
                          hint="Add --goal hhh; to judge finished runs against each other use 'aligngoals judge --runs A B --judge MODEL'.")


def _has_rm_pairs(task_specs) -> bool:
    return any(t.python == "rm_pairs" for t in task_specs)


def _score_rm_pairs(report: dict, run_dir: Path, rm: Any, ref_model: Model | str | None,
                    section_map: Optional[str | Path], *, seed: int, device: Optional[str], batch_size: int) -> None:
    """Score the rm_pairs tasks: reward model, else DPO implicit reward against ``ref_model``, else log-likelihood."""
    from aligngoals.align.rm_pairs import add_rm_pairs_scores

    ref, own_ref = (None, False)
    if ref_model is not None and rm is None:
        ref, own_ref = _load(ref_model, device=device, batch_size=batch_size, options={})
    try:
        add_rm_pairs_scores(report, run_dir, scorer=rm, ref_model=ref, section_map=section_map, seed=seed)
    finally:
        if own_ref and ref is not None:
            ref.close()
