"""Task classes by request type, and the registry of tasks written in Python.

A Python task subclasses one of the request-type classes and overrides the hooks
it needs. Register it with :func:`register_task`; a YAML file then uses it with
``python: NAME``, and when the class defines ``default_spec()`` it is also a
complete task that ``--tasks NAME`` runs and ``aligngoals tasks list`` shows::

    from aligngoals.evaluate.tasks import MultipleChoiceTask, TaskSpec, register_task

    @register_task("my_task")
    class MyTask(MultipleChoiceTask):
        @classmethod
        def default_spec(cls):
            return TaskSpec(name="my_task", level="values", data={"path": "my.jsonl", "format": "jsonl"})

        def process_doc(self, doc):
            doc["choices"] = [doc["good"], doc["bad"]]; doc["answer"] = 0
            return doc

``--tasks my_package.my_module:my_task`` imports the module first, so user tasks
need no entry in aligngoals itself.
"""

from __future__ import annotations

import importlib
from typing import Callable, Optional

from aligngoals.errors import ConfigError
from aligngoals.evaluate.tasks.base import Task
from aligngoals.evaluate.tasks.generation import GenerationTask
from aligngoals.evaluate.tasks.multiple_choice import GeneratedChoiceTask, MultipleChoiceTask
from aligngoals.evaluate.tasks.pair import PairTask
from aligngoals.evaluate.tasks.spec import TaskSpec
from aligngoals.plugins import GROUPS, Registry

TYPE_CLASSES: dict[str, type[Task]] = {
    "multiple_choice": MultipleChoiceTask,
    "mc_generate": GeneratedChoiceTask,
    "generate": GenerationTask,
    "pair": PairTask,
}

#: Tasks written in Python: the built-ins register on import; plug-ins through the
#: ``aligngoals.tasks`` entry-point group (naming a Task subclass, or a module that uses @register_task).
TASKS: Registry[type[Task]] = Registry("Python task", GROUPS["tasks"],
                                       builtin_modules=("aligngoals.evaluate.builtin.python_tasks",))


def register_task(name: str) -> Callable[[type[Task]], type[Task]]:
    """Class decorator: make a :class:`Task` subclass available as ``python: NAME`` (and ``--tasks NAME``)."""

    def deco(cls: type[Task]) -> type[Task]:
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise TypeError(f"register_task({name!r}) needs a Task subclass, got {cls!r}")
        return TASKS.add(name, cls, origin=cls.__module__)

    return deco


def registered() -> dict[str, type[Task]]:
    out = dict(TASKS.items())
    for name, cls in out.items():
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise ConfigError(f"Plug-in task {name!r} ({TASKS.origin(name)}) is not a Task subclass.",
                              hint="An 'aligngoals.tasks' entry point must name a Task subclass or a module.")
    return out


def python_task_specs() -> dict[str, TaskSpec]:
    """Registered Python tasks that are complete tasks (they define ``default_spec``)."""
    out = {}
    for name, cls in registered().items():
        fn = getattr(cls, "default_spec", None)
        if callable(fn):
            spec = fn()
            out[name] = spec.model_copy(update={"python": spec.python or name})
    return out


def lookup_python_task(ref: str) -> Optional[TaskSpec]:
    """``NAME`` of a registered complete task, or ``module.path:NAME`` (imports the module first)."""
    if ":" in ref and not ref.endswith((".yaml", ".yml")):
        module, _, name = ref.partition(":")
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"Cannot import {module!r} for task {ref!r}: {exc}.",
                              hint="Is the module on PYTHONPATH?") from exc
        specs = python_task_specs()
        if name not in specs:
            raise ConfigError(f"Module {module!r} registers no complete task named {name!r}.",
                              hint="Decorate a Task subclass with @register_task(NAME) and give it default_spec().")
        return specs[name]
    return python_task_specs().get(ref)


def make_task(spec: TaskSpec) -> Task:
    """The task object for a spec: its registered Python class, else the class of its request type."""
    if spec.python:
        classes = registered()
        if spec.python not in classes:
            raise ConfigError(f"Task {spec.name}: no Python task {spec.python!r} is registered.",
                              hint=f"Registered: {', '.join(sorted(classes)) or '(none)'}.")
        cls = classes[spec.python]
        if cls.type != spec.type and cls.type != "base":
            raise ConfigError(f"Task {spec.name}: Python task {spec.python!r} implements type {cls.type!r} "
                              f"but the task file says type {spec.type!r}.", hint=f"Set type: {cls.type}.")
        return cls(spec)
    return TYPE_CLASSES[spec.type](spec)
