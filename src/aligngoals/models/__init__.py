"""Models: the Scorer and Generator protocols and their backends, behind one registry of ``--model`` forms."""

from aligngoals.models.base import (
    ChatMessage,
    GenerationRequest,
    GenerationSettings,
    Generator,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    Model,
    Scorer,
    require_scoring,
)
from aligngoals.models.registry import BACKENDS, BackendSpec, describe_model_forms, load_model, register_backend

__all__ = [
    "BACKENDS", "BackendSpec", "ChatMessage", "GenerationRequest", "GenerationSettings", "Generator",
    "LoglikelihoodRequest", "LoglikelihoodResult", "Model", "Scorer", "describe_model_forms", "load_model",
    "register_backend", "require_scoring",
]
