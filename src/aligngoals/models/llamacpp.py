"""llama.cpp backend (llama-cpp-python): fast CPU inference on any GGUF file.

Shared-prefix scoring: the context of a multiple-choice item is evaluated once;
for each choice the KV cache is rolled back to the end of the context (llama.cpp
``kv_cache_seq_rm``, which ``Llama.eval`` applies past ``n_tokens``) and only the
choice's tokens are evaluated. Across items the same roll-back keeps whatever
prefix the next context shares with the cached one (a few-shot primer), so a
primer is evaluated once per run rather than once per item. This restores the context state without copying
it, which ``Llama.save_state`` would do together with the whole logits buffer.

By default that happens on a second, multi-sequence context (``llamacpp_batch``), where
equal-length continuations of one context share a decode call; ``batch_sequences=1``
keeps everything on ``Llama``'s one-sequence context (same numbers).
"""

from __future__ import annotations

import atexit
import os
import sys
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
from aligngoals.models.llamacpp_batch import CONTEXT_CHUNK, BatchScorer, aligned_pieces

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


def _prefer_passive_omp_wait() -> bool:
    """Ask OpenMP (llama.cpp's CPU threads) to sleep at barriers instead of spinning; True when in effect.

    Why: llama.cpp waits at a barrier after every operation of the graph (hundreds per decode). With
    the default spinning, a waiting thread burns the core another thread needs whenever the machine
    runs anything else: on 2 cores shared with training jobs (load ~3.5), 2 threads scored 30 short
    sentences in 84.9 s and 1 thread in 3.9 s; with ``OMP_WAIT_POLICY=PASSIVE`` 2 threads took 4.6 s.
    libgomp reads the variable once, when llama.cpp's library loads, so it is set (unless the user
    set it) only before the first ``import llama_cpp``; a user's own value is kept and reported.
    """
    if "llama_cpp" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE"


