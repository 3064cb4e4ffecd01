"""The evaluation engine: the run context, the cached model layer, tasks, metrics and suites.

``aligngoals.evaluate(model, suite=..., goal=..., ...)`` is also the public Python entry point
for what ``aligngoals eval`` does. That function lives in :mod:`aligngoals.pipeline` (it runs
the value suite and alignment baselines, which sit above this package); calling this package
forwards to it. Why a callable package: ``aligngoals.evaluate`` cannot be both a function
and the name of this subpackage, because importing any ``aligngoals.evaluate.x`` rebinds the
attribute to the package; making the package callable keeps the promised spelling working.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from aligngoals.evaluate.cached import CachedModel
from aligngoals.evaluate.run import Run, package_versions
from aligngoals.evaluate.runner import EvalSettings, run_evaluation
from aligngoals.evaluate.suites import list_suites, load_suite, resolve_selection
from aligngoals.evaluate.tasks import MultipleChoiceTask, TaskSpec, register_task

__all__ = [
    "CachedModel", "EvalSettings", "MultipleChoiceTask", "Run", "TaskSpec", "list_suites", "load_suite",
    "package_versions", "register_task", "resolve_selection", "run_evaluation",
]


class _CallableEngine(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> dict:
        # Loaded by name: the pipeline layer sits above this one (see the module docstring).
        return importlib.import_module("aligngoals.pipeline").evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableEngine
