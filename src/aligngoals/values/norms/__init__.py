"""Social norms at three difficulties (see :mod:`.task`)."""

from aligngoals.values.norms.data import SOURCES, NormItem, load_source  # noqa: F401
from aligngoals.values.norms.task import NormsConfig, clean_rule, plan, run_norms  # noqa: F401
