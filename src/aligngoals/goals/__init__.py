"""Goals as data: goal specs with prioritised principles, and value systems with their structure.

Why a package of its own: evaluation, synthesis and training all read the same
goal, so what a model is aligned to is declared once and cited everywhere.
"""

from aligngoals.goals.library import (  # noqa: F401
    SpecFile,
    check_goal,
    dump_goal,
    dump_value_system,
    goal_to_dict,
    list_goals,
    list_value_systems,
    load_goal,
    load_spec_file,
    load_value_system,
    resolve_value_system,
)
from aligngoals.goals.spec import (  # noqa: F401
    LEVELS,
    DataRef,
    Goal,
    Principle,
    ValueDimension,
    ValueGroup,
    ValueSystem,
)

__all__ = [
    "LEVELS",
    "DataRef",
    "Goal",
    "Principle",
    "SpecFile",
    "ValueDimension",
    "ValueGroup",
    "ValueSystem",
    "check_goal",
    "dump_goal",
    "dump_value_system",
    "goal_to_dict",
    "list_goals",
    "list_value_systems",
    "load_goal",
    "load_spec_file",
    "load_value_system",
    "resolve_value_system",
]
