"""Token-level scoring shared by training and evaluation: answer log-probabilities,
sampling from the policy, and reward-model scores.

Why shared: PPO, RAFT, RRHF and the before/after measurement must tokenise an
answer exactly the way TRL does (the whole conversation rendered with the chat
template; the answer is what follows the prompt's common prefix), or the
numbers of one method would not be comparable with another's.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from aligngoals.align.data import chat_ids, with_system
from aligngoals.errors import ModelError


@dataclass
class Tokenized:
    prompt_ids: list[int]
    completion_ids: list[int]


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def tokenize_answer(tokenizer: Any, prompt: list[dict], answer: str, system_prompt: str | None = None) -> Tokenized:
    """Prompt and answer token ids, as TRL's DPO/SFT trainers build them for conversational data."""
    msgs = with_system(prompt, system_prompt)
    p = chat_ids(tokenizer, msgs, add_generation_prompt=True)
    full = chat_ids(tokenizer, msgs + [{"role": "assistant", "content": answer}])
    cut = common_prefix_length(p, full)
    return Tokenized(full[:cut], full[cut:])


def batch_answer_logprobs(model: Any, items: Sequence[Tokenized], pad_id: int, *, grad: bool = False) -> list[Any]:
    """Per-token log-probabilities of each item's completion (a 1-D tensor per item).

    The batch is left-padded so all completions end at the last position and
    only the last ``max completion length`` positions need logits
    (``logits_to_keep``), which keeps the [batch, length, vocab] tensor small.
    Position ids skip the padding, so results equal unpadded single runs.
    """
    import torch

    dev = next(model.parameters()).device
    seqs = [it.prompt_ids + it.completion_ids for it in items]
    width = max(len(s) for s in seqs)
    keep = max(len(it.completion_ids) for it in items) + 1
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long, device=dev)
    mask = torch.zeros((len(seqs), width), dtype=torch.long, device=dev)
    for b, s in enumerate(seqs):
        ids[b, width - len(s):] = torch.tensor(s, device=dev)
        mask[b, width - len(s):] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    ctx = torch.enable_grad() if grad else torch.inference_mode()
    with ctx:
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep, use_cache=False).logits
        # logits[:, j] predicts token at position width-keep+j+1
        logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        targets = ids[:, width - keep + 1:]
        picked = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    out = []
    for b, it in enumerate(items):
        n = len(it.completion_ids)
        out.append(picked[b, picked.shape[1] - n:])
    return out


def answer_logprobs(model: Any, tokenizer: Any, prompts: Sequence[list[dict]], answers: Sequence[str], *,
                    system_prompt: str | None = None, batch_tokens: int = 2048, max_batch: int = 8,
                    max_length: int | None = None) -> list[tuple[float, int]]:
    """(summed log-prob, number of tokens) of each answer given its prompt, in input order.

    Items are sorted by length and batched under a token budget so padding and
    memory stay small.
    """
    items = [tokenize_answer(tokenizer, p, a, system_prompt) for p, a in zip(prompts, answers)]
    if max_length is not None:  # cut answers where training cuts them
        items = [Tokenized(it.prompt_ids, it.completion_ids[:max(1, max_length - len(it.prompt_ids))]) for it in items]
    order = sorted(range(len(items)), key=lambda i: len(items[i].prompt_ids) + len(items[i].completion_ids))
    results: list[tuple[float, int] | None] = [None] * len(items)
    batch: list[int] = []

    def flush() -> None:
        if not batch:
            return
        lps = batch_answer_logprobs(model, [items[i] for i in batch], tokenizer.pad_token_id)
        for i, lp in zip(batch, lps):
            results[i] = (float(lp.double().sum()), int(lp.numel()))
        batch.clear()

    for i in order:
        length = len(items[i].prompt_ids) + len(items[i].completion_ids)
        if batch and ((len(batch) + 1) * length > batch_tokens or len(batch) >= max_batch):
            flush()
        batch.append(i)
    flush()
    return [r for r in results if r is not None]


