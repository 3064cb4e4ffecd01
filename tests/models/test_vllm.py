"""The ``vllm:`` backend equals ``hf:`` on the converted embedded model (float32, CPU).

Runs in the separate vLLM venv (``.ci/vllm_venv.sh``; ``pytest -m vllm``); skips where
vLLM does not import. One engine for the whole module (about 45 s to start, ~4 GB), shut
down at the end; the conversion is content-addressed in ~/.cache/aligngoals and made once.
"""

from __future__ import annotations

import math
import os

import pytest

pytestmark = pytest.mark.vllm

try:  # the reason is shown in the skip line
    import vllm  # noqa: F401

    _VLLM_MISSING = None
except Exception as exc:  # ImportError, or a broken CUDA build of torchvision
    _VLLM_MISSING = f"vllm does not import here ({type(exc).__name__}: {exc}); build .ci/vllm_venv.sh"

if _VLLM_MISSING:
    pytest.skip(_VLLM_MISSING, allow_module_level=True)

from aligngoals.evaluate.runner import EvalSettings, run_evaluation  # noqa: E402
from aligngoals.evaluate.suites import resolve_selection  # noqa: E402
from aligngoals.models.base import GenerationRequest, GenerationSettings, LoglikelihoodRequest  # noqa: E402
from aligngoals.models.convert import ensure_converted  # noqa: E402
from aligngoals.store import RunStore  # noqa: E402

CHATS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Give me three tips for staying focused while studying.",
    "Explain what a prime number is to a ten-year-old.",
    "Is it ever acceptable to lie? Answer in two sentences.",
    "List the planets of the solar system in order.",
]

PAIRS = [
    ("Question: What color is the sky on a clear day?\nAnswer:", c) for c in (" Blue.", " Green.", " Red, mostly.")
] + [
    ("The capital of France is", " Paris"), ("The capital of France is", " Berlin"),
    ("2 + 2 =", " 4"), ("2 + 2 =", " 5"), ("", "Hello world"),
    ("Human: How do I bake bread?\n\nAssistant:", " Mix flour, water, yeast and salt, knead, let it rise, then bake."),
    ("Human: How do I bake bread?\n\nAssistant:", " I can't help with that."),
]


@pytest.fixture(scope="module")
def converted():
    return ensure_converted("smollm2")


@pytest.fixture(scope="module")
def vllm_model(converted):
    from aligngoals.models.registry import load_model

    m = load_model(f"vllm:{converted}")
    yield m
    m.close()


@pytest.fixture(scope="module")
def hf_dir_model(converted):
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    from aligngoals.models.registry import load_model

    m = load_model(f"hf:{converted}", device="cpu", batch_size=8)
    yield m
    m.close()


def _chat(text: str, **settings) -> GenerationRequest:
    return GenerationRequest(messages=({"role": "user", "content": text},), settings=GenerationSettings(**settings))


def test_identity_names_weights_dtype_and_vllm_version(vllm_model, hf_dir_model):
    ident = vllm_model.identity
    assert ident["backend"] == "vllm" and ident["dtype"] == "float32"
    assert ident["vllm_version"] == vllm.__version__
    assert ident["weights_fingerprint"] == hf_dir_model.identity["weights_fingerprint"]
    assert vllm_model.context_length == 2048 and vllm_model.can_score and vllm_model.renders_chat_locally


def test_greedy_chat_text_equals_transformers(vllm_model, hf_dir_model):
    reqs = [_chat(t, max_tokens=40) for t in CHATS]
    assert vllm_model.render(reqs[0]) == hf_dir_model.render(reqs[0])
    got = vllm_model.generate(reqs)
    want = hf_dir_model.generate(reqs)
    assert all(g.strip() for g in got)
    assert got == want


