"""llama.cpp backend (llama-cpp-python): fast CPU inference on any GGUF file.

Shared-prefix scoring: the context of a multiple-choice item is evaluated once;
for each choice the KV cache is rolled back to the end of the context (llama.cpp
``kv_cache_seq_rm``, which ``Llama.eval`` applies past ``n_tokens``) and only the
choice's tokens are evaluated. Across items the same roll-back keeps whatever
prefix the next context shares with the cached one (a few-shot primer), so a
primer is evaluated once per run rather than once per item. This restores the context state without copying
it, which ``Llama.save_state`` would do together with the whole logits buffer.
"""

from __future__ import annotations

import atexit
import os
import weakref
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from aligngoals.errors import ModelError
from aligngoals.io import file_sha256
from aligngoals.models.base import (
    ChatMessage,
    GenerationRequest,
    LoglikelihoodResult,
    Model,
    ProgressFn,
    truncate_at_stop,
)

_LIVE: "weakref.WeakSet[LlamaCppModel]" = weakref.WeakSet()


@atexit.register
def _close_live_models() -> None:
    # llama-cpp-python's __del__ fails during interpreter shutdown (module globals
    # are already gone); closing explicitly first makes that a no-op.
    for m in list(_LIVE):
        m.close()


_HASH_CACHE: dict[tuple[str, int, float], str] = {}


def cached_file_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime)
    if key not in _HASH_CACHE:
        _HASH_CACHE[key] = file_sha256(path)
    return _HASH_CACHE[key]


def _log_softmax_rows(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64, copy=False)
    m = logits.max(axis=-1, keepdims=True)
    return logits - m - np.log(np.exp(logits - m).sum(axis=-1, keepdims=True))


