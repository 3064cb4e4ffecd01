"""Dilemmas and value priorities (see :mod:`.task`)."""

from .scenarios import DilemmaSet, Scenario, list_builtin, load_dilemma_set, save_dilemma_set  # noqa: F401
