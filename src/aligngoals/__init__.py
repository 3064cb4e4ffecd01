"""aligngoals: make what a language model is aligned to explicit, measurable and trainable.

The package follows the three levels of alignment goals of Yao et al. (2023),
*From Instructions to Intrinsic Human Values*: human instructions, human
preferences and human values. Data flows one way:
goal + data -> requests -> model -> store -> scores -> report.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``aligngoals.evaluate(...)`` before the evaluate package was imported (it is callable once it is)."""
    if name == "evaluate":
        import importlib

        return importlib.import_module("aligngoals.evaluate")
    raise AttributeError(name)
