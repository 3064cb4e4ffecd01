"""Served models through any OpenAI-compatible HTTP endpoint (vLLM, llama.cpp server, Ollama, hosted APIs).

``--model openai:MODEL@URL`` (e.g. ``openai:llama@http://127.0.0.1:8000/v1``). The API key comes
from ``$ALIGNGOALS_API_KEY`` or ``$OPENAI_API_KEY`` and never enters an identity, a log or a report.

Generation uses ``/chat/completions`` for chat requests and ``/completions`` for raw prompts,
with a thread pool for concurrency, retries with exponential back-off on 429/5xx/time-outs, a
per-request time-out and a requests-per-minute limit. Log-likelihood needs prompt log-probs
(``echo`` + ``logprobs`` on ``/completions``), which servers implement inconsistently
(llama-cpp-python's server returns wrong values with ``max_tokens=0``), so it is refused with
a clear message: score with a local backend instead.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from aligngoals.errors import ModelError
from aligngoals.models.base import ChatMessage, GenerationRequest, LoglikelihoodResult, Model, ProgressFn, truncate_at_stop

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class RateLimiter:
    """At most ``per_minute`` request starts in any 60 s window (evenly spaced)."""

    def __init__(self, per_minute: float | None) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        time.sleep(max(0.0, start - now))


class OpenAICompatModel(Model):
    backend = "openai"
    can_score = False
    scoring_unavailable_reason = "the OpenAI-compatible client sends generation requests only"
    renders_chat_locally = False

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        concurrency: int = 4,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        requests_per_minute: float | None = None,
        **_: Any,
    ) -> None:
        super().__init__()
        if not base_url.startswith(("http://", "https://")):
            raise ModelError(f"Endpoint {base_url!r} is not an http(s) URL.", hint="Write openai:MODEL@http://HOST:PORT/v1.")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.concurrency = max(1, int(concurrency))
        self.timeout_s = float(timeout_s)
        self.max_retries = max(0, int(max_retries))
        self.limiter = RateLimiter(requests_per_minute)
        self._api_key = os.environ.get("ALIGNGOALS_API_KEY") or os.environ.get("OPENAI_API_KEY")

    @property
    def identity(self) -> dict:
        # The key is deliberately absent: it must never reach a store, a log or a report.
        return {"backend": self.backend, "name": f"openai:{self.model}", "model": self.model, "base_url": self.base_url}

    def tokenize(self, text: str) -> list[int]:
        raise ModelError("Served models do not expose their tokenizer.", hint="Use a local backend (smollm2, gguf:, hf:) for scoring tasks.")

    def apply_chat_template(self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True) -> str:
        raise ModelError("A served model applies its chat template on the server.", hint="Send chat messages, not a rendered prompt.")

    def loglikelihood(self, requests, progress: ProgressFn | None = None) -> list[LoglikelihoodResult]:
        raise ModelError(
            f"Served model {self.model} cannot score log-likelihoods reliably over the OpenAI API.",
            hint="Use it for generation tasks and judging; run scoring tasks on a local backend (smollm2, gguf:PATH, hf:DIR).",
        )

    def _score_group(self, context, continuations):  # pragma: no cover - refused above
        raise NotImplementedError

    # --- HTTP ----------------------------------------------------------------------------
    def _post(self, path: str, payload: dict) -> dict:
        data = json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        last_error = ""
        for attempt in range(self.max_retries + 1):
            self.limiter.wait()
            req = urllib.request.Request(self.base_url + path, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                body = exc.read().decode("utf-8", errors="replace")[:300]
                if exc.code not in RETRY_STATUS:
                    raise ModelError(
                        f"{self.base_url}{path} answered HTTP {exc.code}: {body}",
                        hint="Check the model name and the API key variable (ALIGNGOALS_API_KEY or OPENAI_API_KEY).",
                    ) from exc
                last_error = f"HTTP {exc.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last_error = str(getattr(exc, "reason", exc))
            if attempt < self.max_retries:
                time.sleep(min(30.0, 0.5 * 2**attempt) * (0.5 + random.random()))
        raise ModelError(
            f"{self.base_url}{path} failed after {self.max_retries + 1} attempts ({last_error}).",
            hint="Is the server running and reachable? Raise --timeout or lower the request rate.",
        )

    def _one(self, req: GenerationRequest) -> str:
        s = req.settings
        common: dict[str, Any] = {"model": self.model, "max_tokens": s.max_tokens, "temperature": s.temperature,
                                  "top_p": s.top_p, "seed": s.seed}
        if s.stop:
            common["stop"] = list(s.stop)
        if req.messages is not None:
            body = self._post("/chat/completions", {**common, "messages": [{"role": m.role, "content": m.content} for m in req.messages]})
            text = body["choices"][0]["message"].get("content") or ""
        else:
            body = self._post("/completions", {**common, "prompt": req.prompt})
            text = body["choices"][0].get("text") or ""
        return truncate_at_stop(text, s.stop)

    def _generate(self, requests: list[GenerationRequest], progress: ProgressFn | None) -> list[str]:
        outs: list[str] = [""] * len(requests)

        def work(i: int) -> None:
            outs[i] = self._one(requests[i])
            if progress:
                progress(1)

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for f in [pool.submit(work, i) for i in range(len(requests))]:
                f.result()
        return outs