class LlamaCppModel(Model):
    backend = "llamacpp"

    def __init__(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        seed: int = 0,
        reuse_prefix: bool = False,
        **_: Any,
    ) -> None:
        super().__init__()
        self.reuse_prefix = reuse_prefix
        """Generation: keep the KV cache between requests and recompute only past the longest
        common prefix (a long shared system prompt is evaluated once). Off by default: results
        then equal a fresh evaluation bit for bit; on, they may differ in the last float bits.
        (Scoring always reuses a prefix shared with the previous context: ``cross_item_reuse``.)"""
        path = Path(path)
        if not path.is_file():
            raise ModelError(
                f"GGUF file {path} does not exist or is not a file.",
                hint="Check the path after 'gguf:', or use '--model smollm2' for the embedded model.",
            )
        try:
            with open(path, "rb") as fh:
                magic = fh.read(4)
        except OSError as exc:
            raise ModelError(f"Cannot read GGUF file {path}: {exc.strerror}.", hint="Check its permissions.") from exc
        if magic != b"GGUF":
            raise ModelError(
                f"{path} is not a GGUF file (it does not start with the 'GGUF' magic bytes).",
                hint="Pass a .gguf model file, or use 'hf:DIR' for a transformers directory.",
            )
        try:
            from llama_cpp import Llama
        except ImportError as exc:  # pragma: no cover - base dependency
            raise ModelError(
                "The llama.cpp backend needs 'llama-cpp-python'.", hint="pip install llama-cpp-python"
            ) from exc
        self.path = path
        self._name = name or path.stem
        # Default: half the logical CPUs (about the physical cores). llama.cpp's worker
        # threads spin while they wait, so one thread per logical CPU collapses when other
        # processes share the machine (measured on 2 shared cores: 60 choice requests took
        # 31.6 s with 2 threads and 4.4 s with 1).
        threads = n_threads or max(1, (os.cpu_count() or 2) // 2)
        try:
            self.llm = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_batch=512,
                n_threads=threads,
                n_threads_batch=threads,
                logits_all=True,
                seed=seed,
                verbose=False,
            )
        except Exception as exc:  # llama.cpp raises ValueError/RuntimeError on bad files
            raise ModelError(
                f"llama.cpp could not load {path}: {exc}.",
                hint="The file may be truncated or of an architecture this llama-cpp-python does not support.",
            ) from exc
        self.n_ctx = n_ctx
        _LIVE.add(self)
        self._n_vocab = self.llm.n_vocab()
        meta = self.llm.metadata or {}
        self._chat_template = meta.get("tokenizer.chat_template")
        self._bos_defined = "tokenizer.ggml.bos_token_id" in meta
        self.vocab_size = self._n_vocab
        self._identity = {
            "backend": self.backend,
            "name": self._name,
            "file_sha256": cached_file_sha256(path),
        }

    @property
    def context_length(self) -> int | None:
        return self.n_ctx

    @property
    def identity(self) -> dict:
        # The empty-context token changes scores, so it is part of what makes answers reusable.
        return {**self._identity, "prefix_token_id": self.prefix_token_id}

    @property
    def info(self) -> dict:
        return {**self.identity, "path": str(self.path.resolve()), "n_ctx": self.n_ctx}

    def _default_prefix_token_id(self) -> int:
        """BOS when the GGUF's tokenizer defines one, else end-of-text (lm-eval's rule).

        The metadata key decides "defines": llama.cpp falls back to a vocabulary default
        for a missing BOS, which a transformers tokenizer (lm-eval's reference) would not have.
        """
        if self._bos_defined and self.llm.token_bos() >= 0:
            return int(self.llm.token_bos())
        return int(self.llm.token_eos())

    def tokenize(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _token_text(self, token_id: int) -> str:
        return self.llm.detokenize([token_id], special=True).decode("utf-8", errors="replace")

    def apply_chat_template(self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True) -> str:
        if not self._chat_template:
            raise ModelError(
                f"{self.path} has no chat template in its metadata, so chat messages cannot be rendered.",
                hint="Use a raw 'prompt' instead of chat messages, or a model that ships a chat template.",
            )
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        template = env.from_string(self._chat_template)
        return template.render(
            messages=[{"role": m.role, "content": m.content} for m in ChatMessage.coerce(messages)],
            add_generation_prompt=add_generation_prompt,
            bos_token=self._token_text(self.llm.token_bos()),
            eos_token=self._token_text(self.llm.token_eos()),
        )

    def _check_length(self, n: int) -> None:
        if n > self.n_ctx:
            raise ModelError(
                f"A request needs {n} tokens but the llama.cpp context holds {self.n_ctx}.",
                hint="Shorten the prompt or load the model with a larger n_ctx.",
            )

    def _eval_context(self, context: list[int]) -> np.ndarray:
        """Evaluate ``context`` and return its last position's logits.

        Only that position needs the vocabulary projection, so the context runs with
        llama-cpp-python's ``logits_all`` switched off for the call (it otherwise projects
        and copies all positions: 49152 floats per token for SmolLM2); the continuations
        that follow run with it on, as their every position is scored.
        """
        llm = self.llm
        if hasattr(llm, "_logits_all") and hasattr(llm, "_ctx"):
            llm._logits_all = False
            try:
                llm.eval(context)
            finally:
                llm._logits_all = True
            return np.array(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(self._n_vocab,)), copy=True)
        llm.eval(context)  # pragma: no cover - other llama-cpp-python versions
        return np.array(llm.scores[llm.n_tokens - 1], copy=True)

    def _keep_prefix(self, context: list[int]) -> int:
        """Roll the KV cache back to the longest prefix it shares with ``context``; returns its length.

        Why: items of a few-shot task share a primer of hundreds of tokens; the cache still
        holds the previous item's context, so only the tokens past the shared prefix need
        evaluating (cross-item reuse). At least the context's last token is always
        evaluated, because its logits score the first continuation token.
        """
        llm = self.llm
        if not self.cross_item_reuse:
            llm.reset()
            return 0
        held = llm.input_ids[: llm.n_tokens]
        limit = min(len(held), len(context) - 1)
        n = 0
        while n < limit and held[n] == context[n]:
            n += 1
        llm.n_tokens = n  # eval() removes every cached position past n_tokens
        return n

    def _score_group(self, context: list[int], continuations: list[list[int]]) -> list[LoglikelihoodResult]:
        llm = self.llm
        self._check_length(len(context) + max(len(c) for c in continuations))
        kept = self._keep_prefix(context)
        ctx_last = self._eval_context(context[kept:])
        out = []
        for cont in continuations:
            # Roll the KV cache back to the end of the context; eval() removes the rest.
            llm.n_tokens = len(context)
            if len(cont) > 1:
                llm.eval(cont[:-1])
                rows = np.vstack([ctx_last[None, :], llm.scores[len(context) : len(context) + len(cont) - 1]])
            else:
                rows = ctx_last[None, :]
            logp = _log_softmax_rows(rows)
            idx = np.arange(len(cont))
            tok = np.asarray(cont)
            total = float(logp[idx, tok].sum())
            greedy = bool((logp.argmax(axis=-1) == tok).all())
            out.append(LoglikelihoodResult(total, len(cont), greedy))
        return out

    def _score_full(self, pairs: list[tuple[list[int], list[int]]]) -> list[LoglikelihoodResult]:
        out = []
        for context, cont in pairs:
            self._check_length(len(context) + len(cont))
            self.llm.reset()
            self.llm.eval(context + cont[:-1])
            rows = np.asarray(self.llm.scores[len(context) - 1 : len(context) + len(cont) - 1])
            logp = _log_softmax_rows(rows)
            tok = np.asarray(cont)
            idx = np.arange(len(cont))
            out.append(
                LoglikelihoodResult(float(logp[idx, tok].sum()), len(cont), bool((logp.argmax(-1) == tok).all()))
            )
        return out

    def _generate(self, requests: list[GenerationRequest], progress: ProgressFn | None) -> list[str]:
        outs = []
        for req in requests:
            prompt = self.render(req)
            s = req.settings
            n_prompt = len(self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))
            self._check_length(n_prompt + 1)
            max_tokens = min(s.max_tokens, self.n_ctx - n_prompt)
            if not self.reuse_prefix:  # llama-cpp-python otherwise reuses the longest common prefix itself
                self.llm.reset()
            res = self.llm.create_completion(
                prompt,
                max_tokens=max_tokens,
                temperature=s.temperature,
                top_p=s.top_p,
                top_k=0 if s.temperature > 0 else 40,
                # llama-cpp-python's default min_p=0.05 would drop every token under 5% of the top
                # one: temperature > 0 must sample from the model as transformers and vLLM do.
                min_p=0.0,
                stop=list(s.stop) or None,
                seed=s.seed,
            )
            outs.append(truncate_at_stop(res["choices"][0]["text"], s.stop))
            if progress:
                progress(1)
        return outs

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            try:
                llm.close()
            except Exception:  # pragma: no cover - best effort
                pass
            self.llm = None
