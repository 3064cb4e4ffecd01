"""One model interface for every backend.

Why: tasks, judges, questionnaires and alignment all ask a model the same two
questions, "how likely is this continuation?" and "what do you say next?".
Each backend (llama.cpp, transformers, ...) answers them; everything above
talks to :class:`Model` only.
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Protocol, Sequence, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aligngoals.errors import AligngoalsError, config_error

ProgressFn = Callable[[int], None]
"""Called with the number of requests just completed (for progress bars)."""


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str

    def __post_init__(self) -> None:
        if self.role not in {"system", "user", "assistant"}:
            raise AligngoalsError(
                f"Chat message role {self.role!r} is not one of system, user, assistant."
            )

    @staticmethod
    def coerce(messages: Iterable[Any]) -> tuple["ChatMessage", ...]:
        out = []
        for m in messages:
            if isinstance(m, ChatMessage):
                out.append(m)
            elif isinstance(m, dict) and "role" in m and "content" in m:
                out.append(ChatMessage(str(m["role"]), str(m["content"])))
            else:
                raise AligngoalsError(
                    f"Chat message {m!r} must be a mapping with 'role' and 'content'."
                )
        return tuple(out)


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """Score ``continuation`` given ``context`` (plain text, no template applied)."""

    context: str
    continuation: str

    def to_dict(self) -> dict:
        return {"context": self.context, "continuation": self.continuation}


@dataclass(frozen=True)
class LoglikelihoodResult:
    logprob: float
    """Summed natural-log probability of the continuation's tokens."""
    n_tokens: int
    """Number of continuation tokens."""
    is_greedy: bool
    """True when every continuation token is the arg-max at its position."""

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "LoglikelihoodResult":
        return LoglikelihoodResult(float(d["logprob"]), int(d["n_tokens"]), bool(d["is_greedy"]))


