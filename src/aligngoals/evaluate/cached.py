"""Send requests to a model through the run store.

Why: this is where "nothing lost" and "a re-run is free" are enforced for every
caller (tasks, judges, questionnaires). Requests are deduplicated, looked up in
the store, and only the missing ones reach the model; each answer is written to
the store as soon as its group completes.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Sequence

from aligngoals.models.base import (
    ChatMessage,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    Model,
)
from aligngoals.store import RunStore, request_key

ProgressFn = Callable[[int], None]


class CachedModel:
    """A model whose every answer goes through a :class:`RunStore`.

    It satisfies the same :class:`~aligngoals.models.base.Scorer` and
    :class:`~aligngoals.models.base.Generator` protocols as the backend it wraps, so
    callers never unwrap it. ``stats`` counts how many requests were answered from the
    store ("cached") and how many were sent to the model ("computed").
    """

    def __init__(self, model: Model, store: RunStore, *, generation_batch: int = 8) -> None:
        self.model = model
        self.store = store
        self.generation_batch = max(1, int(generation_batch))
        self.stats = {"cached": 0, "computed": 0}

    @property
    def identity(self) -> dict:
        return self.model.identity

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def info(self) -> dict:
        return self.model.info

    @property
    def can_score(self) -> bool:
        return self.model.can_score

    @property
    def scoring_unavailable_reason(self) -> str | None:
        return self.model.scoring_unavailable_reason

    @property
    def renders_chat_locally(self) -> bool:
        return self.model.renders_chat_locally

    @property
    def context_length(self) -> int | None:
        return self.model.context_length

    def apply_chat_template(self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True) -> str:
        return self.model.apply_chat_template(messages, add_generation_prompt=add_generation_prompt)

    def render(self, request: GenerationRequest) -> str:
        return self.model.render(request)

    def count_prompt_tokens(self, request: GenerationRequest) -> int | None:
        return self.model.count_prompt_tokens(request)

    def _lookup(self, kind: str, requests: Sequence, progress: ProgressFn | None):
        """Keys of ``requests``, the answers the store already has, and the distinct missing requests.

        Requests answered by the store count as cached (and advance the progress bar) at once.
        """
        ident = self.model.identity
        keys = [request_key(ident, kind, r.to_dict()) for r in requests]
        found = self.store.get_many(keys)
        missing: dict = {}
        for k, r in zip(keys, requests):
            if k not in found and k not in missing:
                missing[k] = r
        cached_n = len(requests) - sum(1 for k in keys if k in missing)
        self.stats["cached"] += cached_n
        if progress and cached_n:
            progress(cached_n)
        return keys, found, missing

    def loglikelihood(
        self, requests: Sequence[LoglikelihoodRequest], progress: ProgressFn | None = None
    ) -> list[LoglikelihoodResult]:
        keys, found, missing = self._lookup("loglikelihood", requests, progress)
        # Group the missing requests by context so the model reuses the shared prefix,
        # and commit each group as soon as it is scored.
        by_context: dict[str, list[str]] = {}
        for k, r in missing.items():
            by_context.setdefault(r.context, []).append(k)
        counts = Counter(keys)
        done_counts = {k: counts[k] for k in missing}
        # Backends that batch across items (transformers) get several contexts per call;
        # answers are committed after each call.
        ctx_groups = list(by_context.values())
        start = 0
        while start < len(ctx_groups):
            per_call = max(1, int(self.model.groups_per_call))  # may change as the backend sees the items
            group_keys = [k for g in ctx_groups[start : start + per_call] for k in g]
            start += per_call
            group = [missing[k] for k in group_keys]
            results = self.model.loglikelihood(group)
            self.store.put_many(
                (k, "loglikelihood", missing[k].to_dict(), res.to_dict()) for k, res in zip(group_keys, results)
            )
            for k, res in zip(group_keys, results):
                found[k] = res.to_dict()
            n = sum(done_counts[k] for k in group_keys)
            self.stats["computed"] += len(group_keys)
            if progress:
                progress(n)
        return [LoglikelihoodResult.from_dict(found[k]) for k in keys]

    def generate(self, requests: Sequence[GenerationRequest], progress: ProgressFn | None = None) -> list[str]:
        keys, found, missing = self._lookup("generate", requests, progress)
        pending = list(missing.items())
        for start in range(0, len(pending), self.generation_batch):
            chunk = pending[start : start + self.generation_batch]
            texts = self.model.generate([r for _, r in chunk])
            self.store.put_many((k, "generate", r.to_dict(), {"text": t}) for (k, r), t in zip(chunk, texts))
            for (k, _), t in zip(chunk, texts):
                found[k] = {"text": t}
            self.stats["computed"] += len(chunk)
            if progress:
                progress(sum(keys.count(k) for k, _ in chunk))
        return [found[k]["text"] for k in keys]
