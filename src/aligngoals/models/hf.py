"""transformers backend: local directories, hub ids and GGUF files, on CPU or CUDA.

Shared-prefix scoring uses the key/value cache: the contexts of several items
run as one right-padded batch (each context once, however many choices it
has), then every choice runs on top of its context's cache, many items' choices
in one padded batch. A prefix shared across items (a few-shot primer) is
computed once and kept: its key/values are expanded to each batch of contexts,
which then run only their own tokens. In float32 this matches the naive full recomputation to
well under 1e-4 nats (tested).
"""

from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path
from typing import Any, Sequence

from aligngoals.errors import ModelError
from aligngoals.models.base import (
    ChatMessage,
    GenerationRequest,
    LoglikelihoodResult,
    Model,
    ProgressFn,
    truncate_at_stop,
)

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf")


def _require_torch():
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ModelError(
            "The transformers backend ('hf:...') needs the 'hf' extra (torch, transformers, accelerate, gguf).",
            hint="Install it with: pip install 'aligngoals[hf]' (on CPU: pip install torch==2.13.0 first).",
        ) from exc


def weights_fingerprint(files: Sequence[Path]) -> str:
    """A content fingerprint of weight files that stays cheap for multi-GB checkpoints.

    Files up to 1 GiB are hashed whole; larger ones by size plus their first and
    last 16 MiB (a changed checkpoint changes its header or its tail in practice).
    """
    h = hashlib.sha256()
    for f in sorted(files, key=lambda p: p.name):
        size = f.stat().st_size
        h.update(f.name.encode())
        h.update(str(size).encode())
        with open(f, "rb") as fh:
            if size <= 1 << 30:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            else:
                h.update(fh.read(16 << 20))
                fh.seek(-(16 << 20), os.SEEK_END)
                h.update(fh.read())
    return h.hexdigest()


def resolve_device(device: str | None) -> str:
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"Device {device!r} was asked for but CUDA is not available here.", hint="Use --device cpu.")
    return device


def resolve_dtype(dtype: str | None, device: str):
    import torch

    if dtype in (None, "auto"):
        return torch.float32 if device == "cpu" else torch.bfloat16
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if dtype not in table:
        raise ModelError(f"Unknown dtype {dtype!r}.", hint=f"Use one of {', '.join(table)}.")
    return table[dtype]


def load_hf_causal_lm(target: str, *, device: str = "cpu", dtype: Any = None, for_training: bool = False):
    """Load (model, tokenizer, identity-source dict) from a directory, hub id or GGUF file.

    GGUF files are dequantized (``GgufConfig(dequantize=True)``) so the result is
    a plain float model that trainers accept. Remote code is never trusted.
    """
    _require_torch()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    dtype = dtype or torch.float32
    path = Path(target).expanduser()
    source: dict[str, Any]
    kwargs: dict[str, Any] = {"trust_remote_code": False, "dtype": dtype}
    tok_kwargs: dict[str, Any] = {"trust_remote_code": False}
    if target.endswith(".gguf"):
        if not path.is_file():
            raise ModelError(f"GGUF file {path} does not exist.", hint="Check the path after 'hf:'.")
        from aligngoals.models.llamacpp import cached_file_sha256

        load_from = str(path.parent)
        kwargs["gguf_file"] = path.name
        tok_kwargs["gguf_file"] = path.name
        source = {"source": "gguf", "file_sha256": cached_file_sha256(path)}
        local_path: str | None = str(path.resolve())
    elif path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(
                f"{path} is a directory but has no config.json, so it is not a transformers model directory.",
                hint="Point 'hf:' at a directory written by save_pretrained (or by 'aligngoals align').",
            )
        weights = [p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES]
        if not weights:
            raise ModelError(f"{path} has no weight files (*.safetensors).", hint="Re-save the model with save_pretrained.")
        load_from = str(path)
        source = {"source": "dir", "weights_fingerprint": weights_fingerprint(weights)}
        local_path = str(path.resolve())
    elif path.exists():
        raise ModelError(f"{path} is neither a directory nor a .gguf file.", hint="Pass a model directory or a .gguf file.")
    else:
        if target.count("/") != 1 or target.startswith((".", "/", "~")):
            raise ModelError(
                f"Model {target!r} is not a local directory, a .gguf file or a hub id (ORG/NAME).",
                hint="Check the path; hub ids look like 'HuggingFaceTB/SmolLM2-135M-Instruct'.",
            )
        load_from = target
        source = {"source": "hub", "hub_id": target}
        local_path = None
    try:
        tokenizer = AutoTokenizer.from_pretrained(load_from, **tok_kwargs)
        model = AutoModelForCausalLM.from_pretrained(load_from, **kwargs)
    except OSError as exc:
        raise ModelError(
            f"transformers could not load {target!r}: {exc}",
            hint="Hub models must already be in the local Hugging Face cache (this machine may be offline).",
        ) from exc
    if source["source"] == "hub":
        source["revision"] = getattr(model.config, "_commit_hash", None)
    model.to(device)
    if not for_training:
        model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, source, local_path


