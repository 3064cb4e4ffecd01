"""Dilemmas and value priorities (see :mod:`.task`)."""

from aligngoals.values.dilemmas.scenarios import DilemmaSet, Scenario, list_builtin, load_dilemma_set, save_dilemma_set  # noqa: F401