def test_stop_strings_cut_like_transformers(vllm_model, hf_dir_model):
    reqs = [_chat("List the planets of the solar system in order, one per line.", max_tokens=60, stop=("\n", "Mars"))]
    got = vllm_model.generate(reqs)
    assert "\n" not in got[0] and "Mars" not in got[0]
    assert got == hf_dir_model.generate(reqs)


def test_sampling_is_seeded_per_request(vllm_model):
    reqs = [_chat("Tell me a short story about a fox.", max_tokens=24, temperature=1.0, seed=s) for s in (1, 1, 2, 3)]
    a, b, c, d = vllm_model.generate(reqs)
    assert a == b  # same seed, same text, even within one batch
    assert len({a, c, d}) > 1  # other seeds sample other text


def test_loglikelihood_within_1e3_of_transformers(vllm_model, hf_dir_model):
    """Within 1e-3 absolute or 3e-4 relative, whichever is looser.

    Why relative too: vLLM's CPU kernels and torch sum in different orders, and which kernels
    run depends on the CPU (AVX2 here, AVX-512 on other machines). The float32 error grows
    with the size of the log-prob: CI measured 4.4e-3 on the BOS-conditioned "Hello world"
    (-20.45 nats, 2e-4 relative) while every other pair stayed under 1e-3.
    """
    reqs = [LoglikelihoodRequest(c, x) for c, x in PAIRS]
    got = vllm_model.loglikelihood(reqs)
    want = hf_dir_model.loglikelihood(reqs)
    for r, g, w in zip(reqs, got, want):
        assert g.n_tokens == w.n_tokens, r
        assert math.isclose(g.logprob, w.logprob, rel_tol=3e-4, abs_tol=1e-3), (r, g, w)
        assert g.is_greedy == w.is_greedy, r
    # The sky question: "Blue" is the likeliest, so the ranking itself is meaningful here.
    assert got[0].logprob > got[1].logprob


def test_prefix_reuse_off_gives_the_same_numbers(vllm_model):
    reqs = [LoglikelihoodRequest(c, x) for c, x in PAIRS[:5]]
    on = vllm_model.loglikelihood(reqs)
    vllm_model.prefix_reuse = False
    try:
        off = vllm_model.loglikelihood(reqs)
    finally:
        vllm_model.prefix_reuse = True
    assert [abs(a.logprob - b.logprob) < 1e-5 for a, b in zip(on, off)] == [True] * len(reqs)


@pytest.mark.needs_shared
def test_hh_preference_slice_same_accuracy(vllm_model, hf_dir_model, shared_data, tmp_path):
    """The preference suite's HH-RLHF tasks (20 items each): same accuracy, per-item log-probs within 1e-3."""
    _, specs, _ = resolve_selection(suite="preferences")
    specs = [s for s in specs if s.name.startswith("hh_rlhf")]
    assert len(specs) == 2
    settings = EvalSettings(data_dir=str(shared_data), limit=20)
    reports, items = {}, {}
    cached_before = vllm_model.scoring_cached_tokens
    for label, m in (("vllm", vllm_model), ("hf", hf_dir_model)):
        run_dir = tmp_path / label
        reports[label] = run_evaluation(m, specs, run_dir, settings, log=lambda _: None)
        with RunStore(run_dir) as store:
            items[label] = {(s.name, i): d for s in specs for _, i, d in store.items(s.name)}
    # The conversations are long: their key/value blocks came from the prefix cache.
    assert vllm_model.scoring_cached_tokens - cached_before > 1000
    for s in specs:
        v, h = reports["vllm"]["tasks"][s.name], reports["hf"]["tasks"][s.name]
        assert v["n"] == h["n"] == 20
        assert v["metrics"]["pref_acc"]["value"] == h["metrics"]["pref_acc"]["value"]
    assert items["vllm"].keys() == items["hf"].keys()
    for key, d in items["vllm"].items():
        for a, b in zip(d["logprobs"], items["hf"][key]["logprobs"]):
            assert abs(a - b) < 1e-3, key