def _thread_counts(n_threads: int | None, n_threads_batch: int | None, passive: bool) -> tuple[int, int]:
    """Threads for one-token decodes (generation) and for many-token decodes (scoring, prompts).

    One-token decodes use half the logical CPUs (about the physical cores): a decode of one token
    is mostly barriers, so more threads only add waiting (2 shared cores with spinning waits: 60
    choice requests took 31.6 s with 2 threads and 4.4 s with 1). Many-token decodes use every
    logical CPU when OpenMP waits passively (:func:`_prefer_passive_omp_wait`), else half too.
    ``n_threads`` alone sets both; ``n_threads_batch`` sets the second (docs/models.md has figures).
    """
    cpus = os.cpu_count() or 2
    for name, value in (("n_threads", n_threads), ("n_threads_batch", n_threads_batch)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ModelError(f"{name} must be a positive integer, got {value!r}.",
                             hint=f"--model-arg {name}=N with N from 1 to the number of CPUs ({cpus}).")
    threads = n_threads or max(1, cpus // 2)
    return threads, n_threads_batch or n_threads or (cpus if passive else threads)


def _result(rows: np.ndarray, cont: list[int]) -> LoglikelihoodResult:
    """Score ``cont`` from the logit rows that predict each of its tokens."""
    logp = _log_softmax_rows(rows)
    tok = np.asarray(cont)
    idx = np.arange(len(cont))
    return LoglikelihoodResult(float(logp[idx, tok].sum()), len(cont), bool((logp.argmax(-1) == tok).all()))


class LlamaCppModel(Model):
    backend = "llamacpp"

    def __init__(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        batch_sequences: int | None = None,
        seed: int = 0,
        reuse_prefix: bool = False,
        **_: Any,
    ) -> None:
        super().__init__()
        if batch_sequences is None:
            # Default: batch for small models only. The scoring context holds its own KV cache per
            # sequence (about 190 MB for SmolLM2-135M, several GB for a 7B model) and gains 1.0-1.2x
            # on CPU (docs/models.md), which is not worth gigabytes on a large model.
            batch_sequences = 8 if Path(path).is_file() and Path(path).stat().st_size < 2**31 else 1
        if isinstance(batch_sequences, bool) or not isinstance(batch_sequences, int) or not 1 <= batch_sequences <= 64:
            raise ModelError(f"batch_sequences must be an integer from 1 to 64, got {batch_sequences!r}.",
                             hint="--model-arg batch_sequences=8 (1 scores one sequence per llama.cpp call).")
        self.batch_sequences = batch_sequences
        """Sequences per llama.cpp decode call when scoring (1: the one-sequence path through ``Llama``)."""
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
        passive = _prefer_passive_omp_wait()
        try:
            from llama_cpp import Llama
        except ImportError as exc:  # pragma: no cover - base dependency
            raise ModelError(
                "The llama.cpp backend needs 'llama-cpp-python'.", hint="pip install llama-cpp-python"
            ) from exc
        self.path = path
        self._name = name or path.stem
        threads, threads_batch = _thread_counts(n_threads, n_threads_batch, passive)
        self.n_threads_batch = threads_batch
        try:
            self.llm = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_batch=512,
                n_threads=threads,
                n_threads_batch=threads_batch,
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
        self._scorer: BatchScorer | None = None
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
        return {**self.identity, "path": str(self.path.resolve()), "n_ctx": self.n_ctx,
                "n_threads": self.llm.context_params.n_threads if self.llm else None,
                "n_threads_batch": self.n_threads_batch, "batch_sequences": self.batch_sequences,
                "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}

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

    def _eval_context(self, context: list[int], kept: int) -> np.ndarray:
        """Evaluate ``context[kept:]`` (the cache holds the rest) and return its last position's logits.

        The tokens are decoded in the pieces :func:`aligned_pieces` gives (``CONTEXT_CHUNK``), so each
        context token is computed in the same micro-batch whatever the cache held before.

        Only that position needs the vocabulary projection, so the context runs with
        llama-cpp-python's ``logits_all`` switched off for the call (it otherwise projects
        and copies all positions: 49152 floats per token for SmolLM2); the continuations
        that follow run with it on, as their every position is scored.
        """
        llm = self.llm
        pieces = aligned_pieces(kept, len(context))
        if hasattr(llm, "_logits_all") and hasattr(llm, "_ctx"):
            llm._logits_all = False
            try:
                for a, b in pieces:
                    llm.eval(context[a:b])
            finally:
                llm._logits_all = True
            return np.array(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(self._n_vocab,)), copy=True)
        for a, b in pieces:  # pragma: no cover - other llama-cpp-python versions
            llm.eval(context[a:b])
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
        n -= n % CONTEXT_CHUNK  # keep whole pieces only (see llamacpp_batch.CONTEXT_CHUNK)
        llm.n_tokens = n  # eval() removes every cached position past n_tokens
        return n

    def _score_group(self, context: list[int], continuations: list[list[int]]) -> list[LoglikelihoodResult]:
        self._check_length(len(context) + max(len(c) for c in continuations))
        if self.batch_sequences > 1 and self.llm is not None:
            scorer = self._batch_scorer()
            if scorer.fits(len(context) + max(len(c) for c in continuations)):
                return self._score_group_batched(scorer, context, continuations)
        return self._score_group_single(context, continuations)

    def _batch_scorer(self) -> BatchScorer:
        """The several-sequences-per-decode context, made on first use (generation never needs it)."""
        if self._scorer is None:
            try:
                self._scorer = BatchScorer(self.llm, n_seq=self.batch_sequences, seq_cells=min(self.n_ctx, 1024),
                                           n_threads_batch=self.n_threads_batch)
            except Exception as exc:  # llama.cpp raises ValueError when it cannot allocate the context
                raise ModelError(f"llama.cpp could not create a scoring context for {self.batch_sequences} "
                                 f"sequences: {exc}.", hint="Pass --model-arg batch_sequences=1 (or a smaller "
                                 "number) to score one sequence per call.") from exc
        return self._scorer

    def _score_group_batched(
        self, scorer: BatchScorer, context: list[int], continuations: list[list[int]]
    ) -> list[LoglikelihoodResult]:
        """Like :meth:`_score_group_single`, with up to ``batch_sequences`` continuations per decode.

        Only continuations of equal length share a decode (see ``llamacpp_batch``: that keeps
        llama.cpp's kernel shapes, so the numbers equal the one-sequence path); a multiple-choice
        item's choices rarely tie, so the gain is largest for many continuations of one context,
        such as every sentence of an empty-context task after the BOS token.
        """
        ctx_last = scorer.eval_context(context, self.cross_item_reuse)
        by_len: dict[int, list[int]] = {}
        for i, cont in enumerate(continuations):
            by_len.setdefault(len(cont), []).append(i)
        out: list[LoglikelihoodResult | None] = [None] * len(continuations)
        for length, idx in sorted(by_len.items()):
            if length == 1:  # scored by the context's last logits alone
                for i in idx:
                    out[i] = _result(ctx_last[None, :], continuations[i])
                continue
            per_call = max(1, min(scorer.n_seq, scorer.n_batch // (length - 1)))
            for start in range(0, len(idx), per_call):
                chunk = idx[start : start + per_call]
                rows = scorer.eval_continuations(context, [continuations[i] for i in chunk])
                for k, i in enumerate(chunk):
                    part = rows[k * (length - 1) : (k + 1) * (length - 1)]
                    out[i] = _result(np.vstack([ctx_last[None, :], part]), continuations[i])
        return [res for res in out if res is not None]

    def _score_group_single(self, context: list[int], continuations: list[list[int]]) -> list[LoglikelihoodResult]:
        """One sequence per decode through the high-level ``Llama`` (``batch_sequences=1``, long groups)."""
        llm = self.llm
        kept = self._keep_prefix(context)
        ctx_last = self._eval_context(context, kept)
        out = []
        for cont in continuations:
            # Roll the KV cache back to the end of the context; eval() removes the rest.
            llm.n_tokens = len(context)
            if len(cont) > 1:
                llm.eval(cont[:-1])
                rows = np.vstack([ctx_last[None, :], llm.scores[len(context) : len(context) + len(cont) - 1]])
            else:
                rows = ctx_last[None, :]
            out.append(_result(rows, cont))
        return out

    def _score_full(self, pairs: list[tuple[list[int], list[int]]]) -> list[LoglikelihoodResult]:
        out = []
        for context, cont in pairs:
            self._check_length(len(context) + len(cont))
            self.llm.reset()
            self.llm.eval(context + cont[:-1])
            out.append(_result(np.asarray(self.llm.scores[len(context) - 1 : len(context) + len(cont) - 1]), cont))
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
        scorer = getattr(self, "_scorer", None)
        if scorer is not None:  # before the model it shares
            scorer.close()
            self._scorer = None
        llm = getattr(self, "llm", None)
        if llm is not None:
            try:
                llm.close()
            except Exception:  # pragma: no cover - best effort
                pass
            self.llm = None
