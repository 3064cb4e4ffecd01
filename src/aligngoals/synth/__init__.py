"""Data synthesis: turn a goal's principles and a model into SFT data and preference pairs.

Methods (the survey's model-synthesized feedback): constitutional critique-and-revise,
SELF-ALIGN style principle-driven answers, AI feedback over sampled answer pairs, and
Self-Instruct instruction generation. All go through the run store, so a long
synthesis resumes after interruption.
"""

from aligngoals.synth.ai_feedback import ai_feedback_pairs
from aligngoals.synth.common import SynthResult, load_prompts
from aligngoals.synth.constitutional import critique_and_revise
from aligngoals.synth.self_align import principles_prompt, red_team_prompts, self_align, verbose_cloning
from aligngoals.synth.self_instruct import load_seed_instructions, self_instruct

__all__ = ["SynthResult", "ai_feedback_pairs", "critique_and_revise", "load_prompts", "load_seed_instructions",
           "principles_prompt", "red_team_prompts", "self_align", "self_instruct", "verbose_cloning"]
