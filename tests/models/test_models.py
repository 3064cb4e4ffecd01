"""The model interface on both backends, with the real embedded model."""

from __future__ import annotations

import math

import pytest

from aligngoals.errors import AligngoalsError, ModelError
from aligngoals.models.base import (
    ChatMessage,
    GenerationRequest,
    GenerationSettings,
    LoglikelihoodRequest,
)
from aligngoals.models.registry import load_model

CTX = "Question: Which animal says meow?\nAnswer:"
CHOICES = [" a cat", " a dog that barks loudly at night", " a cow in a green field", " fish", " a small bird singing"]


def _requests():
    reqs = [LoglikelihoodRequest(CTX, c) for c in CHOICES]
    reqs.append(LoglikelihoodRequest("The sky is ", "blue"))  # trailing space moves to the continuation
    reqs.append(LoglikelihoodRequest("", "Hello world"))  # empty context: scored after BOS (lm-eval)
    return reqs


@pytest.mark.parametrize("backend, tolerance", [("llama_model", 0.3), ("hf_model", 1e-4)])
def test_prefix_reuse_equals_naive(backend, tolerance, request):
    """The issue's bar is 1e-4 nats on the hf backend (float32, same arithmetic either way).

    llama.cpp picks its CPU matmul kernel by batch shape and quantizes activations per
    batch, so scoring a choice in a separate batch from its context can move a
    log-likelihood by up to ~0.2 nats (0.175 measured on the quick suite by
    benchmarks/prefix_reuse.py); the same holds for any two batchings in llama.cpp.
    """
    model = request.getfixturevalue(backend)
    reqs = _requests()
    model.prefix_reuse = True
    shared = model.loglikelihood(reqs)
    model.prefix_reuse = False
    try:
        naive = model.loglikelihood(reqs)
    finally:
        model.prefix_reuse = True
    for s, n in zip(shared, naive):
        assert s.n_tokens == n.n_tokens
        assert s.is_greedy == n.is_greedy
        assert abs(s.logprob - n.logprob) < tolerance, (s, n)
    assert all(r.logprob < 0 for r in shared)


def test_hf_prefix_reuse_with_more_choices_than_batch(hf_model):
    """More multi-token choices than the batch size exercises the KV-cache copy path."""
    conts = [f" option number {i} is right" for i in range(11)]
    reqs = [LoglikelihoodRequest("Pick one.", c) for c in conts]
    hf_model.prefix_reuse = True
    shared = hf_model.loglikelihood(reqs)
    hf_model.prefix_reuse = False
    naive = hf_model.loglikelihood(reqs)
    hf_model.prefix_reuse = True
    assert max(abs(a.logprob - b.logprob) for a, b in zip(shared, naive)) < 1e-4


def test_encode_pair_matches_lm_eval_rule(llama_model):
    ctx, cont = llama_model.encode_pair("The sky is ", "blue")
    assert llama_model.tokenize("The sky is") == ctx
    assert llama_model.tokenize("The sky is blue")[len(ctx):] == cont


def test_greedy_flag_on_the_models_own_continuation(llama_model):
    text = llama_model.generate([GenerationRequest(prompt=CTX, settings=GenerationSettings(max_tokens=4))])[0]
    assert text
    res = llama_model.loglikelihood([LoglikelihoodRequest(CTX, text)])[0]
    ctx, cont = llama_model.encode_pair(CTX, text)
    # Re-tokenising generated text can differ from the generated ids only in rare merges.
    if llama_model.tokenize(CTX + text)[len(ctx):] == cont:
        assert res.is_greedy


@pytest.mark.parametrize("backend", ["llama_model", "hf_model"])
def test_generation_chat_stop_and_seed(backend, request):
    model = request.getfixturevalue(backend)
    msgs = [ChatMessage("user", "List three colours, one per line.")]
    prompt = model.apply_chat_template(msgs)
    assert "<|im_start|>user" in prompt and prompt.rstrip().endswith("assistant")
    greedy = GenerationSettings(max_tokens=24)
    a, b = model.generate([GenerationRequest(messages=msgs, settings=greedy)] * 2)
    assert a == b and a.strip()
    stopped = model.generate([GenerationRequest(messages=msgs, settings=GenerationSettings(max_tokens=24, stop=("\n",)))])[0]
    assert "\n" not in stopped
    sampled = GenerationSettings(max_tokens=16, temperature=1.0, top_p=0.95, seed=7)
    s1 = model.generate([GenerationRequest(messages=msgs, settings=sampled)])[0]
    s2 = model.generate([GenerationRequest(messages=msgs, settings=sampled)])[0]
    assert s1 == s2, "the same seed must give the same sample"


def test_backends_agree_on_scores(llama_model, hf_model):
    """llama.cpp runs Q4_1 weights against 8-bit-quantized activations; transformers
    dequantizes to float32. Same weights, different arithmetic: log-likelihoods differ
    by up to about a nat on long continuations (measured on the quick suite: mean
    0.17-0.27, max 0.94), so the ranking of clearly separated choices agrees."""
    reqs = [LoglikelihoodRequest(CTX, c) for c in CHOICES]
    a = llama_model.loglikelihood(reqs)
    b = hf_model.loglikelihood(reqs)
    for x, y in zip(a, b):
        assert x.n_tokens == y.n_tokens
        assert abs(x.logprob - y.logprob) < 1.5
    assert max(range(len(a)), key=lambda i: a[i].logprob) == max(range(len(b)), key=lambda i: b[i].logprob)


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("no-such-model", "Unknown model 'no-such-model'"),
        ("gguf:/nonexistent/model.gguf", "does not exist"),
        ("model.gguf", "has no backend prefix"),
        ("hf:/nonexistent/dir/model.gguf", "does not exist"),
        ("", "No model given"),
    ],
)
def test_model_errors_are_actionable(spec, fragment):
    with pytest.raises(ModelError) as exc:
        load_model(spec)
    assert fragment in exc.value.message
    assert exc.value.hint


