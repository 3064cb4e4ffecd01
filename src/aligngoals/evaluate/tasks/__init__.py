"""Evaluation tasks: declared in YAML (``TaskSpec``) and run by request type."""

from .spec import TaskSpec, load_task_spec  # noqa: F401
