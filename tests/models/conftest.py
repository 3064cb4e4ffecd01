"""A real llama-cpp-python OpenAI-compatible server on 127.0.0.1 with the embedded model."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

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
