"""Served models: the openai SDK client against a real llama-cpp-python server on loopback (embedded model)."""

from __future__ import annotations

import json
import time

import pytest
from fault_proxy import free_port

from aligngoals.errors import AligngoalsError, ModelError
from aligngoals.models.base import (
    ChatMessage,
    GenerationRequest,
    GenerationSettings,
    LoglikelihoodRequest,
    require_scoring,
)
from aligngoals.models.registry import load_model


def test_chat_and_raw_generation_with_concurrency(llama_server, monkeypatch):
    url, _ = llama_server
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-never-logged")
    model = load_model(f"openai:smollm2@{url}", concurrency=2)
    assert "sk-secret" not in json.dumps(model.identity) + json.dumps(model.info)
    greedy = GenerationSettings(max_tokens=12, stop=("\n",))
    reqs = [
        GenerationRequest(messages=[ChatMessage("user", "Say hello.")], settings=greedy),
        GenerationRequest(messages=[ChatMessage("user", "Name a colour.")], settings=greedy),
        GenerationRequest(prompt="The capital of France is", settings=greedy),
    ]
    done = []
    outs = model.generate(reqs, progress=done.append)
    assert len(outs) == 3 and all(isinstance(o, str) for o in outs) and outs[0].strip()
    assert all("\n" not in o for o in outs)
    assert sum(done) == 3
    # Greedy decoding on the server is deterministic: same request, same answer.
    assert model.generate(reqs[:1]) == outs[:1]


MC_ITEMS = [
    ("Question: What colour is the sky on a clear day?\nAnswer:", [" blue", " green", " red"]),
    ("Question: How many legs does a cat have?\nAnswer:", [" four", " two", " six"]),
    ("The capital of France is", [" Paris", " Berlin", " Rome"]),
    ("Water freezes at zero degrees", [" Celsius", " Fahrenheit", " Kelvin"]),
    ("Q: Is fire hot or cold?\nA: ", ["Hot", "Cold"]),
    ("2 + 2 =", [" 4", " 5", " 22"]),
    ("The opposite of up is", [" down", " left", " sideways"]),
    ("I drink my coffee with milk and", [" sugar", " salt", " sand"]),
]


def test_llama_cpp_python_server_is_refused_for_scoring_with_the_reason(llama_server):
    """llama-cpp-python's server echoes prompt log-probs one position off; the probe catches it."""
    url, _ = llama_server
    served = load_model(f"openai:smollm2@{url}")
    assert served.can_score is False
    assert "misaligned" in served.scoring_unavailable_reason
    with pytest.raises(AligngoalsError, match="needs log-likelihood scoring.*misaligned"):
        require_scoring(served, "quick_preferences")


def check_against_local(url: str, local, mode: str | None = None) -> list[float]:
    """Served per-item log-likelihoods vs the local backend's on MC_ITEMS: the differences, same choice picked."""
    served = load_model(f"openai:smollm2@{url}", concurrency=3, scoring=mode or "auto")
    assert served.can_score, served.scoring_unavailable_reason
    reqs = [LoglikelihoodRequest(ctx, c) for ctx, choices in MC_ITEMS for c in choices]
    done = []
    remote = served.loglikelihood(reqs, progress=done.append)
    ref = local.loglikelihood(reqs)
    assert sum(done) == len(reqs)
    assert [a.n_tokens for a in remote] == [b.n_tokens for b in ref]
    k = 0
    for _, choices in MC_ITEMS:
        r, loc = remote[k : k + len(choices)], ref[k : k + len(choices)]
        assert max(range(len(r)), key=lambda i: r[i].logprob) == max(range(len(loc)), key=lambda i: loc[i].logprob)
        k += len(choices)
    return [abs(a.logprob - b.logprob) for a, b in zip(remote, ref)]


def test_unscorable_endpoint_stops_before_the_first_scoring_request(llama_server):
    """A server that refuses the echo probe: can_score is False with the server's answer as the reason."""
    url, _ = llama_server
    # The server does not know this model alias... llama-cpp-python serves any name, so point at a
    # path that answers 404 instead: the probe gets the server's words back.
    model = load_model(f"openai:smollm2@{url}/nowhere")
    assert model.can_score is False
    assert "404" in model.scoring_unavailable_reason
    with pytest.raises(AligngoalsError, match="needs log-likelihood scoring.*404"):
        require_scoring(model, "quick_preferences")
    with pytest.raises(ModelError, match="cannot score"):
        model.loglikelihood([LoglikelihoodRequest("a", " b")])


def test_unreachable_endpoint_retries_then_fails():
    model = load_model(f"openai:x@http://127.0.0.1:{free_port()}/v1", max_retries=1, timeout_s=2)
    t = time.time()
    with pytest.raises(ModelError, match="failed after 2 attempts"):
        model.generate([GenerationRequest(prompt="hi", settings=GenerationSettings(max_tokens=2))])
    assert time.time() - t < 20


def test_api_key_never_in_errors(monkeypatch):
    monkeypatch.setenv("ALIGNGOALS_API_KEY", "sk-top-secret-123")
    model = load_model(f"openai:x@http://127.0.0.1:{free_port()}/v1", max_retries=0, timeout_s=1)
    with pytest.raises(ModelError) as err:
        model.generate([GenerationRequest(prompt="hi", settings=GenerationSettings(max_tokens=2))])
    assert "sk-top-secret" not in str(err.value) and "sk-top-secret" not in json.dumps(model.info)


def test_bad_served_specs(monkeypatch):
    with pytest.raises(ModelError, match="no endpoint"):
        load_model("openai:just-a-name")
    with pytest.raises(ModelError, match="not an http"):
        load_model("openai:m@ftp://host")
    with pytest.raises(ModelError, match="concurrency"):
        load_model("openai:m@http://127.0.0.1:1/v1", concurrency="many")
    monkeypatch.setenv("ALIGNGOALS_TIMEOUT", "0")
    with pytest.raises(ModelError, match="timeout_s"):
        load_model("openai:m@http://127.0.0.1:1/v1")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["auto", "text"])
def test_vllm_server_scores_like_transformers(vllm_server, hf_model, mode):
    """vLLM's server (float32) gives hf:'s per-item log-likelihoods within 1e-3, through its tokenizer or text offsets."""
    served = load_model(f"openai:smollm2@{vllm_server}", scoring=mode)
    assert served.scoring_mode == ("tokens" if mode == "auto" else "text")
    diffs = check_against_local(vllm_server, hf_model, mode)
    assert max(diffs) < 1e-3, diffs


def test_eval_stops_before_scoring_on_a_server_that_cannot_score(llama_server, tmp_path):
    import subprocess
    import sys

    url, _ = llama_server
    out = tmp_path / "run"
    res = subprocess.run([sys.executable, "-m", "aligngoals.cli.main", "eval", "--model", f"openai:smollm2@{url}",
                          "--suite", "quick", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    assert "needs log-likelihood scoring" in res.stderr and "misaligned" in res.stderr and "Traceback" not in res.stderr
    assert not (out / "report.json").exists()
