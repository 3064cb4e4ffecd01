"""Format readers. Importing this package registers every format (and its detection rule).

Order matters for detection: specific formats register before the generic
``jsonl``/``json``/``csv`` fallbacks.
"""

from aligngoals.data.readers import benchmarks, evaluation, generic, instructions, preferences, values  # noqa: F401