def test_not_a_gguf_file(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match="not a GGUF file"):
        load_model(f"gguf:{bad}")


def test_hf_directory_without_config(tmp_path):
    with pytest.raises(ModelError, match="no config.json"):
        load_model(f"hf:{tmp_path}")


def test_request_validation():
    with pytest.raises(AligngoalsError):
        GenerationRequest()
    with pytest.raises(AligngoalsError):
        GenerationSettings(max_tokens=0)
    with pytest.raises(AligngoalsError):
        ChatMessage("robot", "hi")


@pytest.mark.parametrize("backend", ["llama_model", "hf_model"])
def test_empty_context_is_conditioned_on_bos_like_lm_eval(backend, request):
    """lm-eval's ``HFLM.prefix_token_id``: BOS when the tokenizer has one (SmolLM2: 1, ``<|im_start|>``),
    else end-of-text (SmolLM2: 2); ``--prefix-token-id`` overrides it and the override reaches the
    identity (so stored answers for another token are not reused) and the report's model section."""
    model = request.getfixturevalue(backend)
    assert model.prefix_token_id == 1
    assert model.encode_pair("", "Hello world")[0] == [1]
    assert model.encode_pair("Hi", " there")[0] == model.tokenize("Hi")  # a non-empty context is not prefixed
    assert model.info["prefix_token_id"] == 1 and model.identity["prefix_token_id"] == 1
    req = [LoglikelihoodRequest("", "Hello world")]
    bos = model.loglikelihood(req)[0].logprob
    model.set_prefix_token_id(2)
    try:
        assert model.prefix_token_id == 2 and model.identity["prefix_token_id"] == 2
        eot = model.loglikelihood(req)[0].logprob
        # the same as scoring after the end-of-text token given as an explicit context token
        ref = model._score_full([([2], model.tokenize("Hello world"))])[0].logprob
        assert eot == pytest.approx(ref, abs=1e-3)
        assert abs(bos - eot) > 1e-3
        with pytest.raises(AligngoalsError, match="outside the vocabulary"):
            model.set_prefix_token_id(10**9)
        with pytest.raises(AligngoalsError, match="non-negative"):
            model.set_prefix_token_id(-1)
    finally:
        model.set_prefix_token_id(None)
    assert model.prefix_token_id == 1


PRIMER = "".join(f"Q: What is {i} plus {i}?\nA: {2 * i}.\n\n" for i in range(1, 5))


@pytest.mark.parametrize("backend", ["llama_model", "hf_model"])
def test_cross_item_prefix_reuse_equals_per_item_scoring(backend, request):
    """Items sharing a few-shot primer reuse its key/value state across items (llama.cpp: the cache is
    rolled back to the shared prefix; transformers: the primer's cache expanded to the batch); the numbers
    equal per-item scoring to 1e-4 nats, including items that share more or less than the primer."""
    model = request.getfixturevalue(backend)
    reqs = [LoglikelihoodRequest(PRIMER + f"Q: What is {q}?\nA:", c)
            for q in ("7 plus 7", "7 plus 8", "9 minus 1", "the capital of France")
            for c in (" 14.", " 15.", " Paris.")]
    reqs.append(LoglikelihoodRequest("Unrelated context without the primer.", " Yes."))
    model.cross_item_reuse = False
    try:
        alone = model.loglikelihood(reqs)
        model.cross_item_reuse = True
        shared = model.loglikelihood(reqs)
        again = model.loglikelihood(list(reversed(reqs)))[::-1]  # another order, the kept state changes
    finally:
        model.cross_item_reuse = True
    for a, s, g in zip(alone, shared, again):
        assert a.n_tokens == s.n_tokens and a.is_greedy == s.is_greedy
        assert abs(a.logprob - s.logprob) < 1e-4 and abs(a.logprob - g.logprob) < 1e-4, (a, s, g)
    if backend == "hf_model":
        assert model._primer is not None and len(model._primer[0]) >= len(model.tokenize(PRIMER)) - 1


@pytest.mark.parametrize("backend", ["llama_model", "hf_model"])
def test_temperature_one_samples_from_the_whole_distribution(backend, request):
    """temperature=1 draws from the model's distribution, tail included, on every backend.

    Why: context distillation and sampled AI feedback rely on samples *of the model*;
    llama-cpp-python's default ``min_p=0.05`` silently dropped every token below 5% of
    the likeliest one (it made principle-prompted answers look no likelier with the
    principles than without). After an open-ended prefix much of the mass is in that tail.
    """
    model = request.getfixturevalue(backend)
    ctx = "Here is one word chosen completely at random:"
    draws = model.generate([GenerationRequest(prompt=ctx, settings=GenerationSettings(max_tokens=1, temperature=1.0,
                                                                                       seed=s)) for s in range(60)])
    top = model.generate([GenerationRequest(prompt=ctx, settings=GenerationSettings(max_tokens=1))])[0]
    scored = model.loglikelihood([LoglikelihoodRequest(ctx, t) for t in [top, *draws] if t])
    top_lp, lps = scored[0].logprob, [r.logprob for r in scored[1:] if r.n_tokens == 1]
    tail = sum(lp < top_lp + math.log(0.05) for lp in lps)
    assert len(lps) >= 40 and tail >= 5, (tail, len(lps))
