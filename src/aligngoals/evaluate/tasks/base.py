"""The task protocol every request type and every Python task follows.

A task turns docs into model requests and the model's answers back into per-item
records, then aggregates them into metrics. The runner owns everything in between
(deduplication, sorting, batching, the run store), so a task never talks to a
model directly and every answer is cached and resumable.

Why hooks instead of one big function: a Python task (BBQ, a user's own) usually
changes one step (how a doc is prepared, how an answer is scored) and inherits the
rest; the hooks are ``process_doc``, ``fields``, ``requests``, ``score`` and
``aggregate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

from aligngoals.errors import ConfigError, DataError
from aligngoals.evaluate import metrics as M
from aligngoals.evaluate.tasks.data import assign_ids, read_source
from aligngoals.evaluate.tasks.prompting import LABELS, draw, get_field, join_nonempty, render
from aligngoals.evaluate.tasks.spec import TaskSpec
from aligngoals.models.base import ChatMessage, GenerationRequest, GenerationSettings, LoglikelihoodRequest, LoglikelihoodResult

Request = Union[LoglikelihoodRequest, GenerationRequest]
Result = Union[LoglikelihoodResult, str]


@dataclass
class Prepared:
    """A task ready to build requests: its docs (limited) and few-shot exemplars."""

    docs: list[dict]
    n_available: int
    limit: Optional[int]
    fewshot: list[dict] = field(default_factory=list)
    fewshot_pool: list[dict] = field(default_factory=list)


@dataclass
class BuildContext:
    """What building a request may need besides the doc."""

    seed: int
    chat_renderer: Any = None
    """``apply_chat_template(messages, add_generation_prompt=True)`` of the model, for
    log-likelihood tasks with ``chat: true``."""


class Task:
    """Base of all task types; subclasses set ``type`` and implement ``requests``/``score``."""

    type: str = "base"

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    # --- data ---------------------------------------------------------------------------------
    def load_docs(self, data_dir: str | None) -> list[dict]:
        """All docs of the task's data source (hook: override to read data another way)."""
        return read_source(self.spec, self.spec.data, data_dir)

    def process_doc(self, doc: dict) -> Optional[dict]:
        """Prepare one doc (hook); return None to leave it out."""
        return doc

    def prepare(self, *, data_dir: str | None, limit: Optional[int], seed: int) -> Prepared:
        """Read the docs, pick the evaluated ones and draw few-shot exemplars.

        The limited sample is drawn first and keyed by the data source (not the task
        name), so a zero-shot and a few-shot task over the same file score the same
        items and can be compared item by item; exemplars drawn from the task's own
        data then come from the items left out of the sample (or, without a limit,
        are removed from the scored items), so no item is its own exemplar.
        """
        docs = [d for d in (self.process_doc(x) for x in self.load_docs(data_dir)) if d is not None]
        docs = assign_ids(self.spec, docs)
        if not docs:
            raise DataError(f"Task {self.name}: its data has no items.", hint="Check data.path and data.where.")
        n_available = len(docs)
        data_key = self.spec.data.model_dump(mode="json")
        chosen = docs
        if limit is not None and len(docs) > limit:
            if self.spec.sample == "random":
                chosen = draw(docs, limit, {"data": data_key, "seed": seed, "limit": limit})
            else:
                chosen = docs[:limit]
        fs = self.spec.fewshot
        fewshot: list[dict] = []
        pool: list[dict] = []
        if fs.n:
            fs_seed = seed if fs.seed is None else fs.seed
            if fs.source is not None:
                pool = [d for d in (self.process_doc(x) for x in read_source(self.spec, fs.source, data_dir)) if d is not None]
                pool = assign_ids(self.spec, pool)
            else:
                chosen_ids = {d["id"] for d in chosen}
                rest = [d for d in docs if d["id"] not in chosen_ids]
                pool = rest if len(rest) >= fs.n and not fs.per_item else docs
            if not fs.per_item:
                fewshot = draw(pool, fs.n, {"data": data_key, "seed": fs_seed, "fewshot": fs.n})
                if fs.source is None:
                    shot_ids = {d["id"] for d in fewshot}
                    chosen = [d for d in chosen if d["id"] not in shot_ids]
        return Prepared(docs=chosen, n_available=n_available, limit=limit, fewshot=fewshot, fewshot_pool=pool)

    def exemplars(self, prep: Prepared, doc: dict, seed: int) -> list[dict]:
        fs = self.spec.fewshot
        if not fs.n:
            return []
        if not fs.per_item:
            return prep.fewshot
        fs_seed = seed if fs.seed is None else fs.seed
        pool = [d for d in prep.fewshot_pool if d["id"] != doc["id"]]
        return draw(pool, fs.n, {"task": self.name, "seed": fs_seed, "item": doc["id"]})

    # --- templates ---------------------------------------------------------------------------
    def fields(self, doc: dict) -> dict:
        """Template fields of a doc (hook): the doc itself, ``meta`` and ``labels``."""
        return {"meta": {}, **doc, "labels": LABELS}

    def render(self, template: str, doc: dict, extra: Optional[dict] = None, what: str = "prompt") -> str:
        f = self.fields(doc)
        if extra:
            f.update(extra)
        return render(template, f, where=f"task {self.name} {what} (item {doc.get('id')})")

    def user_prompt(self, doc: dict) -> str:
        """The prompt of one doc as a user reads it (no exemplars, no chat template)."""
        return self.render(self.spec.prompt, doc)

    def exemplar_answer(self, doc: dict) -> str:
        """The answer text that follows an exemplar's prompt (hook)."""
        if self.spec.target is None:
            raise ConfigError(f"Task {self.name} uses few-shot exemplars but has no 'target' template for their answers.",
                              hint="Add target: '{{ output }}' (the exemplar's answer) to the task file.")
        return self.render(self.spec.target, doc, what="target")

    def chat_messages(self, doc: dict, exemplars: Sequence[dict]) -> list[ChatMessage]:
        msgs: list[ChatMessage] = []
        if self.spec.system:
            msgs.append(ChatMessage("system", self.render(self.spec.system, doc, what="system")))
        for ex in exemplars:
            msgs.append(ChatMessage("user", self.user_prompt(ex)))
            msgs.append(ChatMessage("assistant", self.exemplar_answer(ex).strip()))
        msgs.append(ChatMessage("user", self.user_prompt(doc)))
        return msgs

    def model_input(self, doc: dict, exemplars: Sequence[dict], ctx: BuildContext) -> tuple[str | None, list[ChatMessage] | None]:
        """``(text, None)`` for a plain prompt, ``(None, messages)`` for chat."""
        if self.spec.chat:
            return None, self.chat_messages(doc, exemplars)
        sep = self.spec.fewshot.separator
        shots = [self.user_prompt(ex) + self.exemplar_answer(ex) for ex in exemplars]
        return join_nonempty([*shots, self.user_prompt(doc)], sep), None

    def context_text(self, doc: dict, exemplars: Sequence[dict], ctx: BuildContext) -> str:
        """The context of a log-likelihood request: plain text, or the chat template rendered."""
        text, msgs = self.model_input(doc, exemplars, ctx)
        if msgs is None:
            assert text is not None
            return text
        if ctx.chat_renderer is None:
            raise ConfigError(f"Task {self.name} has chat: true but the model cannot render a chat template.")
        return ctx.chat_renderer(msgs)

    def generation_settings(self, seed: int) -> GenerationSettings:
        return self.spec.generation.model_copy(update={"seed": seed})

    # --- requests and scores (implemented by the request types) ------------------------------
    def requests(self, doc: dict, exemplars: Sequence[dict], ctx: BuildContext) -> list[Request]:
        raise NotImplementedError

    def score(self, doc: dict, requests: Sequence[Request], results: Sequence[Result], ctx: BuildContext) -> dict:
        """The per-item record stored in the run store: at least ``scores`` (metric -> value)."""
        raise NotImplementedError

    # --- aggregation ---------------------------------------------------------------------------
    def groups(self, doc: dict) -> dict[str, str]:
        """Breakdown groups of a doc: ``{field: value}`` for each ``breakdown`` field."""
        out = {}
        for f in self.spec.breakdown:
            v = get_field(doc, f, None)
            if v is not None:
                out[f] = str(v)
        if self.spec.generalization_field:
            v = get_field(doc, self.spec.generalization_field, None)
            if v is not None:
                out["generalization"] = str(v)
        return out

    def summarize_records(self, records: Sequence[dict], seed: int) -> dict[str, dict]:
        out = {}
        for m in self.spec.metrics:
            if m in M.CORPUS_METRICS:
                rows = [r.get("stats", {}).get(m) for r in records]
                rows = [x for x in rows if x is not None]
                out[m] = M.summarize_corpus(rows, M.CORPUS_METRICS[m], seed=seed)
            else:
                out[m] = M.summarize([r["scores"].get(m) for r in records], seed=seed)
        return out

    def aggregate(self, records: Sequence[dict], seed: int) -> dict:
        """``{"metrics": ..., "breakdown": ...}`` with a bootstrap interval for every value."""
        result: dict[str, Any] = {"metrics": self.summarize_records(records, seed)}
        fields = {k for r in records for k in r.get("groups", {})}
        if fields:
            breakdown: dict[str, dict] = {}
            multi = len(fields) > 1
            for f in sorted(fields):
                values = sorted({r["groups"][f] for r in records if f in r.get("groups", {})})
                short = f.split(".")[-1]
                for v in values:
                    sub = [r for r in records if r.get("groups", {}).get(f) == v]
                    key = f"{short}={v}" if multi else v
                    summary = self.summarize_records(sub, seed)
                    # A group none of whose items is scored (e.g. MT-Bench categories without a
                    # reference answer; their generations are still stored for judges) is left out.
                    if any(m["n"] for m in summary.values()):
                        breakdown[key] = summary
            result["breakdown"] = breakdown
        return result


def request_input(req: GenerationRequest) -> str | list[dict]:
    """What a generation request sends: its prompt text, or its chat messages as dicts."""
    if req.prompt is not None:
        return req.prompt
    return [{"role": m.role, "content": m.content} for m in req.messages or ()]


def finite(x: float) -> Optional[float]:
    """None for NaN/inf so that JSON reports stay valid."""
    return None if x is None or not math.isfinite(x) else float(x)
