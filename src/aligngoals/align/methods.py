"""Alignment methods as data: one :class:`MethodSpec` per method, in one registry.

Why: a method used to be named in half a dozen places (config literals, default
tables, the trainer table, data checks, the measurement, the CLI help). Its spec
now says once what data it learns from, which model it trains, whether it samples
answers and needs a reward model, its CPU defaults, and which function trains it.
A plug-in adds a method with an entry point in the ``aligngoals.methods`` group
naming a ``MethodSpec``.

Trainers are named by import path (``"module:function"``) and imported when a run
starts, so this table stays importable without torch and without import cycles.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional

from aligngoals.plugins import GROUPS, Registry


@dataclass(frozen=True)
class MethodSpec:
    """What one alignment method needs and how it trains."""

    name: str
    trainer: str | Callable[..., Any]
    """``"module:function"`` or the function: ``train(run, model, tokenizer) -> TrainOutcome``."""
    data: Literal["demonstrations", "pairs", "prompts"]
    """What it learns from: answers to imitate, comparisons, or prompts it answers itself."""
    lr: tuple[float, float]
    """Default learning rate (full fine-tuning, LoRA): moves SmolLM2-135M visibly in a few hundred
    CPU steps without diverging (docs/alignment.md)."""
    model_kind: Literal["causal_lm", "sequence_classifier"] = "causal_lm"
    beta: Optional[float] = None
    """KL (rloo, ppo) or preference-temperature (dpo) coefficient."""
    k: Optional[int] = None
    """Answers sampled per prompt by default (None: the method does not sample)."""
    min_k: int = 0
    needs_reward_model: bool = False
    description: str = ""

    @property
    def samples(self) -> bool:
        return self.k is not None

    def load_trainer(self) -> Callable[..., Any]:
        if callable(self.trainer):
            return self.trainer
        module, _, func = self.trainer.partition(":")
        return getattr(importlib.import_module(module), func)


METHODS: Registry[MethodSpec] = Registry("alignment method", GROUPS["methods"])


def register_method(spec: MethodSpec) -> MethodSpec:
    return METHODS.add(spec.name, spec, origin=spec.trainer if isinstance(spec.trainer, str) else spec.trainer.__module__)


for _spec in (
    MethodSpec("sft", "aligngoals.align.trl_methods:train_sft", "demonstrations", (2e-5, 2e-4),
               description="supervised fine-tuning on demonstrations (TRL SFTTrainer)"),
    MethodSpec("reward", "aligngoals.align.trl_methods:train_reward", "pairs", (1e-5, 2e-4),
               model_kind="sequence_classifier", description="a Bradley-Terry reward model on comparisons (TRL RewardTrainer)"),
    MethodSpec("dpo", "aligngoals.align.trl_methods:train_dpo", "pairs", (5e-6, 1e-4), beta=0.1,
               description="direct preference optimization (TRL DPOTrainer)"),
    MethodSpec("rloo", "aligngoals.align.trl_methods:train_rloo", "prompts", (1e-6, 2e-5), beta=0.05, k=2, min_k=2,
               needs_reward_model=True, description="REINFORCE leave-one-out against a reward model (TRL RLOOTrainer)"),
    MethodSpec("ppo", "aligngoals.align.online:train_ppo", "prompts", (1e-6, 2e-5), beta=0.05, k=1, min_k=1,
               needs_reward_model=True, description="PPO with a value head against a reward model"),
    MethodSpec("raft", "aligngoals.align.online:train_raft", "prompts", (1e-5, 1e-4), k=4, min_k=1,
               needs_reward_model=True, description="reward-ranked fine-tuning: SFT on the best of k samples"),
    MethodSpec("rrhf", "aligngoals.align.online:train_rrhf", "prompts", (1e-5, 1e-4), k=2,
               description="ranking loss over candidates (the data's answers or k samples scored by a reward model)"),
):
    register_method(_spec)


def method_names() -> list[str]:
    return METHODS.names()


def get_method(name: str) -> MethodSpec:
    return METHODS.get(name)