@contextlib.contextmanager
def merged_for_generation(model: Any):
    """Fold a LoRA adapter into the weights while sampling, then take it out again.

    Why: with the adapter as separate matmuls, token-by-token generation of a
    small model on CPU is dominated by the extra per-layer calls (measured 2.5x
    slower for SmolLM2-135M, r=16). Merging costs one small matmul per layer;
    the float32 round trip changes weights by about one ulp.
    """
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover
        PeftModel = ()  # type: ignore[assignment]
    if isinstance(model, PeftModel):
        model.merge_adapter()
        try:
            yield model
        finally:
            model.unmerge_adapter()
    else:
        yield model


def generate_answers(model: Any, tokenizer: Any, prompts: Sequence[list[dict]], *, max_new_tokens: int,
                     temperature: float = 0.0, top_p: float = 1.0, num_return: int = 1, batch_size: int = 8,
                     system_prompt: str | None = None, seed: int | None = None) -> list[list[str]]:
    """``num_return`` answers per prompt (greedy when ``temperature`` is 0), decoded without special tokens."""
    import torch

    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    pad = tokenizer.pad_token_id
    out: list[list[str]] = []
    if seed is not None:
        torch.manual_seed(seed)
    try:
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start:start + batch_size]
            encoded = [chat_ids(tokenizer, with_system(p, system_prompt), add_generation_prompt=True) for p in chunk]
            width = max(len(e) for e in encoded)
            ids = torch.full((len(encoded), width), pad, dtype=torch.long, device=dev)
            mask = torch.zeros_like(ids)
            for b, e in enumerate(encoded):
                ids[b, width - len(e):] = torch.tensor(e, device=dev)
                mask[b, width - len(e):] = 1
            kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": pad,
                                      "eos_token_id": tokenizer.eos_token_id, "num_return_sequences": num_return}
            if temperature == 0:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            else:
                kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
            with torch.inference_mode():
                gen = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
            new = gen[:, width:]
            texts = tokenizer.batch_decode(new, skip_special_tokens=True)
            for b in range(len(encoded)):
                out.append([t.strip() for t in texts[b * num_return:(b + 1) * num_return]])
    finally:
        model.train(was_training)
    return out


class RewardModelScorer:
    """A trained reward model (``aligngoals align reward`` output) as a scorer of (prompt, answer) pairs.

    It renders the conversation with the reward model's chat template exactly as
    TRL's RewardTrainer and RLOOTrainer do, and returns the scalar head output
    (higher is better). ``load_scorer("rm:DIR")`` builds one.
    """

    def __init__(self, model: Any, tokenizer: Any, *, device: str = "cpu", batch_size: int = 8,
                 path: str | Path | None = None) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.device, self.batch_size = device, batch_size
        self.path = Path(path) if path is not None else None

    @classmethod
    def from_dir(cls, path: str | Path, *, device: str = "cpu", batch_size: int = 8) -> "RewardModelScorer":
        """Load a reward model directory (checks that it is one: a classifier with a single output)."""
        import json

        from aligngoals.align.modeling import load_sequence_classifier

        path = Path(path)
        if not (path / "config.json").is_file():
            hint = "Pass the --out directory of 'aligngoals align reward'."
            if (path / "adapter").is_dir():
                hint = f"That run was saved with --no-merge; merge it first: aligngoals align merge --out {path}"
            raise ModelError(f"Reward model directory {path} has no config.json.", hint=hint)
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
        archs = cfg.get("architectures") or []
        n_labels = len(cfg.get("id2label") or {}) or cfg.get("num_labels", 0)
        if not any(a.endswith("ForSequenceClassification") for a in archs) or n_labels != 1:
            raise ModelError(
                f"{path} is not a reward model (architectures {archs}, {n_labels} labels; expected a "
                "*ForSequenceClassification with one label).",
                hint="Train one with 'aligngoals align reward --data PAIRS --out DIR' and pass that DIR.",
            )
        model, tokenizer = load_sequence_classifier(path, device=device)
        model.eval()
        return cls(model, tokenizer, device=device, batch_size=batch_size, path=path)

    @property
    def identity(self) -> dict:
        from aligngoals.models.hf import weights_fingerprint

        if self.path is None:
            return {"kind": "reward_model", "path": None}
        return {"kind": "reward_model", "path": str(self.path.resolve()),
                "weights_fingerprint": weights_fingerprint([f for f in self.path.iterdir() if f.suffix == ".safetensors"])}

    def texts(self, prompts: Sequence[list[dict]], answers: Sequence[str]) -> list[str]:
        return [self.tokenizer.apply_chat_template(list(p) + [{"role": "assistant", "content": a}], tokenize=False)
                for p, a in zip(prompts, answers)]

    def score_texts(self, texts: Sequence[str]) -> list[float]:
        import torch

        out: list[float] = []
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(texts), self.batch_size):
                chunk = list(texts[start:start + self.batch_size])
                enc = self.tokenizer(text=chunk, return_tensors="pt", padding=True, padding_side="right",
                                     add_special_tokens=False).to(self.device)
                with torch.inference_mode():
                    out.extend(float(x) for x in self.model(**enc).logits[:, 0])
        finally:
            self.model.train(was_training)
        return out

    def score(self, prompts: Sequence[list[dict]], answers: Sequence[str]) -> list[float]:
        """Reward of each answer to its prompt (chat messages)."""
        return self.score_texts(self.texts(prompts, answers))


