"""Social norms at three difficulties (see :mod:`.task`)."""

from .data import SOURCES, NormItem, load_source  # noqa: F401
from .task import NormsConfig, clean_rule, plan, run_norms  # noqa: F401
