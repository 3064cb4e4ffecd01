"""Several sequences per ``llama_decode``: the llama.cpp backend's scoring context.

Why hand-written: llama-cpp-python's high-level ``Llama`` creates its context with one
sequence (``n_seq_max=1``), so every continuation costs its own decode call, and with
several threads each call pays llama.cpp's thread start/barrier costs on a handful of
tokens. llama.cpp's batch API evaluates many sequences per call; llama-cpp-python exposes
it only through its low-level ``_internals``, which this module uses: a second context on
the *same loaded weights* (no second copy of the model), with one KV stream per sequence.

Why one stream per sequence (``kv_unified=False``): with a unified KV buffer, sequences
decoded together moved log-likelihoods by up to 0.7 nats against one-at-a-time scoring on
the embedded model (llama-cpp-python 0.3.36); with separate streams the numbers equal the
one-sequence path exactly (tests/models/test_llamacpp_batch.py) provided the sequences
decoded together have the same number of tokens: llama.cpp then forms one micro-batch
with that many tokens per stream, the shapes (hence CPU kernels and float order) of
the one-sequence path, whereas unequal lengths are split into uneven micro-batches and
moved some scores by up to 0.36 nats (activation quantization amplifies float-order
differences). Callers therefore batch equal-length continuations. A stream holds
``seq_cells`` tokens; a context is copied to the other streams with
``llama_memory_seq_cp`` (a whole-stream copy in llama.cpp), so streams are kept short and
a group that does not fit falls back to the one-sequence path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CONTEXT_CHUNK = 128
"""Contexts are decoded in pieces whose boundaries sit at multiples of this many positions, and a
kept prefix is rounded down to one. Why: llama.cpp's CPU kernels give slightly different numbers
for the same token decoded in a different micro-batch (0.2 nats were seen when a context's last
token was re-evaluated alone instead of inside a 176-token batch), so without a fixed partition a
score would depend on what was scored before it (cross-item reuse, fall-backs between paths).
With it, every context token is always computed in the same piece, whatever the history."""


def aligned_pieces(start: int, end: int, chunk: int = CONTEXT_CHUNK) -> list[tuple[int, int]]:
    """``[start, end)`` cut at the multiples of ``chunk``: ``(a, b)`` position ranges in order."""
    out = []
    a = start
    while a < end:
        b = min(end, (a // chunk + 1) * chunk)
        out.append((a, b))
        a = b
    return out


class BatchScorer:
    """Scores the continuations of one context, several per decode call, on a second llama.cpp context.

    Sequence 0 keeps the last context between groups (cross-item prefix reuse); the other
    sequences hold one continuation each for one decode and are cleared afterwards.
    """

    def __init__(self, llm: Any, *, n_seq: int, seq_cells: int, n_threads_batch: int) -> None:
        import llama_cpp
        from llama_cpp import _internals

        self._lc = llama_cpp
        cp = llama_cpp.llama_context_default_params()
        for fname, _ in type(llm.context_params)._fields_:
            setattr(cp, fname, getattr(llm.context_params, fname))
        cp.n_seq_max = n_seq
        cp.kv_unified = False
        cp.n_ctx = seq_cells * n_seq
        cp.n_threads_batch = n_threads_batch
        self.n_seq = n_seq
        self.seq_cells = seq_cells
        self.n_batch = int(cp.n_batch)
        self.n_vocab = int(llm.n_vocab())
        self._ctx = _internals.LlamaContext(model=llm._model, params=cp, verbose=False)
        self._mem = llama_cpp.llama_get_memory(self._ctx.ctx)
        self._batch = _internals.LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=n_seq, verbose=False)
        self.held: list[int] = []
        """Tokens whose key/value state sequence 0 holds (the previous context)."""

    def fits(self, n_tokens: int) -> bool:
        return n_tokens <= self.seq_cells

    def clear(self) -> None:
        self._lc.llama_memory_clear(self._mem, True)
        self.held = []

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> np.ndarray:
        """Decode ``(token, pos, seq, wants_logits)`` entries in order, ``n_batch`` per call; the logit rows."""
        rows = []
        b = self._batch.batch
        for start in range(0, len(entries), self.n_batch):
            part = entries[start : start + self.n_batch]
            n_out = 0
            for j, (tok, pos, seq, want) in enumerate(part):
                b.token[j] = tok
                b.pos[j] = pos
                b.seq_id[j][0] = seq
                b.n_seq_id[j] = 1
                b.logits[j] = want
                n_out += want
            b.n_tokens = len(part)
            self._ctx.decode(self._batch)
            if n_out:
                arr = np.ctypeslib.as_array(self._lc.llama_get_logits(self._ctx.ctx), shape=(n_out, self.n_vocab))
                rows.append(np.array(arr, copy=True))
        if not rows:
            return np.zeros((0, self.n_vocab), dtype=np.float32)
        return np.concatenate(rows) if len(rows) > 1 else rows[0]

    def eval_context(self, context: list[int], cross_item: bool) -> np.ndarray:
        """Bring sequence 0 to ``context``, evaluating only what it does not share with the held one.

        Returns the last position's logits (no other position is projected onto the vocabulary).
        """
        if not cross_item:
            self.clear()
        limit = min(len(self.held), len(context) - 1)
        kept = 0
        while kept < limit and self.held[kept] == context[kept]:
            kept += 1
        kept -= kept % CONTEXT_CHUNK  # see CONTEXT_CHUNK: the same pieces whatever was held
        self._lc.llama_memory_seq_rm(self._mem, 0, kept, -1)
        self.held = context[:kept]  # what sequence 0 holds should the decode below fail
        n = len(context)
        rows = np.zeros((0, self.n_vocab), dtype=np.float32)
        for a, b in aligned_pieces(kept, n):
            rows = self._decode([(context[i], i, 0, i == n - 1) for i in range(a, b)])
        self.held = list(context)
        return rows[-1]

    def eval_continuations(self, context: list[int], conts: list[list[int]]) -> np.ndarray:
        """Evaluate ``cont[:-1]`` of up to ``n_seq`` continuations after ``context``, one sequence each.

        Sequence 0 must hold ``context`` (:meth:`eval_context`). Returns the logit rows of every
        continuation token past the first, continuations one after the other. Afterwards sequence 0
        holds the context again and the others are empty.
        """
        lc, mem, n = self._lc, self._mem, len(context)
        entries: list[tuple[int, int, int, bool]] = []
        for seq, cont in enumerate(conts):
            if seq:
                lc.llama_memory_seq_cp(mem, 0, seq, -1, -1)
            entries.extend((tok, n + i, seq, True) for i, tok in enumerate(cont[:-1]))
        try:
            return self._decode(entries)
        finally:
            lc.llama_memory_seq_rm(mem, 0, n, -1)
            for seq in range(1, len(conts)):
                lc.llama_memory_seq_rm(mem, seq, -1, -1)

    def close(self) -> None:
        for part in ("_batch", "_ctx"):
            obj = getattr(self, part, None)
            if obj is not None:
                obj.close()
                setattr(self, part, None)