def load_scorer(spec: str, **kwargs: Any) -> RewardModelScorer:
    """``rm:DIR`` (or a bare directory) -> :class:`RewardModelScorer` (for ``--scorer rm:PATH``)."""
    target = spec[3:] if spec.startswith("rm:") else spec
    return RewardModelScorer.from_dir(target, **kwargs)


def mean_or_nan(xs: Sequence[float]) -> float:
    return float(sum(xs) / len(xs)) if xs else math.nan


def _as_messages(prompt: Any) -> list[dict] | None:
    if isinstance(prompt, str) and prompt.strip():
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, list) and prompt and all(isinstance(m, dict) and "role" in m and "content" in m for m in prompt):
        return [{"role": m["role"], "content": m["content"]} for m in prompt]
    return None


def add_reward_scores(report: dict, run_dir: str | Path, scorer: RewardModelScorer, *, seed: int = 0) -> list[str]:
    """Score every generated answer of an evaluation run with ``scorer`` (``aligngoals eval --scorer rm:PATH``).

    Each item of a generation task (``prompt`` + ``output`` in the run store) gets
    ``scores["reward"]``; its task gets a ``reward`` metric with a bootstrap
    interval, so ``aligngoals compare`` pairs rewards item by item. Returns the
    names of the tasks that were scored (tasks without free-text answers are left alone).
    """
    from aligngoals.evaluate.metrics import summarize
    from aligngoals.store import RunStore

    scored: list[str] = []
    with RunStore(run_dir) as store:
        for task in list(report.get("tasks", {})):
            rows = [(item_id, data) for _, item_id, data in store.items(task)
                    if isinstance(data, dict) and isinstance(data.get("output"), str) and _as_messages(data.get("prompt"))]
            if not rows:
                continue
            rewards = scorer.score([_as_messages(d["prompt"]) for _, d in rows], [d["output"] for _, d in rows])
            for (_, data), r in zip(rows, rewards):
                data.setdefault("scores", {})["reward"] = r
            store.put_items(task, rows)
            report["tasks"][task].setdefault("metrics", {})["reward"] = summarize(rewards, seed=seed)
            scored.append(task)
        report.setdefault("sections", {})["reward_model"] = {**scorer.identity, "tasks": scored}
        store.set_meta("report", report)
    return scored
