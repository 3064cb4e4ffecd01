"""Whole runs: the public ``evaluate`` entry point and recipes that chain synth, align and evaluate."""
