"""Alignment algorithms: move a model toward a goal, then measure how far it moved.

* :class:`InContextGoalModel` (``in_context``): the zero-training baseline, the
  goal's principles in the system prompt.
* ``sft``, ``reward``, ``dpo``, ``rloo`` through TRL (:mod:`.trl_methods`);
  ``ppo``, ``raft``, ``rrhf`` on our own shared online loop (:mod:`.online`).
* :func:`run_alignment` runs one method end to end from an :class:`AlignConfig`
  (what ``aligngoals align METHOD`` does); :func:`compare_runs` gives the
  before/after differences with intervals (``aligngoals compare``).

Imports are lazy so that ``import aligngoals.align`` does not load torch.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AlignConfig", "METHODS", "make_config", "run_alignment", "AlignResult", "InContextGoalModel",
    "compare_runs", "load_scorer", "RewardModelScorer", "merge_adapter",
]

_LAZY = {
    "AlignConfig": ("config", "AlignConfig"),
    "METHODS": ("config", "METHODS"),
    "make_config": ("config", "make_config"),
    "run_alignment": ("runner", "run_alignment"),
    "AlignResult": ("runner", "AlignResult"),
    "InContextGoalModel": ("in_context", "InContextGoalModel"),
    "compare_runs": ("compare", "compare_runs"),
    "load_scorer": ("scoring", "load_scorer"),
    "RewardModelScorer": ("scoring", "RewardModelScorer"),
    "merge_adapter": ("modeling", "merge_adapter"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(f"{__name__}.{mod}"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
