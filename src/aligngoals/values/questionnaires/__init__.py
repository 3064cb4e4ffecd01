"""Value questionnaires: instruments with scoring keys, administration to a model, and scores.

The survey's value level (Yao et al. 2023) measures what a model values by giving it the
questionnaires psychologists give people (Schwartz's PVQ, the Moral Foundations Questionnaire,
Hofstede's VSM). This package keeps each instrument and its published scoring key as data,
asks every item under several prompt variants (rating or option-distribution mode), and reports
the profile with intervals, its stability across variants and its internal consistency.

Public API::

    from aligngoals.values.questionnaires import run_survey, resolve_instrument
    result = run_survey("smollm2", "schwartz", variants=4, out_dir="runs/pvq")
"""

from aligngoals.values.questionnaires.instrument import (
    IndexFormula,
    Instrument,
    Item,
    Prompting,
    Scale,
    ScalePoint,
    Scoring,
    load_instrument_file,
)
from aligngoals.values.questionnaires.prompts import Variant, design_variants, label_distribution, parse_answer
from aligngoals.values.questionnaires.scoring import Scorer, keyed_matrix, pooled_scores
from aligngoals.values.questionnaires.stats import bootstrap_intervals, compare_profiles, cronbach_alpha, icc, js_distance
from aligngoals.values.questionnaires.survey import SURVEY_FILENAME, load_target, run_survey
from aligngoals.values.questionnaires.valuebench import (
    builtin_instruments,
    builtin_keys,
    find_valuebench_csv,
    list_inventories,
    load_key,
    load_valuebench,
    resolve_instrument,
    to_records,
)

__all__ = [
    "Instrument", "IndexFormula", "Item", "Prompting", "Scale", "ScalePoint", "Scoring", "load_instrument_file",
    "Variant", "design_variants", "label_distribution", "parse_answer",
    "Scorer", "keyed_matrix", "pooled_scores",
    "bootstrap_intervals", "compare_profiles", "cronbach_alpha", "icc", "js_distance",
    "SURVEY_FILENAME", "load_target", "run_survey",
    "builtin_instruments", "builtin_keys", "find_valuebench_csv", "list_inventories", "load_key", "load_valuebench",
    "resolve_instrument", "to_records",
]
