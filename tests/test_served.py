"""Served models: a real llama.cpp OpenAI-compatible server on loopback, with the embedded model."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from aligngoals.errors import ModelError
from aligngoals.models.base import ChatMessage, GenerationRequest, GenerationSettings, LoglikelihoodRequest
from aligngoals.models.embedded import embedded_gguf_path
from aligngoals.models.registry import load_model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_url():
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server] (the dev extra)")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf_path()), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "1024"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/models", timeout=1).read()
            break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("llama.cpp server did not start within 60 s")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_chat_and_raw_generation_with_concurrency(server_url, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-never-logged")
    model = load_model(f"openai:smollm2@{server_url}", concurrency=2)
    assert "sk-secret" not in str(model.identity)
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


def test_loglikelihood_is_refused_with_a_reason(server_url):
    model = load_model(f"openai:smollm2@{server_url}")
    with pytest.raises(ModelError, match="cannot score log-likelihoods"):
        model.loglikelihood([LoglikelihoodRequest("a", " b")])


def test_unreachable_endpoint_retries_then_fails():
    model = load_model(f"openai:x@http://127.0.0.1:{_free_port()}/v1", max_retries=1, timeout_s=2)
    t = time.time()
    with pytest.raises(ModelError, match="failed after 2 attempts"):
        model.generate([GenerationRequest(prompt="hi", settings=GenerationSettings(max_tokens=2))])
    assert time.time() - t < 20


def test_bad_served_specs():
    with pytest.raises(ModelError, match="no endpoint"):
        load_model("openai:just-a-name")
    with pytest.raises(ModelError, match="not an http"):
        load_model("openai:m@ftp://host")
