"""A real llama-cpp-python OpenAI-compatible server on 127.0.0.1 with the embedded model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from fault_proxy import free_port

from aligngoals.models.embedded import embedded_gguf_path


@pytest.fixture(scope="session")
def llama_server():
    """``(url, port)`` of ``python -m llama_cpp.server`` on the embedded GGUF; stopped at the end of the session."""
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server] (the dev extra)")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf_path()), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 90
    try:
        while True:
            try:
                urllib.request.urlopen(url + "/models", timeout=1).read()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    pytest.fail("llama_cpp.server did not start within 90 s")
                time.sleep(0.3)
        yield url, port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def vllm_server():
    """``python -m vllm.entrypoints.openai.api_server`` (float32, CPU) on 127.0.0.1, or skip.

    Needs the separate vLLM venv (``$ALIGNGOALS_VLLM_PYTHON``, default ``.venv-vllm/bin/python``) and
    the embedded model converted to a transformers directory (``$ALIGNGOALS_VLLM_MODEL_DIR``,
    made by ``aligngoals convert smollm2 --out DIR``). Starting takes about a minute and 4 GB.
    """
    python = Path(os.environ.get("ALIGNGOALS_VLLM_PYTHON") or REPO / ".venv-vllm" / "bin" / "python")
    model_dir = os.environ.get("ALIGNGOALS_VLLM_MODEL_DIR")
    if not python.exists() or not model_dir or not Path(model_dir, "config.json").exists():
        pytest.skip("needs a vLLM venv ($ALIGNGOALS_VLLM_PYTHON) and $ALIGNGOALS_VLLM_MODEL_DIR (aligngoals convert)")
    port = free_port()
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1")
    proc = subprocess.Popen(
        [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir, "--served-model-name", "smollm2",
         "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--enforce-eager", "--max-model-len", "2048"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 300
    try:
        while True:
            try:
                urllib.request.urlopen(url + "/models", timeout=2).read()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    pytest.fail("the vLLM server did not start within 300 s")
                time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
