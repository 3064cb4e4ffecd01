"""Safety and acting under pressure (see :mod:`.task`)."""

from aligngoals.values.safety.refusal import PATTERNS, RefusalDecision, detect_refusal  # noqa: F401
from aligngoals.values.safety.task import CANARY, DEFAULT_SYSTEM, Judgment, SafetyConfig, binary_kappa, plan, run_safety  # noqa: F401
