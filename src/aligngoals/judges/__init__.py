"""LLM-as-a-judge: single-answer grading, position-swapped pairwise comparison, rubrics from goals.

Why a package: judging has four separable parts that users customise
independently: the prompt templates (:mod:`.templates`), the criteria
(:mod:`.rubric`, generic or a goal's principles), the judges themselves
(:mod:`.judge`) with their robust verdict parser (:mod:`.parsing`), and the
run-level plumbing that reads earlier runs' generations and stores verdicts
(:mod:`.runs`). Ratings computed from verdicts live in
:mod:`aligngoals.judges.ratings`. See ``docs/judging.md``.
"""

from aligngoals.judges.judge import (
    Judgment,
    PairInput,
    PairResult,
    PairwiseJudge,
    SingleInput,
    SingleJudge,
    SingleResult,
    combine_orders,
    default_judge_settings,
)
from aligngoals.judges.parsing import Verdict, parse_pairwise, parse_principles, parse_rating
from aligngoals.judges.rubric import Rubric
from aligngoals.judges.runs import (
    MatchedItem,
    RunRef,
    battles_from_records,
    default_judge_dir,
    human_agreement,
    judge_leaderboard,
    judge_runs,
    load_judge_run,
    match_items,
    open_runs,
    read_generations,
    read_human_labels,
    summarize_records,
)
from aligngoals.judges.templates import (
    Template,
    TemplateSet,
    default_templates,
    load_mt_bench_templates,
    load_templates,
)

__all__ = [
    "Judgment", "PairInput", "PairResult", "PairwiseJudge", "SingleInput", "SingleJudge", "SingleResult",
    "combine_orders", "default_judge_settings", "Verdict", "parse_pairwise", "parse_principles", "parse_rating",
    "Rubric", "MatchedItem", "RunRef", "battles_from_records", "default_judge_dir", "human_agreement",
    "judge_leaderboard", "judge_runs", "load_judge_run", "match_items", "open_runs", "read_generations", "read_human_labels",
    "summarize_records", "Template", "TemplateSet", "default_templates", "load_mt_bench_templates", "load_templates",
]
from aligngoals.judges.modes import JUDGE_MODES, JudgeMode, PairwiseMode, SingleMode

__all__ = [
    "JUDGE_MODES",
    "JudgeMode",
    "Judgment",
    "MatchedItem",
    "PairInput",
    "PairResult",
    "PairwiseJudge",
    "PairwiseMode",
    "Rubric",
    "RunRef",
    "SingleInput",
    "SingleJudge",
    "SingleMode",
    "SingleResult",
    "Template",
    "TemplateSet",
    "Verdict",
    "battles_from_records",
    "combine_orders",
    "default_judge_dir",
    "default_judge_settings",
    "default_templates",
    "human_agreement",
    "judge_leaderboard",
    "judge_runs",
    "load_judge_run",
    "load_mt_bench_templates",
    "load_templates",
    "match_items",
    "open_runs",
    "parse_pairwise",
    "parse_principles",
    "parse_rating",
    "read_generations",
    "read_human_labels",
    "summarize_records",
]
