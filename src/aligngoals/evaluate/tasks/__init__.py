"""Evaluation tasks: declared in YAML (``TaskSpec``) or in Python (``register_task``), run by request type.

Request types: ``multiple_choice`` (log-likelihood of each choice), ``mc_generate``
(generated choice letter), ``generate`` (free generation against references) and
``pair`` (chosen vs rejected log-likelihood). See docs/tasks.md.
"""

from aligngoals.evaluate.tasks.base import BuildContext, Prepared, Task  # noqa: F401
from aligngoals.evaluate.tasks.generation import GenerationTask  # noqa: F401
from aligngoals.evaluate.tasks.multiple_choice import GeneratedChoiceTask, MultipleChoiceTask  # noqa: F401
from aligngoals.evaluate.tasks.pair import PairTask  # noqa: F401
from aligngoals.evaluate.tasks.registry import make_task, register_task, registered  # noqa: F401
from aligngoals.evaluate.tasks.spec import TaskSpec, load_task_spec  # noqa: F401
