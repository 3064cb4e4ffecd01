"""Human values: questionnaires, social norms, safety under pressure and dilemmas (the value suite)."""

from aligngoals.values.measurements import Measurement, SuiteEnv
from aligngoals.values.suite import ValueSuiteOptions, is_value_goal, merge_value_results, run_value_suite

__all__ = ["Measurement", "SuiteEnv", "ValueSuiteOptions", "is_value_goal", "merge_value_results", "run_value_suite"]
