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


def _shared_missing_message() -> str:
    return f"needs the shared datasets folder {SHARED_DATA} (../shared/data beside the repository)"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_runtest_setup(item):
    """Tests marked ``needs_shared`` skip without ../shared/data, but fail under CI (CI=true)."""
    if "needs_shared" in item.keywords and not SHARED_DATA.is_dir():
        if _in_ci():
            pytest.fail(f"CI=true but ../shared/data is missing: {_shared_missing_message()}", pytrace=False)
        pytest.skip(_shared_missing_message())


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        if _in_ci():
            pytest.fail(f"CI=true but ../shared/data is missing: {_shared_missing_message()}", pytrace=False)
        pytest.skip(_shared_missing_message())
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


def pytest_collection_modifyitems(config, items):
    """Every test that uses the ``shared_data`` fixture carries the ``needs_shared`` marker (``-m 'not needs_shared'``)."""
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()) and "needs_shared" not in item.keywords:
            item.add_marker(pytest.mark.needs_shared)


@pytest.fixture(scope="session", autouse=True)
def every_written_report_matches_the_schema(tmp_path_factory):
    """After the session, every report.json / survey.json that a run wrote validates against the typed schema.

    A run directory has a store.sqlite; report files a test writes by hand as input (to check
    that readers reject them) live elsewhere and are not checked.
    """
    yield
    from aligngoals.report.schema import read_report

    base = tmp_path_factory.getbasetemp()
    problems = []
    for path in [*base.rglob("report.json"), *base.rglob("survey.json")]:
        if not (path.parent / "store.sqlite").is_file():
            continue
        try:
            read_report(path)
        except Exception as exc:  # collect them all, then fail once
            problems.append(f"{path}: {exc}")
    assert not problems, "reports that do not match docs/report.schema.json:\n" + "\n".join(problems[:20])


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide Llama with random weights and the real SmolLM2 tokenizer and chat
    template (a few MB): every training and pipeline stage runs on it for real in seconds."""
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM

    from aligngoals.align.modeling import load_tokenizer, materialize, resolve_base

    torch.set_num_threads(1)
    tok = load_tokenizer(materialize(resolve_base("smollm2")))  # the dequantized GGUF, cached after the first run
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    out = tmp_path_factory.mktemp("tiny") / "model"
    LlamaForCausalLM(cfg).save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out
