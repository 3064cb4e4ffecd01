"""LLM-as-a-judge: single-answer grading, position-swapped pairwise comparison, rubrics from goals.

Why a package: judging has four separable parts that users customise
independently: the prompt templates (:mod:`.templates`), the criteria
(:mod:`.rubric`, generic or a goal's principles), the judges themselves
(:mod:`.judge`) with their robust verdict parser (:mod:`.parsing`), and the
run-level plumbing that reads earlier runs' generations and stores verdicts
(:mod:`.runs`). Ratings computed from verdicts live in
:mod:`aligngoals.judges.ratings`. See ``docs/judging.md``.
"""

from aligngoals.judges.judge import (  # noqa: F401
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
from aligngoals.judges.parsing import Verdict, parse_pairwise, parse_principles, parse_rating  # noqa: F401
from aligngoals.judges.rubric import Rubric  # noqa: F401
from aligngoals.judges.runs import (  # noqa: F401
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
from aligngoals.judges.templates import (  # noqa: F401
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
