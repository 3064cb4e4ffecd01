"""Turn a ``--model`` string into a :class:`Model`.

Accepted forms:

* ``smollm2``            the embedded SmolLM2-135M-Instruct GGUF through llama.cpp
* ``gguf:PATH``          any GGUF file through llama.cpp
* ``hf:DIR``             a transformers model directory (safetensors)
* ``hf:ORG/NAME``        a hub id (loaded with the usual transformers cache; offline here)
* ``hf:PATH.gguf``       a GGUF file loaded (dequantized) by transformers
* ``hf:smollm2``         the embedded GGUF loaded by transformers (trainable)
* ``openai:MODEL@URL``   a served model behind an OpenAI-compatible endpoint (generation only)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aligngoals.errors import ModelError
from aligngoals.models.base import Model
from aligngoals.models.embedded import EMBEDDED_NAME, embedded_gguf_path

KNOWN_PREFIXES = ("gguf:", "hf:", "openai:")


def describe_model_forms() -> str:
    return (
        "Use 'smollm2' (the embedded model), 'gguf:PATH/TO/model.gguf' (llama.cpp), "
        "'hf:DIR' or 'hf:ORG/NAME' (transformers), 'hf:PATH/TO/model.gguf' or 'hf:smollm2' "
        "(transformers on a GGUF file)."
    )


def load_model(spec: str, **options: Any) -> Model:
    """Load the model named by ``spec``; options go to the backend (n_ctx, device, dtype, batch_size)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ModelError("No model given.", hint=describe_model_forms())
    spec = spec.strip()
    if spec == EMBEDDED_NAME:
        from aligngoals.models.llamacpp import LlamaCppModel

        return LlamaCppModel(embedded_gguf_path(), name=EMBEDDED_NAME, **options)
    if spec.startswith("gguf:"):
        from aligngoals.models.llamacpp import LlamaCppModel

        path = Path(spec[len("gguf:"):]).expanduser()
        return LlamaCppModel(path, **options)
    if spec.startswith("hf:"):
        from aligngoals.models.hf import HFModel

        target = spec[len("hf:"):]
        if target == EMBEDDED_NAME:
            return HFModel(str(embedded_gguf_path()), name=f"hf:{EMBEDDED_NAME}", **options)
        return HFModel(target, **options)
    if spec.startswith("openai:"):
        from aligngoals.models.openai_compat import OpenAICompatModel

        rest = spec[len("openai:"):]
        if "@" not in rest:
            raise ModelError(f"Served model {spec!r} has no endpoint.", hint="Write openai:MODEL@http://HOST:PORT/v1.")
        name, url = rest.rsplit("@", 1)
        return OpenAICompatModel(name, url, **options)
    if spec.endswith(".gguf"):
        raise ModelError(
            f"Model {spec!r} looks like a GGUF file but has no backend prefix.",
            hint=f"Write 'gguf:{spec}' for llama.cpp or 'hf:{spec}' for transformers.",
        )
    raise ModelError(f"Unknown model {spec!r}.", hint=describe_model_forms())