class GenerationSettings(BaseModel):
    """How to generate: the one settings type of backends, tasks (YAML ``generation:``), judges and synthesis.

    Frozen (requests are hashed and deduplicated); invalid values fail with the field named.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: tuple[str, ...] = ()
    seed: int = 0

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise config_error(exc, "Generation settings", cls=AligngoalsError,
                               hint="max_tokens >= 1, temperature >= 0, 0 < top_p <= 1.") from None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def to_dict(self) -> dict:
        """The request-key form (stop as a list), unchanged since the dataclass version so stores stay valid."""
        return {"max_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p,
                "stop": list(self.stop), "seed": self.seed}


@dataclass(frozen=True)
class GenerationRequest:
    """Either a raw ``prompt`` or chat ``messages`` (rendered with the model's template)."""

    prompt: str | None = None
    messages: tuple[ChatMessage, ...] | None = None
    settings: GenerationSettings = field(default_factory=GenerationSettings)

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise AligngoalsError("A generation request needs exactly one of 'prompt' or 'messages'.")
        if self.messages is not None:
            object.__setattr__(self, "messages", ChatMessage.coerce(self.messages))

    def to_dict(self) -> dict:
        return {
            "prompt": self.prompt,
            "messages": None if self.messages is None else [asdict(m) for m in self.messages],
            "settings": self.settings.to_dict(),
        }


@runtime_checkable
class Generator(Protocol):
    """Answers "what do you say next?": what generation tasks, judges and questionnaires need.

    Backends, and the cached layer that wraps them, satisfy it; callers never unwrap.
    """

    @property
    def identity(self) -> dict: ...

    @property
    def name(self) -> str: ...

    @property
    def info(self) -> dict: ...

    #: True when the chat template is rendered here (prompt text is known before sending);
    #: False for served models, whose server applies its own template.
    renders_chat_locally: bool

    #: Longest sequence (prompt + answer) in tokens, or None when unknown.
    context_length: int | None

    def count_prompt_tokens(self, request: GenerationRequest) -> int | None: ...

    def generate(self, requests: Sequence[GenerationRequest], progress: ProgressFn | None = None) -> list[str]: ...

    def apply_chat_template(self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True) -> str: ...


@runtime_checkable
class Scorer(Protocol):
    """Answers "how likely is this continuation?": what multiple-choice and pair tasks need."""

    @property
    def identity(self) -> dict: ...

    #: False when the backend cannot return log-likelihoods (decided at load for served models).
    can_score: bool
    #: Why not, when ``can_score`` is False.
    scoring_unavailable_reason: str | None

    def loglikelihood(
        self, requests: Sequence[LoglikelihoodRequest], progress: ProgressFn | None = None
    ) -> list[LoglikelihoodResult]: ...


def require_scoring(model: "Scorer", what: str) -> None:
    """Fail before the first request when ``what`` (a task name) needs scores the backend cannot give."""
    if not model.can_score:
        ident = model.identity or {}
        backend = ident.get("backend", type(model).__name__)
        reason = model.scoring_unavailable_reason
        raise AligngoalsError(
            f"{what} needs log-likelihood scoring, which the {backend} backend ({ident.get('name', '?')}) cannot give"
            + (f": {reason}" if reason else "."),
            hint="Run it on a backend that scores (smollm2, gguf:, hf:, vllm:, or a server that supports echo + logprobs), "
            "or choose generation tasks only.",
        )


class Model(abc.ABC):
    """A language model that can score and generate text.

    Subclasses implement :meth:`_loglikelihood_tokens_grouped`, :meth:`_generate`,
    :meth:`tokenize` and :meth:`apply_chat_template`; the public methods add
    validation, lm-evaluation-harness-compatible tokenisation and shared-prefix
    grouping on top.
    """

    #: Short backend name ("llamacpp", "hf", ...).
    backend: str = "base"
    #: Whether :meth:`loglikelihood` works (a :class:`Scorer`); generation-only backends set False.
    can_score: bool = True
    #: Whether :meth:`apply_chat_template` renders locally (a served model's server renders it).
    renders_chat_locally: bool = True
    #: Why scoring is unavailable (shown in the error), when ``can_score`` is False.
    scoring_unavailable_reason: str | None = None
    #: Requests per forward pass where the backend batches (``prefix_reuse=False`` path).
    batch_size: int = 1

    def __init__(self) -> None:
        self.prefix_reuse = True
        #: Reuse the key/value state of a prefix shared *across* items (a few-shot primer) too;
        #: off only to measure it (benchmarks/prefix_reuse.py) or to check it equals recomputation.
        self.cross_item_reuse = True
        self.prefix_token_override: int | None = None

    # --- identity -----------------------------------------------------------------
    @property
    @abc.abstractmethod
    def identity(self) -> dict:
        """What makes two models the same for caching: backend, source, file hash, dtype."""

    @property
    def name(self) -> str:
        return str(self.identity.get("name", self.backend))

    @property
    def info(self) -> dict:
        """Identity plus facts that do not change answers (local path, device), for reports."""
        return dict(self.identity)

    # --- primitives each backend provides -----------------------------------------
    @abc.abstractmethod
    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens."""

    @abc.abstractmethod
    def apply_chat_template(self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True) -> str:
        """Render chat messages with the model's own chat template."""

    @abc.abstractmethod
    def _score_group(self, context: list[int], continuations: list[list[int]]) -> list[LoglikelihoodResult]:
        """Score several continuations of one context (the shared-prefix primitive)."""

    def _score_groups(
        self, groups: list[tuple[list[int], list[list[int]]]]
    ) -> list[list[LoglikelihoodResult]]:
        """Score several ``(context, continuations)`` groups at once.

        The default scores one group after the other; a backend that batches across
        items (transformers: many contexts in one padded forward pass) overrides it.
        """
        return [self._score_group(ctx, conts) for ctx, conts in groups]

    #: How many context groups :meth:`loglikelihood` hands to :meth:`_score_groups` at once.
    groups_per_call: int = 1

    def _score_full(self, pairs: list[tuple[list[int], list[int]]]) -> list[LoglikelihoodResult]:
        """Score each (context, continuation) by recomputing every token (no prefix reuse).

        Backends override this with a batched version; it exists so that the
        shared-prefix path can be checked against the naive one.
        """
        return [self._score_group(ctx, [cont])[0] for ctx, cont in pairs]

    @abc.abstractmethod
    def _generate(self, requests: list[GenerationRequest], progress: ProgressFn | None) -> list[str]:
        ...

    def close(self) -> None:
        """Release native resources (optional)."""

    @property
    def context_length(self) -> int | None:
        """Longest sequence the model accepts, in tokens (None when unknown)."""
        return None

    def count_prompt_tokens(self, request: GenerationRequest) -> int | None:
        """Tokens the rendered prompt of ``request`` takes, or None where the server renders it."""
        if not self.renders_chat_locally:
            return None
        return len(self.tokenize(self.render(request)))

    # --- public API -------------------------------------------------------------------
    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Tokenise like lm-evaluation-harness so that numbers match it exactly.

        An empty context becomes ``[prefix_token_id]`` (BOS, else end-of-text, as
        lm-eval's ``HFLM``); a non-empty one is not prefixed. Trailing whitespace of the context moves to the continuation; the
        continuation's tokens are those of ``context + continuation`` past the
        context's own tokens. The context therefore always tokenises the same
        way for every choice, which is what makes shared-prefix reuse exact.
        """
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = self.tokenize(context + continuation)
        ctx = self.tokenize(context) if context else []
        cont = whole[len(ctx):]
        if not ctx:
            ctx = [self.prefix_token_id]
        if not cont:
            raise AligngoalsError(
                f"The continuation {continuation!r} has no tokens after context; nothing to score."
            )
        return ctx, cont

    @property
    def prefix_token_id(self) -> int:
        """Token an empty context is conditioned on.

        lm-evaluation-harness's rule (``HFLM.prefix_token_id``): the tokenizer's BOS
        token when it defines one, else its end-of-text token; a ``prefix_token_id``
        model argument (here :meth:`set_prefix_token_id`, ``--prefix-token-id``)
        overrides both. Empty-context tasks (CrowS-Pairs) depend on it.
        """
        if self.prefix_token_override is not None:
            return self.prefix_token_override
        return self._default_prefix_token_id()

    def _default_prefix_token_id(self) -> int:
        raise AligngoalsError(
            f"The {self.backend} backend cannot score a continuation with an empty context.",
            hint="Use a local backend (smollm2, gguf:..., hf:...) for log-likelihood tasks.",
        )

    #: Vocabulary size, where the backend knows it (bounds ``--prefix-token-id``).
    vocab_size: int | None = None

    def set_prefix_token_id(self, token_id: int | None) -> None:
        """Override the empty-context token (None restores the BOS-else-EOT rule)."""
        if token_id is not None:
            if isinstance(token_id, bool) or not isinstance(token_id, int) or token_id < 0:
                raise AligngoalsError(f"prefix token id must be a non-negative integer, got {token_id!r}.")
            if self.vocab_size is not None and token_id >= self.vocab_size:
                raise AligngoalsError(
                    f"prefix token id {token_id} is outside the vocabulary of {self.name} ({self.vocab_size} tokens)."
                )
        self.prefix_token_override = token_id

    def loglikelihood(
        self,
        requests: Sequence[LoglikelihoodRequest],
        progress: ProgressFn | None = None,
    ) -> list[LoglikelihoodResult]:
        """Summed log-probability, token count and greediness of each continuation.

        Requests that share a context are grouped so the context is computed
        once (unless ``prefix_reuse`` is off, which exists for benchmarking).
        Results come back in request order.
        """
        for r in requests:
            if not isinstance(r, LoglikelihoodRequest):
                raise AligngoalsError(f"Expected LoglikelihoodRequest, got {type(r).__name__}.")
        encoded = [self.encode_pair(r.context, r.continuation) for r in requests]
        results: list[LoglikelihoodResult | None] = [None] * len(requests)
        if self.prefix_reuse:
            groups: dict[tuple[int, ...], list[int]] = {}
            for i, (ctx, _) in enumerate(encoded):
                groups.setdefault(tuple(ctx), []).append(i)
            # Longest contexts first, so groups handed over together have similar lengths; one group
            # per call (cross-item reuse keeps the previous context's state): token order instead,
            # which puts contexts that share a prefix next to each other.
            if int(self.groups_per_call) == 1 and self.cross_item_reuse:
                order = sorted(groups)
            else:
                order = sorted(groups, key=len, reverse=True)
            start = 0
            while start < len(order):
                step = max(1, int(self.groups_per_call))  # a backend may batch more once it sees a shared primer
                keys = order[start : start + step]
                start += step
                outs = self._score_groups([(list(k), [encoded[i][1] for i in groups[k]]) for k in keys])
                n = 0
                for k, out in zip(keys, outs):
                    for i, res in zip(groups[k], out):
                        results[i] = res
                    n += len(groups[k])
                if progress:
                    progress(n)
        else:
            step = max(1, int(self.batch_size))
            for start in range(0, len(encoded), step):
                chunk = encoded[start : start + step]
                for j, res in enumerate(self._score_full(chunk)):
                    results[start + j] = res
                if progress:
                    progress(len(chunk))
        return [r for r in results if r is not None]

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        progress: ProgressFn | None = None,
    ) -> list[str]:
        """Generate one completion per request (chat requests use the chat template)."""
        for r in requests:
            if not isinstance(r, GenerationRequest):
                raise AligngoalsError(f"Expected GenerationRequest, got {type(r).__name__}.")
        return self._generate(list(requests), progress)

    def render(self, request: GenerationRequest) -> str:
        """The exact prompt text a generation request is sent as."""
        if request.prompt is not None:
            return request.prompt
        assert request.messages is not None
        return self.apply_chat_template(request.messages, add_generation_prompt=True)

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the earliest stop string (backends may overshoot by a token)."""
    cut = len(text)
    for s in stop:
        if s:
            j = text.find(s)
            if j != -1:
                cut = min(cut, j)
    return text[:cut]
