"""Whole runs: the public :func:`evaluate` entry point (and recipes that chain synth, align and evaluate)."""

from aligngoals.pipeline.evaluation import evaluate

__all__ = ["evaluate"]
