"""The llama.cpp backend's batched scoring (several sequences per decode) equals one sequence at a time."""

from __future__ import annotations

import os
import random

import pytest

from aligngoals.errors import ModelError
from aligngoals.models.base import LoglikelihoodRequest
from aligngoals.models.registry import load_model

WORDS = ("the a cat dog doctor nurse rich poor old young people always never likes hates works home city "
         "village quickly slowly because although").split()
PRIMER = "".join(f"Q: What is {i} times {i}?\nA: {i * i}.\n\n" for i in range(1, 4))


def _sentence(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))).capitalize() + "."


def _requests() -> list[LoglikelihoodRequest]:
    """Empty-context sentences (CrowS-style; several of each length, so decodes hold several),
    multiple-choice items behind a shared primer with 3 to 9 choices of 1 to ~20 tokens (numbers:
    equal lengths), one-token continuations, and one-choice items."""
    rng = random.Random(7)
    reqs = [LoglikelihoodRequest("", _sentence(rng, 2, 9)) for _ in range(30)]
    for _ in range(5):
        ctx = PRIMER + f"Q: {_sentence(rng, 3, 10)}\nA:"
        reqs += [LoglikelihoodRequest(ctx, " " + _sentence(rng, 0, 12)) for _ in range(rng.randint(1, 4))]
        reqs += [LoglikelihoodRequest(ctx, f" {rng.randint(10, 99)}.") for _ in range(rng.randint(1, 4))]
        reqs.append(LoglikelihoodRequest(ctx, " Yes"))
    reqs += [LoglikelihoodRequest(_sentence(rng, 1, 8), " " + _sentence(rng, 1, 6)) for _ in range(4)]
    ctx = PRIMER + "Q: What is 4 times 4?\nA:"  # the model's greedy answers: " 16." (4 tokens) and " 16"
    reqs += [LoglikelihoodRequest(ctx, c) for c in (" 16.", " 17.", " 16", " 4")]
    rng.shuffle(reqs)
    return reqs


@pytest.mark.parametrize("cross_item", [True, False])
def test_batched_scoring_equals_one_sequence_at_a_time(llama_model, cross_item):
    reqs = _requests()
    assert llama_model.batch_sequences > 1
    llama_model.cross_item_reuse = cross_item
    try:
        batched = llama_model.loglikelihood(reqs)
        again = llama_model.loglikelihood(reqs[::-1])[::-1]  # other neighbours in each decode, other kept state
        llama_model.batch_sequences = 1
        single = llama_model.loglikelihood(reqs)
    finally:
        llama_model.batch_sequences = 8
        llama_model.cross_item_reuse = True
    assert llama_model._scorer is not None  # the batched path really ran
    diffs = [abs(b.logprob - s.logprob) for b, s in zip(batched, single)]
    diffs += [abs(a.logprob - s.logprob) for a, s in zip(again, single)]
    assert max(diffs) < 1e-4, max(diffs)
    assert [b.n_tokens for b in batched] == [s.n_tokens for s in single]
    assert [b.is_greedy for b in batched] == [s.is_greedy for s in single] == [a.is_greedy for a in again]
    assert any(s.is_greedy for s in single) and not all(s.is_greedy for s in single)


def test_groups_longer_than_a_stream_use_the_one_sequence_path():
    """A stream holds min(n_ctx, 1024) tokens; a longer group is scored through ``Llama`` (same numbers)."""
    model = load_model("smollm2", n_ctx=1400)
    try:
        ctx = " ".join(["the cat sat on the mat"] * 200)  # ~1200 tokens
        reqs = [LoglikelihoodRequest(ctx, " and slept."), LoglikelihoodRequest(ctx, " and left."),
                LoglikelihoodRequest("Short.", " Yes.")]
        n_ctx_tokens = len(model.tokenize(ctx))
        assert 1024 < n_ctx_tokens < 1390
        batched = model.loglikelihood(reqs)
        assert model._scorer.held == model.tokenize("Short.")  # the short group went through the batch context
        model.batch_sequences = 1
        single = model.loglikelihood(reqs)
        assert max(abs(b.logprob - s.logprob) for b, s in zip(batched, single)) < 1e-4
    finally:
        model.close()


@pytest.mark.parametrize("arg, value", [("batch_sequences", 0), ("batch_sequences", 65), ("n_threads", 0),
                                        ("n_threads_batch", "two")])
def test_bad_thread_and_batch_arguments_fail_clearly(arg, value):
    with pytest.raises(ModelError, match=arg):
        load_model("smollm2", **{arg: value})


def test_default_threads_follow_the_omp_wait_policy():
    """Every CPU for batched decodes only when OpenMP sleeps at barriers (it spins otherwise, which
    collapses on a shared machine); one-token decodes keep half the CPUs; n_threads alone sets both."""
    from aligngoals.models.llamacpp import _thread_counts

    cpus = os.cpu_count() or 2
    half = max(1, cpus // 2)
    assert _thread_counts(None, None, passive=True) == (half, cpus)
    assert _thread_counts(None, None, passive=False) == (half, half)
    assert _thread_counts(3, None, passive=True) == (3, 3)
    assert _thread_counts(None, 5, passive=False) == (half, 5)


def test_thread_arguments_reach_llama_cpp():
    model = load_model("smollm2", n_threads=1, n_threads_batch=2)
    try:
        assert model.llm.context_params.n_threads == 1 and model.llm.context_params.n_threads_batch == 2
        assert model.n_threads_batch == 2
    finally:
        model.close()
    model = load_model("smollm2", n_threads=1)  # n_threads alone sets both
    try:
        assert model.llm.context_params.n_threads_batch == 1
    finally:
        model.close()


def test_context_pieces_sit_at_fixed_positions():
    """Whatever prefix the cache keeps, a context token is decoded in the same piece (same numbers)."""
    from aligngoals.models.llamacpp_batch import CONTEXT_CHUNK as C
    from aligngoals.models.llamacpp_batch import aligned_pieces

    assert aligned_pieces(0, 2 * C + 5) == [(0, C), (C, 2 * C), (2 * C, 2 * C + 5)]
    assert aligned_pieces(C, 2 * C + 5) == aligned_pieces(0, 2 * C + 5)[1:]
    assert aligned_pieces(7, 7) == []
