"""Format readers. Importing this package registers every format (and its detection rule).

Order matters for detection: specific formats register before the generic
``jsonl``/``json``/``csv`` fallbacks.
"""

from . import instructions, preferences, values, evaluation, generic  # noqa: F401
