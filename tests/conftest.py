"""Shared fixtures: the real embedded model on both backends, and ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared datasets folder {SHARED_DATA} (../shared/data beside the repository)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def llama_model():
    """The embedded SmolLM2-135M-Instruct GGUF through llama.cpp (loads in about a second)."""
    from aligngoals.models.registry import load_model

    m = load_model("smollm2")
    yield m
    m.close()


@pytest.fixture(scope="session")
def hf_model():
    """The same GGUF through transformers, dequantized to float32 (about 15 s to load; once per session)."""
    pytest.importorskip("torch")
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    from aligngoals.models.registry import load_model

    return load_model("hf:smollm2", device="cpu", batch_size=4)
