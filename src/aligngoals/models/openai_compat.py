"""Served models through any OpenAI-compatible HTTP endpoint (vLLM, llama-cpp-python, Ollama, hosted APIs).

``--model openai:MODEL@URL`` (e.g. ``openai:llama@http://127.0.0.1:8000/v1``). The API key comes
from ``$ALIGNGOALS_API_KEY`` or ``$OPENAI_API_KEY`` and never enters an identity, a log, a store,
a report or an error message.

HTTP is the ``openai`` SDK's async client: it retries 408/409/429/5xx, dropped connections and
time-outs with capped exponential back-off, honours ``Retry-After`` (up to two minutes), and
applies a per-request time-out. This module only adds bounded concurrency (a semaphore) and the
translation of SDK errors into :class:`~aligngoals.errors.ModelError`.

Log-likelihood goes through ``/completions`` with ``echo`` + ``logprobs=1`` + ``max_tokens=1``
(the payload of lm-evaluation-harness' ``local-completions``; llama-cpp-python reads
``max_tokens=0`` as "no limit", so 1 is asked for and the generated token ignored). Before the
first scoring request one tiny probe decides whether the endpoint can score and how the
continuation is found:

* ``tokens``: the server has a tokenizer endpoint (vLLM's ``/tokenize``) and accepts token-id
  prompts, so context and continuation are split exactly like the local backends
  (:meth:`Model.encode_pair`) and the last ``len(continuation)`` prompt log-probs are summed;
* ``text``: otherwise the prompt is sent as text and the continuation starts at the first token
  whose ``text_offset`` reaches the context's length (lm-evaluation-harness' ``gguf`` model).

A server that refuses ``echo`` (llama.cpp's own ``llama-server``: "Only no echo is supported") or
answers without prompt log-probs gets ``can_score = False`` and the server's answer as the reason,
so :func:`~aligngoals.models.base.require_scoring` stops a scoring run before its first request.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, Awaitable, Callable, Sequence, TypeVar

from aligngoals.errors import ModelError
from aligngoals.models.base import (
    ChatMessage,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    Model,
    ProgressFn,
    truncate_at_stop,
)

T = TypeVar("T")

#: Environment variables read for the API key, in order.
API_KEY_VARS = ("ALIGNGOALS_API_KEY", "OPENAI_API_KEY")
#: Environment defaults for the client settings (a ``--model-arg`` or keyword wins).
SETTING_VARS = {"concurrency": "ALIGNGOALS_CONCURRENCY", "timeout_s": "ALIGNGOALS_TIMEOUT",
                "max_retries": "ALIGNGOALS_MAX_RETRIES"}
PROBE_TEXT = "The sky is blue."


def _setting(name: str, given: Any, default: float, cast: Callable[[Any], T]) -> T:
    raw = given if given is not None else os.environ.get(SETTING_VARS[name])
    if raw is None or raw == "":
        return cast(default)
    try:
        value = cast(raw)
    except (TypeError, ValueError):
        raise ModelError(f"Served-model setting {name}={raw!r} is not a number.",
                         hint=f"Pass a number (keyword, --model-arg {name}=N or ${SETTING_VARS[name]}).") from None
    if value < 0 or (name != "max_retries" and value == 0):
        raise ModelError(f"Served-model setting {name}={raw!r} must be positive.")
    return value


def _split_trailing_space(context: str, continuation: str) -> tuple[str, str]:
    """Move the context's trailing whitespace to the continuation (as :meth:`Model.encode_pair`)."""
    n = len(context) - len(context.rstrip())
    if n:
        return context[:-n], context[-n:] + continuation
    return context, continuation


class ServedError(ModelError):
    """A served-model error that remembers the HTTP status (None: no answer, or an unusable one)."""

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


def _greedy(logprob: float, top: dict | None) -> bool:
    # With logprobs=1 the top entry is the arg-max; the token is greedy when it is at least as likely.
    return not top or logprob >= max(top.values()) - 1e-6


