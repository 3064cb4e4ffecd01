"""Turn a ``--model`` string into a model: one registry of backends, keyed by prefix.

Built-in forms:

* ``smollm2``            the embedded SmolLM2-135M-Instruct GGUF through llama.cpp
* ``gguf:PATH``          any GGUF file through llama.cpp
* ``hf:DIR``             a transformers model directory (safetensors)
* ``hf:ORG/NAME``        a hub id (loaded with the usual transformers cache; offline here)
* ``hf:PATH.gguf``       a GGUF file loaded (dequantized) by transformers
* ``hf:smollm2``         the embedded GGUF loaded by transformers (trainable)
* ``openai:MODEL@URL``   a served model behind an OpenAI-compatible endpoint

A plug-in package adds a backend with an entry point in the ``aligngoals.backends``
group naming a :class:`BackendSpec` (see docs/extending.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from aligngoals.errors import ModelError
from aligngoals.models.base import Model
from aligngoals.models.embedded import EMBEDDED_NAME, embedded_gguf_path
from aligngoals.plugins import GROUPS, Registry


@dataclass(frozen=True)
class BackendSpec:
    """One backend: the ``PREFIX:`` it answers to and how to load ``PREFIX:TARGET``.

    ``load(target, **options)`` returns a :class:`~aligngoals.models.base.Model`;
    ``forms`` is the one-line help shown when a model string is not understood.
    """

    prefix: str
    load: Callable[..., Model]
    forms: str
    description: str = ""


BACKENDS: Registry[BackendSpec] = Registry("model backend", GROUPS["backends"])


def register_backend(spec: BackendSpec) -> BackendSpec:
    return BACKENDS.add(spec.prefix, spec, origin=getattr(spec.load, "__module__", "aligngoals"))


def _load_gguf(target: str, **options: Any) -> Model:
    from aligngoals.models.llamacpp import LlamaCppModel

    if target == EMBEDDED_NAME:
        return LlamaCppModel(embedded_gguf_path(), name=EMBEDDED_NAME, **options)
    return LlamaCppModel(Path(target).expanduser(), **options)


def _load_hf(target: str, **options: Any) -> Model:
    from aligngoals.models.hf import HFModel

    if target == EMBEDDED_NAME:
        return HFModel(str(embedded_gguf_path()), name=f"hf:{EMBEDDED_NAME}", **options)
    return HFModel(target, **options)


def _load_openai(target: str, **options: Any) -> Model:
    from aligngoals.models.openai_compat import OpenAICompatModel

    if "@" not in target:
        raise ModelError(f"Served model 'openai:{target}' has no endpoint.", hint="Write openai:MODEL@http://HOST:PORT/v1.")
    name, url = target.rsplit("@", 1)
    return OpenAICompatModel(name, url, **options)


for _spec in (
    BackendSpec("gguf", _load_gguf, "'gguf:PATH/TO/model.gguf' (llama.cpp)", "GGUF files through llama-cpp-python"),
    BackendSpec("hf", _load_hf, "'hf:DIR', 'hf:ORG/NAME', 'hf:PATH.gguf' or 'hf:smollm2' (transformers)",
                "transformers on CPU or CUDA"),
    BackendSpec("openai", _load_openai, "'openai:MODEL@http://HOST:PORT/v1' (a served model)",
                "any OpenAI-compatible endpoint"),
):
    register_backend(_spec)


def describe_model_forms() -> str:
    forms = "; ".join(spec.forms for _, spec in BACKENDS.items())
    return f"Use '{EMBEDDED_NAME}' (the embedded model) or {forms}."


def load_model(spec: str, **options: Any) -> Model:
    """Load the model named by ``spec``; options go to the backend (n_ctx, device, dtype, batch_size)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ModelError("No model given.", hint=describe_model_forms())
    spec = spec.strip()
    if spec == EMBEDDED_NAME:
        return _load_gguf(EMBEDDED_NAME, **options)
    prefix, sep, target = spec.partition(":")
    if sep and prefix in BACKENDS:
        return BACKENDS.get(prefix).load(target, **options)
    if spec.endswith(".gguf"):
        raise ModelError(
            f"Model {spec!r} looks like a GGUF file but has no backend prefix.",
            hint=f"Write 'gguf:{spec}' for llama.cpp or 'hf:{spec}' for transformers.",
        )
    raise ModelError(f"Unknown model {spec!r}.", hint=describe_model_forms())