class HFModel(Model):
    backend = "hf"

    def __init__(
        self,
        target: str,
        *,
        name: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 8,
        max_length: int | None = None,
        cross_item_batching: bool | None = None,
        **_: Any,
    ) -> None:
        super().__init__()
        _require_torch()
        import torch

        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model, self.tokenizer, source, self.local_path = load_hf_causal_lm(
            target, device=self.device, dtype=self.dtype
        )
        self.batch_size = max(1, int(batch_size))
        # Batching contexts of different items pays on a GPU (many rows per kernel) but not on
        # CPU, where a single item's context already fills the matrix units and padding is pure
        # cost: on 1 CPU thread, 16 HH-RLHF items took 14.7-15.1 s one item at a time and
        # 20.6-21.1 s in batches of 8. None chooses by device.
        self.cross_item_batching = self.device != "cpu" if cross_item_batching is None else bool(cross_item_batching)
        cfg_len = getattr(self.model.config, "max_position_embeddings", None) or 2048
        self.max_length = int(max_length or cfg_len)
        self._name = name or (f"hf:{Path(target).name}" if self.local_path else f"hf:{target}")
        self._identity = {
            "backend": self.backend,
            "name": self._name,
            **source,
            "dtype": str(self.dtype).replace("torch.", ""),
        }
        self._torch = torch
        self.vocab_size = len(self.tokenizer)
        self._primer = None  # (tokens, key/value cache) of the prefix shared across items
        self._primer_in_use = False  # the last context pass ran behind the primer
        self._last_context = None
        # transformers 5.x renamed ``past_key_values`` to ``cache``; support both.
        import inspect

        params = inspect.signature(self.model.forward).parameters
        self._cache_attr = "cache" if "cache" in params else "past_key_values"

    @property
    def identity(self) -> dict:
        # The empty-context token changes scores, so it is part of what makes answers reusable.
        return {**self._identity, "prefix_token_id": self.prefix_token_id}

    @property
    def info(self) -> dict:
        return {**self.identity, "path": self.local_path, "device": self.device}

    def _default_prefix_token_id(self) -> int:
        """BOS when the tokenizer defines one, else end-of-text: lm-eval's ``HFLM.prefix_token_id``."""
        tok = self.tokenizer
        if tok.bos_token_id is not None:
            return int(tok.bos_token_id)
        if tok.eos_token_id is None:
            raise ModelError(f"The tokenizer of {self._name} defines neither a BOS nor an end-of-text token.",
                             hint="Pass --prefix-token-id N to choose the token an empty context is conditioned on.")
        return int(tok.eos_token_id)

    def tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def apply_chat_template(self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            raise ModelError(
                f"Model {self._name} has no chat template, so chat messages cannot be rendered.",
                hint="Use a raw 'prompt' instead of chat messages, or a model that ships a chat template.",
            )
        return self.tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in ChatMessage.coerce(messages)],
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
        )

    # --- scoring -------------------------------------------------------------------------
    def _check_length(self, n: int) -> None:
        if n > self.max_length:
            raise ModelError(
                f"A request needs {n} tokens but the model accepts {self.max_length}.",
                hint="Shorten the prompt (fewer few-shot examples) or pass a model with a longer context.",
            )

    def _score_group(self, context: list[int], continuations: list[list[int]]) -> list[LoglikelihoodResult]:
        """Score the continuations of one context, computing the context once."""
        return self._score_groups([(context, continuations)])[0]

    # --- cross-item batching -------------------------------------------------------------
    #: Tokens (rows x width) of one continuation forward pass; bounds the [rows, width, vocab] logits.
    token_budget: int = 2048

    @property
    def context_length(self) -> int | None:
        return self.max_length

    @property
    def groups_per_call(self) -> int:  # type: ignore[override]
        """Items scored together: many on a GPU; on CPU one, or many while items share a primer.

        Why batch on CPU behind a primer: with the primer's key/values reused, each item adds only
        its own few tokens, and a forward pass of a dozen tokens is bound by reading the weights;
        batching items amortizes that read (100 TruthfulQA-style items behind the 6-shot primer:
        12.2 s batched vs 33.9 s one at a time, 2 CPU threads). Long unique contexts (HH dialogues)
        stay one at a time, where padding is pure cost (see ``cross_item_batching``).
        """
        if self.cross_item_batching or self._primer_in_use:
            return self.batch_size * 4
        return 1

    def _context_batches(self, lengths: list[int]) -> list[list[int]]:
        """Batches of context indices (sorted longest first) whose padding stays within 25%."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        batches: list[list[int]] = []
        for i in order:
            if batches:
                b = batches[-1]
                width = lengths[b[0]]
                real = sum(lengths[j] for j in b) + lengths[i]
                if (len(b) < self.batch_size and width * (len(b) + 1) <= 1.25 * real
                        and width * (len(b) + 1) <= max(4 * self.token_budget, width)):
                    b.append(i)
                    continue
            batches.append([i])
        return batches

    @staticmethod
    def _fork_cache(cache, index):
        """A cache holding the rows ``index`` of ``cache`` (rows may repeat); ``cache`` is left intact.

        ``batch_select_indices`` replaces each layer's tensors by indexed copies, so a
        shallow copy of the cache and its layers is enough to keep the original.
        """
        layers = getattr(cache, "layers", None)
        if layers is None:  # pragma: no cover - older cache classes
            new = copy.deepcopy(cache)
        else:
            new = copy.copy(cache)
            new.layers = [copy.copy(layer) for layer in layers]
        new.batch_select_indices(index)
        return new

    #: Shortest shared prefix worth keeping across items (a few-shot primer, a system prompt).
    min_primer: int = 16

    def _primer_length(self, contexts: list[list[int]]) -> int:
        """Tokens at the start of every context in ``contexts`` whose key/values can be reused.

        The stored primer is reused when every context extends it; otherwise the longest
        prefix these contexts share with the previous call's last context (or the stored
        primer) becomes the primer, if at least :attr:`min_primer` tokens long. A lone first
        context sets no primer. At least one context token always runs (its logits score
        the first continuation token).
        """
        if not self.cross_item_reuse or not self.prefix_reuse:
            return 0
        shortest = min(len(c) for c in contexts) - 1
        stored = self._primer[0] if self._primer is not None else None
        if stored is not None and len(stored) <= shortest and all(tuple(c[: len(stored)]) == stored for c in contexts):
            return len(stored)
        ref = stored if stored is not None else self._last_context
        self._last_context = list(contexts[-1])
        if ref is None:
            ref = contexts[0] if len(contexts) > 1 else None
            if ref is None:
                return 0
        n = shortest
        for c in contexts:
            k = 0
            while k < n and k < len(ref) and c[k] == ref[k]:
                k += 1
            n = k
        return n if n >= self.min_primer else 0

    def _primer_cache(self, tokens: list[int]):
        """Key/values of ``tokens`` (batch of one): the stored primer, cut down or computed anew."""
        torch = self._torch
        key = tuple(tokens)
        if self._primer is not None and self._primer[0] == key:
            return self._primer[1]
        if self._primer is not None and self._primer[0][: len(key)] == key:
            cache = self._fork_cache(self._primer[1], torch.zeros(1, dtype=torch.long, device=self.device))
            for layer in cache.layers:  # keep the first len(key) positions (the shared part)
                layer.keys = layer.keys[..., : len(key), :]
                layer.values = layer.values[..., : len(key), :]
        else:
            o = self.model(input_ids=torch.tensor([tokens], device=self.device), use_cache=True,
                           logits_to_keep=1)
            cache = getattr(o, self._cache_attr)
            del o
        self._primer = (key, cache)
        return cache

    def _context_pass(self, contexts: list[list[int]]):
        """Run a batch of contexts (right-padded, after the shared primer's cached key/values).

        Returns the last position's log-probabilities per row, the batch's cache, the
        context lengths and the padded width (primer included).
        """
        torch = self._torch
        dev = self.device
        pad = self.tokenizer.pad_token_id or 0
        lens = [len(c) for c in contexts]
        width = max(lens)
        n = self._primer_length(contexts)
        self._primer_in_use = n > 0
        extra: dict = {}
        if n:
            primer = self._primer_cache(contexts[0][:n])
            extra[self._cache_attr] = self._fork_cache(primer, torch.zeros(len(contexts), dtype=torch.long, device=dev))
            extra["position_ids"] = torch.arange(n, width, device=dev).expand(len(contexts), -1)
        inp = torch.full((len(contexts), width - n), pad, dtype=torch.long, device=dev)
        for b, c in enumerate(contexts):
            inp[b, : lens[b] - n] = torch.tensor(c[n:], device=dev)
        last_pos = sorted(set(k - 1 - n for k in lens))
        o = self.model(input_ids=inp, use_cache=True, logits_to_keep=torch.tensor(last_pos, device=dev), **extra)
        col = {p: j for j, p in enumerate(last_pos)}
        sel = torch.tensor([col[k - 1 - n] for k in lens], device=dev)
        last = torch.log_softmax(o.logits[torch.arange(len(contexts), device=dev), sel].float(), dim=-1)
        cache = getattr(o, self._cache_attr)
        del o
        return last, cache, lens, width

    def _score_groups(self, groups):
        """Score many items at once: contexts run as right-padded batches, then every
        continuation of the batch runs on top of its context's key/value cache.

        Why right padding and no attention mask in the context pass: with causal
        attention a real token never sees the padding after it, so each row's keys and
        values equal those of the context run alone; only the context's last position
        gets the vocabulary projection (``logits_to_keep`` with the rows' last
        indices). Continuation rows then attend to their own context (padding masked)
        at their true positions (``position_ids`` from the context length), which is
        the naive full computation re-ordered; tests check it to 1e-4 nats.
        """
        torch = self._torch
        dev = self.device
        for ctx, conts in groups:
            self._check_length(len(ctx) + max(len(c) for c in conts))
        out: list[list[LoglikelihoodResult | None]] = [[None] * len(conts) for _, conts in groups]
        pad = self.tokenizer.pad_token_id or 0
        with torch.inference_mode():
            for batch in self._context_batches([len(ctx) for ctx, _ in groups]):
                last, cache, lens, width = self._context_pass([groups[g][0] for g in batch])
                # Single-token continuations need only the context's last logits.
                rows: list[tuple[int, int]] = []  # (row in batch, continuation index)
                for b, g in enumerate(batch):
                    for k, c in enumerate(groups[g][1]):
                        if len(c) == 1:
                            out[g][k] = LoglikelihoodResult(float(last[b, c[0]]), 1, bool(int(last[b].argmax()) == c[0]))
                        else:
                            rows.append((b, k))
                # Continuation batches by length, each within the token budget.
                rows.sort(key=lambda r: -len(groups[batch[r[0]]][1][r[1]]))
                chunks: list[list[tuple[int, int]]] = []
                for r in rows:
                    n = len(groups[batch[r[0]]][1][r[1]]) - 1
                    if chunks and (len(chunks[-1]) + 1) * chunks[-1][0][2] <= self.token_budget:
                        chunks[-1].append((*r, n))
                    else:
                        chunks.append([(*r, n)])
                for ci, chunk in enumerate(chunks):
                    cw = chunk[0][2]
                    index = torch.tensor([b for b, _, _ in chunk], device=dev)
                    if ci == len(chunks) - 1:
                        cache.batch_select_indices(index)  # last user: select in place
                        row_cache = cache
                    else:
                        row_cache = self._fork_cache(cache, index)
                    cinp = torch.full((len(chunk), cw), pad, dtype=torch.long, device=dev)
                    att = torch.zeros((len(chunk), width + cw), dtype=torch.long, device=dev)
                    pos = torch.zeros((len(chunk), cw), dtype=torch.long, device=dev)
                    for j, (b, k, n) in enumerate(chunk):
                        c = groups[batch[b]][1][k]
                        cinp[j, :n] = torch.tensor(c[:-1], device=dev)
                        att[j, : lens[b]] = 1
                        att[j, width : width + n] = 1
                        pos[j] = torch.arange(lens[b], lens[b] + cw, device=dev)
                    o = self.model(input_ids=cinp, attention_mask=att, position_ids=pos, use_cache=True,
                                   **{self._cache_attr: row_cache})
                    lp = torch.log_softmax(o.logits.float(), dim=-1)
                    del o, row_cache
                    for j, (b, k, n) in enumerate(chunk):
                        c = groups[batch[b]][1][k]
                        tgt = torch.tensor(c, device=dev)
                        scored = torch.cat([last[b].unsqueeze(0), lp[j, :n]], dim=0)
                        picked = scored.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
                        out[batch[b]][k] = LoglikelihoodResult(
                            float(picked.double().sum()), len(c), bool((scored.argmax(-1) == tgt).all())
                        )
                    del lp
                del cache
        return [[r for r in rs if r is not None] for rs in out]

    def _score_full(self, pairs: list[tuple[list[int], list[int]]]) -> list[LoglikelihoodResult]:
        """Naive batched scoring (right-padded full sequences), as lm-evaluation-harness does."""
        torch = self._torch
        dev = self.device
        seqs = [(ctx + cont)[:-1] for ctx, cont in pairs]
        for s in seqs:
            self._check_length(len(s) + 1)
        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id or 0
        inp = torch.full((len(seqs), width), pad, dtype=torch.long, device=dev)
        att = torch.zeros((len(seqs), width), dtype=torch.long, device=dev)
        for b, s in enumerate(seqs):
            inp[b, : len(s)] = torch.tensor(s, device=dev)
            att[b, : len(s)] = 1
        with torch.inference_mode():
            lp = torch.log_softmax(self.model(input_ids=inp, attention_mask=att).logits.float(), dim=-1)
        out = []
        for b, (ctx, cont) in enumerate(pairs):
            start = len(ctx) - 1
            rows = lp[b, start : start + len(cont)]
            tgt = torch.tensor(cont, device=dev)
            picked = rows.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
            out.append(LoglikelihoodResult(float(picked.double().sum()), len(cont), bool((rows.argmax(-1) == tgt).all())))
        return out

    # --- generation ----------------------------------------------------------------------
    def _generate(self, requests: list[GenerationRequest], progress: ProgressFn | None) -> list[str]:
        torch = self._torch
        outs: list[str] = [""] * len(requests)
        # Greedy requests with equal settings batch together; sampled ones run alone so
        # that each request's seed alone decides its output, whatever the batch.
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            key = (r.settings.max_tokens, r.settings.stop) if r.settings.greedy else ("sample", i)
            groups.setdefault(key, []).append(i)
        tok = self.tokenizer
        tok.padding_side = "left"
        for idxs in groups.values():
            for start in range(0, len(idxs), self.batch_size):
                chunk = idxs[start : start + self.batch_size]
                s = requests[chunk[0]].settings
                prompts = [self.render(requests[i]) for i in chunk]
                enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
                self._check_length(enc["input_ids"].shape[1] + 1)
                gen_kwargs: dict[str, Any] = {
                    "max_new_tokens": min(s.max_tokens, self.max_length - enc["input_ids"].shape[1]),
                    "pad_token_id": tok.pad_token_id,
                }
                if s.greedy:
                    gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
                else:
                    torch.manual_seed(s.seed)
                    gen_kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p, top_k=0)
                if s.stop:
                    gen_kwargs.update(stop_strings=list(s.stop), tokenizer=tok)
                with torch.inference_mode():
                    gen = self.model.generate(**enc, **gen_kwargs)
                new = gen[:, enc["input_ids"].shape[1] :]
                for j, i in enumerate(chunk):
                    text = tok.decode(new[j], skip_special_tokens=True)
                    outs[i] = truncate_at_stop(text, s.stop)
                if progress:
                    progress(len(chunk))
        return outs