class OpenAICompatModel(Model):
    backend = "openai"
    renders_chat_locally = False

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        concurrency: int | str | None = None,
        timeout_s: float | str | None = None,
        max_retries: int | str | None = None,
        scoring: str = "auto",
        **_: Any,
    ) -> None:
        super().__init__()
        if not base_url.startswith(("http://", "https://")):
            raise ModelError(f"Endpoint {base_url!r} is not an http(s) URL.", hint="Write openai:MODEL@http://HOST:PORT/v1.")
        if not model:
            raise ModelError("Served model has no name.", hint="Write openai:MODEL@http://HOST:PORT/v1.")
        if scoring not in ("auto", "tokens", "text"):
            raise ModelError(f"Served-model setting scoring={scoring!r} is not one of auto, tokens, text.",
                             hint="auto: the server's tokenizer when it has one, else character offsets.")
        self.scoring = scoring
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.concurrency = _setting("concurrency", concurrency, 8, int)
        self.timeout_s = _setting("timeout_s", timeout_s, 120.0, float)
        self.max_retries = _setting("max_retries", max_retries, 5, int)
        # Several context groups per call so that concurrency spans items, not only choices.
        self.groups_per_call = max(1, 4 * self.concurrency)
        self._api_key = next((os.environ[v] for v in API_KEY_VARS if os.environ.get(v)), None)
        self._scoring_mode: str | None = None  # "tokens", "text" or "none" once probed
        self._scoring_reason: str | None = None
        self._probe_lock = threading.Lock()
        self._token_cache: dict[str, list[int]] = {}

    @property
    def identity(self) -> dict:
        # The key is deliberately absent: it must never reach a store, a log or a report.
        return {"backend": self.backend, "name": f"openai:{self.model}", "model": self.model, "base_url": self.base_url}

    @property
    def info(self) -> dict:
        info = dict(self.identity)
        info.update(concurrency=self.concurrency, timeout_s=self.timeout_s, max_retries=self.max_retries)
        if self._scoring_mode is not None:
            info["scoring"] = self._scoring_mode
        return info

    # --- the HTTP client -------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def _client(self):
        from openai import AsyncOpenAI

        # Local servers need no key; the SDK insists on one, so a placeholder is sent (as vLLM's docs do).
        return AsyncOpenAI(base_url=self.base_url, api_key=self._api_key or "EMPTY",
                           max_retries=self.max_retries, timeout=self.timeout_s)

    def _run(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``work(client)`` on a fresh event loop (the model API is synchronous).

        The client is made per call because its connection pool belongs to one loop. Inside a
        running loop (a notebook) the work runs on a helper thread.
        """
        async def main() -> T:
            async with self._client() as client:
                return await work(client)

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(main())
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["value"] = asyncio.run(main())
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                box["error"] = exc

        t = threading.Thread(target=target, daemon=True)
        t.start()
        t.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def _error(self, path: str, exc: Exception) -> ServedError:
        from openai import APIConnectionError, APIStatusError, APITimeoutError

        where = f"{self.base_url}{path}" if path.startswith("/") else path
        status = None
        if isinstance(exc, APIStatusError):
            status = exc.status_code
            body = exc.response.text[:300] if exc.response is not None else str(exc)
            msg = f"{where} answered HTTP {exc.status_code}: {body}"
            hint = "Check the model name and the API key variable (ALIGNGOALS_API_KEY or OPENAI_API_KEY)."
        elif isinstance(exc, APITimeoutError):
            msg = f"{where} timed out after {self.max_retries + 1} attempts of {self.timeout_s:g} s."
            hint = "Raise the time-out (--model-arg timeout_s=N or $ALIGNGOALS_TIMEOUT) or lower the concurrency."
        elif isinstance(exc, APIConnectionError):
            msg = f"{where} failed after {self.max_retries + 1} attempts (connection error: {exc.__cause__ or exc})."
            hint = "Is the server running and reachable?"
        else:
            msg, hint = f"{where} failed: {exc}", "Is the server OpenAI-compatible?"
        return ServedError(self._redact(msg), hint=hint, status=status)

    async def _call(self, path: str, make: Callable[[], Awaitable[Any]]) -> Any:
        from openai import OpenAIError

        try:
            return await make()
        except OpenAIError as exc:
            raise self._error(path, exc) from None

    async def _bounded(self, items: Sequence[Any], one: Callable[[Any], Awaitable[T]],
                       progress: ProgressFn | None, weight: Callable[[Any], int] = lambda _: 1) -> list[T]:
        """``one(item)`` for every item, at most ``concurrency`` in flight, results in order."""
        sem = asyncio.Semaphore(self.concurrency)

        async def guarded(item: Any) -> T:
            async with sem:
                out = await one(item)
            if progress:
                progress(weight(item))
            return out

        tasks = [asyncio.ensure_future(guarded(it)) for it in items]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    # --- generation --------------------------------------------------------------------------
    async def _one(self, client: Any, req: GenerationRequest) -> str:
        s = req.settings
        common: dict[str, Any] = {"model": self.model, "max_tokens": s.max_tokens, "temperature": s.temperature,
                                  "top_p": s.top_p, "seed": s.seed}
        if s.stop:
            common["stop"] = list(s.stop)
        if req.messages is not None:
            msgs = [{"role": m.role, "content": m.content} for m in req.messages]
            resp = await self._call("/chat/completions", lambda: client.chat.completions.create(messages=msgs, **common))
            text = resp.choices[0].message.content or ""
        else:
            resp = await self._call("/completions", lambda: client.completions.create(prompt=req.prompt, **common))
            text = resp.choices[0].text or ""
        return truncate_at_stop(text, s.stop)

    def _generate(self, requests: list[GenerationRequest], progress: ProgressFn | None) -> list[str]:
        if not requests:
            return []
        return self._run(lambda client: self._bounded(requests, lambda r: self._one(client, r), progress))

    # --- scoring -----------------------------------------------------------------------------
    async def _echo(self, client: Any, prompt: str | list[int]) -> dict:
        """Prompt log-probs of ``prompt`` (text or token ids): ``tokens``, ``token_logprobs``, ``text_offset``, ``top_logprobs``."""
        resp = await self._call("/completions", lambda: client.completions.create(
            model=self.model, prompt=prompt, echo=True, logprobs=1, max_tokens=1, temperature=0))
        choice = resp.choices[0] if resp.choices else None
        lp = choice.logprobs if choice is not None else None
        out = lp.model_dump() if lp is not None else {}
        if not out.get("token_logprobs"):
            raise ServedError(self._redact(f"{self.base_url}/completions answered without prompt log-probs: {str(resp)[:300]}"))
        return out

    @property
    def _root_url(self) -> str:
        return self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url

    async def _tokenize_remote(self, client: Any, text: str) -> list[int]:
        # vLLM serves /tokenize beside /v1 (not under it).
        body = await self._call(f"{self._root_url}/tokenize", lambda: client.post(
            f"{self._root_url}/tokenize", cast_to=object,
            body={"model": self.model, "prompt": text, "add_special_tokens": False}))
        tokens = body.get("tokens") if isinstance(body, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise ServedError(f"{self._root_url}/tokenize answered without token ids: {str(body)[:200]}")
        return tokens

    async def _probe(self, client: Any) -> tuple[str, str | None]:
        """One tiny echo request (and a tokenizer check) deciding how, and whether, this endpoint scores.

        A client error (4xx) or an answer without prompt log-probs means "cannot score", with the
        server's words as the reason; server errors and lost connections (after the SDK's retries)
        are not an answer and propagate.
        """
        try:
            text = await self._echo(client, PROBE_TEXT)
        except ServedError as exc:
            if exc.status is None or exc.status < 500:
                return "none", f"the probe request (/completions with echo and logprobs) got: {exc.message}"
            raise
        if not text.get("text_offset"):
            return "none", f"the probe's answer has prompt log-probs but no text offsets: {str(text)[:200]}"
        problem = await self._check_alignment(client, text)
        if problem:
            return "none", problem
        if self.scoring == "text":
            return "text", None
        try:
            ids = await self._tokenize_remote(client, PROBE_TEXT)
            by_ids = await self._echo(client, ids)
        except ServedError as exc:
            if exc.status is not None and exc.status >= 500:
                raise
            if self.scoring == "tokens":
                return "none", f"scoring=tokens needs a tokenizer endpoint and token-id prompts: {exc.message}"
            return "text", None  # no tokenizer endpoint, or token-id prompts refused
        if len(by_ids["token_logprobs"]) >= len(ids):
            return "tokens", None
        if self.scoring == "tokens":
            return "none", "scoring=tokens: the server echoed fewer log-probs than the prompt has tokens"
        return "text", None

    async def _check_alignment(self, client: Any, echo: dict) -> str | None:
        """Does the echo's last prompt position show the same next-token distribution as generation does?

        llama-cpp-python's server (checked with 0.3.36) reports each prompt token's log-prob from the
        distribution *after* that token (off by one position), which looks plausible and is wrong. A
        generation request for the prompt minus its last token sees the correct distribution at
        that position, so the two top entries must agree.
        """
        offsets, tops = echo["text_offset"], echo.get("top_logprobs") or []
        n = len(offsets) - 1  # the generated token; n - 1 is the last prompt token
        last = n - 1 if offsets[n] >= len(PROBE_TEXT) else n
        if last < 1 or last >= len(tops) or not tops[last]:
            return None  # too little to compare; trust the server
        prefix = PROBE_TEXT[: offsets[last]]
        resp = await self._call("/completions", lambda: client.completions.create(
            model=self.model, prompt=prefix, logprobs=1, max_tokens=1, temperature=0))
        lp = resp.choices[0].logprobs if resp.choices else None
        gen_tops = (lp.top_logprobs or []) if lp is not None else []
        if not gen_tops or not gen_tops[0]:
            return None
        gen_tok, gen_lp = max(gen_tops[0].items(), key=lambda kv: kv[1])
        echo_tok, echo_lp = max(tops[last].items(), key=lambda kv: kv[1])
        if gen_tok == echo_tok and abs(gen_lp - echo_lp) < 0.05:
            return None
        return (f"its echoed prompt log-probs are misaligned: after {prefix!r} generation's most likely next token is "
                f"{gen_tok!r} ({gen_lp:.3f}) but the echo reports {echo_tok!r} ({echo_lp:.3f}) at that position "
                "(llama-cpp-python's server reports each prompt token's log-prob from the following position)")

    def _ensure_probe(self) -> None:
        with self._probe_lock:
            if self._scoring_mode is None:
                self._scoring_mode, self._scoring_reason = self._run(self._probe)

    @property
    def can_score(self) -> bool:  # type: ignore[override]
        """Decided by one probe request, sent the first time a caller asks."""
        self._ensure_probe()
        return self._scoring_mode != "none"

    @property
    def scoring_unavailable_reason(self) -> str | None:  # type: ignore[override]
        self._ensure_probe()
        return self._scoring_reason

    @property
    def scoring_mode(self) -> str:
        """``tokens`` (server tokenizer), ``text`` (character offsets) or ``none``."""
        self._ensure_probe()
        assert self._scoring_mode is not None
        return self._scoring_mode

    def tokenize(self, text: str) -> list[int]:
        if self.scoring_mode != "tokens":
            raise ModelError(f"{self.base_url} exposes no tokenizer (/tokenize).",
                             hint="Scoring uses character offsets on this server; token counts are not available.")
        if text not in self._token_cache:
            self._token_cache[text] = self._run(lambda client: self._tokenize_remote(client, text))
        return self._token_cache[text]

    @property
    def prefix_token_id(self) -> int:
        raise ModelError("A served model cannot score a continuation with an empty context.",
                         hint="Give every scored item a non-empty context.")

    def apply_chat_template(self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True) -> str:
        raise ModelError("A served model applies its chat template on the server.", hint="Send chat messages, not a rendered prompt.")

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], progress: ProgressFn | None = None) -> list[LoglikelihoodResult]:
        """Score through ``/completions`` with ``echo``: exact token split where the server tokenizes, else text offsets."""
        for r in requests:
            if not isinstance(r, LoglikelihoodRequest):
                raise ModelError(f"Expected LoglikelihoodRequest, got {type(r).__name__}.")
        if not self.can_score:
            raise ModelError(f"Served model {self.name} at {self.base_url} cannot score log-likelihoods: {self._scoring_reason}",
                             hint="Score on a local backend (smollm2, gguf:, hf:, vllm:) or a server that supports echo + logprobs (vLLM, llama-cpp-python).")
        if not requests:
            return []
        if self._scoring_mode == "tokens":
            texts = sorted({t for r in requests for t in _split_for_tokens(r) if t and t not in self._token_cache})
            got = self._run(lambda client: self._bounded(texts, lambda t: self._tokenize_remote(client, t), None))
            self._token_cache.update(zip(texts, got))
            return super().loglikelihood(requests, progress)
        pairs = [_split_trailing_space(r.context, r.continuation) for r in requests]
        for ctx, _ in pairs:
            if not ctx:
                self.prefix_token_id  # raises the empty-context error
        return self._run(lambda client: self._bounded(pairs, lambda p: self._score_text(client, *p), progress))

    async def _score_text(self, client: Any, context: str, continuation: str) -> LoglikelihoodResult:
        lp = await self._echo(client, context + continuation)
        offsets, values, tops = lp["text_offset"], lp["token_logprobs"], lp.get("top_logprobs") or []
        end = len(context) + len(continuation)
        # Prompt tokens start before the prompt's end; the one generated token starts at it.
        idx = [i for i, off in enumerate(offsets) if len(context) <= off < end]
        if not idx:
            raise ModelError(f"The continuation {continuation!r} got no tokens of its own from {self.base_url} "
                             "(it merged into the context's last token).")
        if any(values[i] is None for i in idx):
            raise ModelError(f"{self.base_url} returned no log-prob for a continuation token of {continuation!r}.")
        total = float(sum(values[i] for i in idx))
        greedy = all(_greedy(values[i], tops[i] if i < len(tops) else None) for i in idx)
        return LoglikelihoodResult(total, len(idx), greedy)

    async def _score_ids(self, client: Any, context: list[int], continuation: list[int]) -> LoglikelihoodResult:
        lp = await self._echo(client, context + continuation)
        n, values, tops = len(continuation), lp["token_logprobs"], lp.get("top_logprobs") or []
        start = len(context)
        window = range(start, start + n)
        if len(values) < start + n or any(values[i] is None for i in window):
            raise ModelError(f"{self.base_url} returned {len(values)} prompt log-probs for {start + n} prompt tokens.")
        total = float(sum(values[i] for i in window))
        greedy = all(_greedy(values[i], tops[i] if i < len(tops) else None) for i in window)
        return LoglikelihoodResult(total, n, greedy)

    def _score_groups(self, groups: list[tuple[list[int], list[list[int]]]]) -> list[list[LoglikelihoodResult]]:
        flat = [(ctx, cont) for ctx, conts in groups for cont in conts]
        scored = self._run(lambda client: self._bounded(flat, lambda p: self._score_ids(client, *p), None))
        out, k = [], 0
        for _, conts in groups:
            out.append(scored[k : k + len(conts)])
            k += len(conts)
        return out

    def _score_group(self, context: list[int], continuations: list[list[int]]) -> list[LoglikelihoodResult]:
        return self._score_groups([(context, continuations)])[0]


def _split_for_tokens(r: LoglikelihoodRequest) -> tuple[str, str]:
    """The two texts :meth:`Model.encode_pair` tokenizes for ``r``: the context and context + continuation."""
    ctx, cont = _split_trailing_space(r.context, r.continuation)
    return ctx, ctx + cont
