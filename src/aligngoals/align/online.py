"""PPO, RAFT and RRHF on one base of our own.

Why our own base: TRL 1.16 has none of the three (PPO was removed in
huggingface/trl PR #7020; RAFT and RRHF were never in TRL), and they share one
loop: take a batch of prompts, sample answers from the current policy, score
them with a reward model, update the policy. :class:`OnlineTrainer` owns that
loop and everything around it, so each algorithm only writes its update rule:

* prompt batches over epochs in a seeded order (resumable: step ``s`` always
  sees the same prompts and the same sampling seed);
* sampling from the policy and scoring with the reward model (:mod:`.scoring`,
  tokenised exactly like TRL's trainers);
* LoRA through PEFT, AdamW with linear warm-up/decay, gradient clipping;
* ``train_log.jsonl``, the progress bar, ``--max-minutes``;
* checkpoints (trainable weights in safetensors, optimizer/scheduler state,
  ``state.json``) every ``save_every`` steps and ``--resume``;
* multi-GPU through ``accelerate`` (launch with ``accelerate launch``): each
  process takes its share of the prompts, gradients are averaged by DDP.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import random
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

from aligngoals.align.data import Example
from aligngoals.align.run_state import AlignRun, TrainOutcome
from aligngoals.align.scoring import Tokenized, batch_answer_logprobs, tokenize_answer
from aligngoals.errors import ConfigError
from aligngoals.io import atomic_write_json


class OnlineTrainer:
    """The shared loop; subclasses implement :meth:`update` (one optimizer step's work)."""

    name = "online"

    def __init__(self, run: AlignRun, model: Any, tokenizer: Any) -> None:
        import torch
        from accelerate import Accelerator
        from transformers import get_linear_schedule_with_warmup

        cfg = run.cfg
        if cfg.grad_accum != 1:
            raise ConfigError(f"--grad-accum is not used by {cfg.method}: each step updates on its own samples.",
                              hint="Leave --grad-accum at 1 and set --batch-size (prompts per step) instead.")
        self.run, self.cfg, self.tokenizer = run, cfg, tokenizer
        self.accelerator = Accelerator(cpu=not run.device.startswith("cuda"))
        self.ref_model = None
        if cfg.lora:
            from peft import get_peft_model

            model = get_peft_model(model, run.lora_config())
        elif self.needs_reference():
            self.ref_model = copy.deepcopy(model).eval()
            for p in self.ref_model.parameters():
                p.requires_grad_(False)
        self.extra = self.build_extra_modules(model)
        params = [p for p in model.parameters() if p.requires_grad]
        if self.extra is not None:
            params += list(self.extra.parameters())
        self.optimizer = torch.optim.AdamW(params, lr=cfg.effective_lr, weight_decay=cfg.weight_decay)
        n_prompts = len(run.train)
        per_step = cfg.batch_size * self.accelerator.num_processes
        self.total_steps = cfg.steps or max(1, math.ceil(n_prompts * cfg.epochs / per_step))
        n_opt = self.total_steps * self.optimizer_steps_per_update()
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, int(cfg.warmup_ratio * n_opt), n_opt)
        if self.extra is not None:
            model, self.extra, self.optimizer = self.accelerator.prepare(model, self.extra, self.optimizer)
        else:
            model, self.optimizer = self.accelerator.prepare(model, self.optimizer)
        self.model = model
        if self.ref_model is not None:
            self.ref_model.to(self.accelerator.device)
        self.pad_id = tokenizer.pad_token_id

    # --- hooks ---------------------------------------------------------------------------------
    def needs_reference(self) -> bool:
        """Whether the method needs the frozen starting model (PPO's KL penalty)."""
        return False

    def build_extra_modules(self, model: Any) -> Any:
        """Extra trainable modules (PPO's value head), saved in checkpoints with the policy."""
        return None

    def optimizer_steps_per_update(self) -> int:
        """Optimizer steps one :meth:`update` takes (the LR schedule spans all of them)."""
        return 1

    def update(self, batch: list[Example], step: int) -> dict:
        raise NotImplementedError

    # --- shared pieces -----------------------------------------------------------------------------
    @property
    def policy(self) -> Any:
        return self.accelerator.unwrap_model(self.model)

    def batch_for_step(self, step: int) -> list[Example]:
        """The prompts of ``step``: a seeded permutation per epoch, this process's share of it."""
        train = self.run.train
        per_step = self.cfg.batch_size * self.accelerator.num_processes
        start = step * per_step
        epoch, offset = divmod(start, len(train))
        out: list[Example] = []
        while len(out) < per_step:
            order = list(range(len(train)))
            random.Random(self.cfg.seed * 7919 + epoch).shuffle(order)
            take = order[offset:offset + per_step - len(out)]
            out.extend(train[i] for i in take)
            epoch, offset = epoch + 1, 0
        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        return out[rank::world]

    def sample(self, batch: Sequence[Example], k: int, *, system_prompt: str | None = None) -> list[list[str]]:
        from aligngoals.align.scoring import generate_answers, merged_for_generation

        with merged_for_generation(self.policy) as policy:
            return generate_answers(policy, self.tokenizer, [ex.prompt for ex in batch],
                                    max_new_tokens=self.cfg.max_new_tokens, temperature=self.cfg.temperature,
                                    top_p=self.cfg.top_p, num_return=k, batch_size=max(1, self.cfg.eval_batch_size),
                                    system_prompt=system_prompt)

    def rewards(self, batch: Sequence[Example], answers: Sequence[Sequence[str]]) -> list[list[float]]:
        """Reward-model scores of the answers to the plain prompts (never with the goal preamble)."""
        flat_p = [ex.prompt for ex, a in zip(batch, answers) for _ in a]
        flat_a = [x for a in answers for x in a]
        flat = self.run.scorer().score(flat_p, flat_a) if flat_a else []
        out, pos = [], 0
        for a in answers:
            out.append(flat[pos:pos + len(a)])
            pos += len(a)
        return out

    @contextlib.contextmanager
    def reference(self):
        """The frozen starting policy: the adapter switched off (LoRA) or the frozen copy."""
        if self.ref_model is not None:
            yield self.ref_model
            return
        policy = self.policy
        with policy.disable_adapter():
            yield policy

    def tokenize(self, prompt: list[dict], answer: str) -> Tokenized:
        t = tokenize_answer(self.tokenizer, prompt, answer)
        room = self.cfg.max_length - len(t.prompt_ids)
        return Tokenized(t.prompt_ids, t.completion_ids[:max(1, room)])

    def logprobs(self, items: Sequence[Tokenized], *, grad: bool, model: Any = None) -> list[Any]:
        return batch_answer_logprobs(model if model is not None else self.model, items, self.pad_id, grad=grad)

    def optimizer_step(self, loss: Any) -> float:
        self.accelerator.backward(loss)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        norm = self.accelerator.clip_grad_norm_(params, self.cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    # --- checkpoints -----------------------------------------------------------------------------
    def _trainable_state(self) -> dict:
        state = {f"policy.{n}": p.detach().cpu().contiguous()
                 for n, p in self.policy.named_parameters() if p.requires_grad}
        if self.extra is not None:
            state.update({f"extra.{n}": p.detach().cpu().contiguous()
                          for n, p in self.accelerator.unwrap_model(self.extra).named_parameters()})
        return state

    def save_checkpoint(self, step: int) -> None:
        import torch
        from safetensors.torch import save_file

        if not self.accelerator.is_main_process:
            return
        ckpt_dir = self.run.ckpt_dir
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        final = ckpt_dir / f"checkpoint-{step}"
        tmp = ckpt_dir / f".checkpoint-{step}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_file(self._trainable_state(), str(tmp / "trainable.safetensors"))
        torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(self.scheduler.state_dict(), tmp / "scheduler.pt")
        atomic_write_json(tmp / "state.json", {"step": step, "method": self.cfg.method, "total_steps": self.total_steps})
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        kept = sorted((int(p.name.split("-")[1]), p) for p in ckpt_dir.glob("checkpoint-*") if p.is_dir())
        for _, old in kept[:-self.cfg.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)

    def load_checkpoint(self, path: Path) -> int:
        import torch
        from safetensors.torch import load_file

        state = load_file(str(path / "trainable.safetensors"))
        params = dict(self.policy.named_parameters())
        extra = dict(self.accelerator.unwrap_model(self.extra).named_parameters()) if self.extra is not None else {}
        with torch.no_grad():
            for key, value in state.items():
                where, name = key.split(".", 1)
                target = params[name] if where == "policy" else extra[name]
                target.copy_(value.to(target.device))
        self.optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
        self.scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
        # The optimizer state holds the learning rate the *old* schedule set last; when --resume
        # changes --steps the schedule's length changes, so set the rate of this step anew.
        for group, base, fn in zip(self.optimizer.param_groups, self.scheduler.base_lrs, self.scheduler.lr_lambdas):
            group["lr"] = base * fn(self.scheduler.last_epoch)
        return int(json.loads((path / "state.json").read_text(encoding="utf-8"))["step"])

    # --- the loop ----------------------------------------------------------------------------------
    def train(self) -> TrainOutcome:
        import torch

        run, cfg = self.run, self.cfg
        start = 0
        ckpt = run.last_checkpoint() if cfg.resume else None
        if ckpt is not None:
            start = self.load_checkpoint(ckpt)
            run.log.truncate_after(start)
            run.progress.note(f"Resuming from {ckpt} (step {start})")
        run.progress.start(self.name.upper(), self.total_steps)
        self.model.train()
        t0 = time.time()
        step = start
        stopped = False
        while step < self.total_steps:
            torch.manual_seed(cfg.seed * 1_000_003 + step)  # resumed runs sample what an uninterrupted run samples
            metrics = self.update(self.batch_for_step(step), step)
            step += 1
            metrics["learning_rate"] = self.scheduler.get_last_lr()[0]
            if step % cfg.logging_steps == 0 or step == self.total_steps:
                run.log.step(step, metrics)
            run.progress.update(step, metrics)
            if step % cfg.save_every == 0 or step == self.total_steps:
                self.save_checkpoint(step)  # the last one too, so --resume --steps MORE can continue
            if run.deadline.passed() and step < self.total_steps:
                stopped = True
                self.save_checkpoint(step)
                break
        train_s = time.time() - t0
        run.progress.finish()
        done_here = step - start
        run.log.event("train_end", step=step, train_runtime=round(train_s, 3))
        return TrainOutcome(self.policy, step, train_s, stopped_early=stopped,
                            extra={"steps_this_session": done_here,
                                   "sec_per_step_this_session": round(train_s / done_here, 4) if done_here else None})


def _mean(xs: Sequence[float]) -> float:
    return float(sum(xs) / len(xs)) if xs else float("nan")


def rrhf_terms(seq_logprobs: Sequence[Any], scores: Sequence[float]) -> tuple[Any, Any, int, int]:
    """RRHF's two terms for one prompt's candidates: (rank loss, SFT loss, pairs ranked right, pairs).

    ``p_i`` is the length-normalised log-probability (mean over the answer's
    tokens) of candidate ``i``; rank loss = sum over pairs with score_i < score_j
    of max(0, p_i - p_j); SFT loss = mean token NLL of the best-scored candidate
    (token mean rather than the paper's sum, so long answers do not dominate).
    Ties contribute nothing.
    """
    import torch

    p = torch.stack([x.mean() for x in seq_logprobs])
    s = torch.tensor([float(x) for x in scores], dtype=p.dtype, device=p.device)
    worse_better = (s.unsqueeze(1) < s.unsqueeze(0)).to(p.dtype)  # [i, j] = 1 when answer i is worse than j
    diff = p.unsqueeze(1) - p.unsqueeze(0)  # p_i - p_j
    rank = (torch.relu(diff) * worse_better).sum()
    correct = int(((diff < 0).to(p.dtype) * worse_better).sum())
    sft = -seq_logprobs[int(torch.argmax(s))].mean()
    return rank, sft, correct, int(worse_better.sum())


def kl_penalized_rewards(logprobs: Any, ref_logprobs: Any, score: float, beta: float) -> tuple[Any, Any]:
    """Per-token PPO rewards: ``-beta * (log pi - log pi_ref)`` on every token, plus the score on the last.

    Returns (rewards, per-token KL estimate).
    """
    kl = logprobs - ref_logprobs
    r = -beta * kl
    r[-1] = r[-1] + score
    return r, kl


def gae(rewards: Any, values: Any, lam: float, gamma: float = 1.0) -> tuple[Any, Any]:
    """Generalised advantage estimation over one answer; (advantages, returns = advantages + values).

    ``values[t]`` is the value of the state that emits token ``t``; after the
    last token the episode ends (next value 0).
    """
    import torch

    adv = torch.zeros_like(rewards)
    last = torch.zeros((), dtype=rewards.dtype, device=rewards.device)
    n = rewards.shape[0]
    for t in reversed(range(n)):
        nxt = values[t + 1] if t + 1 < n else torch.zeros((), dtype=values.dtype, device=values.device)
        delta = rewards[t] + gamma * nxt - values[t]
        last = delta + gamma * lam * last
        adv[t] = last
    return adv, adv + values


def whiten(x: Any, eps: float = 1e-8) -> Any:
    """Zero mean, unit (sample) standard deviation; a single value is only centred."""
    if x.numel() < 2:
        return x - x.mean()
    return (x - x.mean()) / (x.std() + eps)


def ppo_policy_loss(logprobs: Any, old_logprobs: Any, advantages: Any, clip: float) -> tuple[Any, float]:
    """PPO's clipped surrogate: mean of max(-A r, -A clip(r, 1-eps, 1+eps)), r = exp(lp - lp_old); and the clip fraction."""
    import torch

    ratio = torch.exp(logprobs - old_logprobs)
    loss = torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - clip, 1 + clip)).mean()
    clipfrac = float(((ratio.detach() - 1).abs() > clip).float().mean())
    return loss, clipfrac


def ppo_value_loss(values: Any, old_values: Any, returns: Any, clip: float) -> Any:
    """Clipped value loss: 0.5 * mean(max((v - R)^2, (v_old + clip(v - v_old, -eps, eps) - R)^2))."""
    import torch

    v_clip = old_values + (values - old_values).clamp(-clip, clip)
    return 0.5 * torch.max((values - returns) ** 2, (v_clip - returns) ** 2).mean()


class RAFTTrainer(OnlineTrainer):
    """RAFT (Dong et al. 2023): sample ``k`` answers per prompt, keep the best by reward, fine-tune on it.

    With ``--goal`` the answers are sampled with the goal's principles in the
    system prompt and the policy is trained on the plain prompt, so the
    principles are engraved into the weights (SELF-ALIGN's principle engraving).
    """

    name = "raft"

    def optimizer_steps_per_update(self) -> int:
        return self.cfg.raft_inner_steps

    def update(self, batch: list[Example], step: int) -> dict:
        import torch

        k = self.cfg.effective_k
        answers = self.sample(batch, k, system_prompt=self.run.goal_prompt)
        rewards = self.rewards(batch, answers)
        best = [a[max(range(len(a)), key=lambda j: r[j])] for a, r in zip(answers, rewards)]
        items = [self.tokenize(ex.prompt, b) for ex, b in zip(batch, best)]
        losses = []
        for _ in range(self.cfg.raft_inner_steps):
            lps = self.logprobs(items, grad=True)
            loss = -torch.cat(lps).mean()  # token-level mean NLL of the selected answers
            grad_norm = self.optimizer_step(loss)
            losses.append(float(loss.detach()))
        return {"loss": losses[-1], "grad_norm": grad_norm, "reward_mean": _mean([x for r in rewards for x in r]),
                "reward_best_mean": _mean([max(r) for r in rewards]),
                "answer_tokens": _mean([len(i.completion_ids) for i in items])}


class RRHFTrainer(OnlineTrainer):
    """RRHF (Yuan et al. 2023): rank loss on length-normalised log-probabilities plus SFT on the best.

    Candidates per prompt are the data's own answers (with their scores, e.g.
    chosen 1 / rejected 0, or a ranking) and ``k`` answers sampled from the
    policy; with a reward model every candidate is scored by it, without one
    (``k`` = 0) the data's scores are used, which makes RRHF a fully offline method.
    """

    name = "rrhf"

    def update(self, batch: list[Example], step: int) -> dict:
        import torch

        cfg, k = self.cfg, self.cfg.effective_k
        cands: list[list[str]] = []
        scores: list[list[float]] = []
        sampled = self.sample(batch, k, system_prompt=self.run.goal_prompt) if k > 0 else [[] for _ in batch]
        for ex, s in zip(batch, sampled):
            data = list(ex.responses) if (cfg.rrhf_use_data_responses and ex.scores) else []
            cands.append(data + list(s))
        if cfg.reward_model:
            scores = self.rewards(batch, cands)
        else:
            scores = [list(ex.scores or []) for ex in batch]
        items = [self.tokenize(ex.prompt, c) for ex, cs in zip(batch, cands) for c in cs]
        lps = self.logprobs(items, grad=True)
        rank_losses, sft_losses, correct, total = [], [], 0, 0
        pos = 0
        for cs, sc in zip(cands, scores):
            n = len(cs)
            seq = lps[pos:pos + n]
            pos += n
            if n == 0:
                continue
            r_loss, s_loss, ok, pairs = rrhf_terms(seq, sc)
            rank_losses.append(r_loss)
            sft_losses.append(s_loss)
            correct += ok
            total += pairs
        if not rank_losses:
            raise ConfigError("rrhf: a batch had no candidate answers to rank.",
                              hint="Pass --reward-model DIR with --k N, or data with scored answers.")
        rank = torch.stack(rank_losses).mean()
        sft = torch.stack(sft_losses).mean()
        loss = rank + cfg.rrhf_sft_weight * sft
        grad_norm = self.optimizer_step(loss)
        out = {"loss": float(loss.detach()), "rank_loss": float(rank.detach()), "sft_loss": float(sft.detach()), "grad_norm": grad_norm,
               "rank_acc": correct / total if total else None, "candidates": _mean([len(c) for c in cands])}
        if k > 0 and cfg.reward_model:
            n_data = [len(c) - len(s) for c, s in zip(cands, sampled)]
            out["reward_mean"] = _mean([x for sc, nd in zip(scores, n_data) for x in sc[nd:]])
        return out


class PPOTrainer(OnlineTrainer):
    """A compact PPO (RLHF with a reward model and a per-token KL penalty to the starting model).

    Per step: sample ``k`` answers per prompt; per-token reward
    ``-beta * (log pi - log pi_ref)`` plus the reward-model score on the last
    token; GAE (gamma 1, ``gae_lambda``) with a value head on the policy's last
    hidden state; ``ppo_epochs`` passes of the clipped policy loss plus
    ``vf_coef`` times the clipped value loss. The value head shares the policy's
    backbone (as TRL's former PPOv1 did) so no second network is trained.
    """

    name = "ppo"

    def needs_reference(self) -> bool:
        return True

    def optimizer_steps_per_update(self) -> int:
        return self.cfg.ppo_epochs

    def build_extra_modules(self, model: Any) -> Any:
        import torch

        head = torch.nn.Linear(model.config.hidden_size, 1)
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
        return head.to(next(model.parameters()).device)

    def _forward(self, items: Sequence[Tokenized], *, grad: bool) -> tuple[list[Any], list[Any]]:
        """Per-token log-probs and values of the completions (values at the states that emit each token)."""
        import torch

        dev = self.accelerator.device
        seqs = [it.prompt_ids + it.completion_ids for it in items]
        width = max(len(s) for s in seqs)
        keep = max(len(it.completion_ids) for it in items) + 1
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long, device=dev)
        mask = torch.zeros_like(ids)
        for b, s in enumerate(seqs):
            ids[b, width - len(s):] = torch.tensor(s, device=dev)
            mask[b, width - len(s):] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        ctx = torch.enable_grad() if grad else torch.no_grad()
        with ctx:
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep,
                             output_hidden_states=True, use_cache=False)
            logp = torch.log_softmax(out.logits[:, :-1].float(), dim=-1)
            picked = logp.gather(-1, ids[:, width - keep + 1:].unsqueeze(-1)).squeeze(-1)
            hidden = out.hidden_states[-1][:, width - keep:-1]
            values = self.extra(hidden.float()).squeeze(-1)
        lps, vals = [], []
        for b, it in enumerate(items):
            n = len(it.completion_ids)
            lps.append(picked[b, picked.shape[1] - n:])
            vals.append(values[b, values.shape[1] - n:])
        return lps, vals

    def _rollout(self, batch: list[Example]) -> tuple[list[Example], list[Tokenized], list[float]]:
        """Sample with the policy and keep the sampled token ids (on-policy: no re-tokenisation)."""
        import torch

        from aligngoals.align.data import chat_ids

        policy = self.policy
        policy.eval()
        k, cfg = self.cfg.effective_k, self.cfg
        prompts = [chat_ids(self.tokenizer, ex.prompt, add_generation_prompt=True) for ex in batch]
        width = max(len(p) for p in prompts)
        dev = self.accelerator.device
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long, device=dev)
        mask = torch.zeros_like(ids)
        for b, p in enumerate(prompts):
            ids[b, width - len(p):] = torch.tensor(p, device=dev)
            mask[b, width - len(p):] = 1
        from aligngoals.align.scoring import merged_for_generation

        with merged_for_generation(policy), torch.inference_mode():
            gen = policy.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=cfg.temperature,
                                  top_p=cfg.top_p, top_k=0, max_new_tokens=cfg.max_new_tokens,
                                  num_return_sequences=k, pad_token_id=self.pad_id,
                                  eos_token_id=self.tokenizer.eos_token_id)
        policy.train()
        eos = self.tokenizer.eos_token_id
        exs, items, texts = [], [], []
        for row in range(gen.shape[0]):
            ex = batch[row // k]
            comp = gen[row, width:].tolist()
            if eos in comp:
                comp = comp[:comp.index(eos) + 1]
            if not comp:
                comp = [eos]
            exs.append(ex)
            items.append(Tokenized(prompts[row // k], comp))
            texts.append(self.tokenizer.decode(comp, skip_special_tokens=True).strip())
        scores = self.run.scorer().score([e.prompt for e in exs], texts)
        return exs, items, scores

    def update(self, batch: list[Example], step: int) -> dict:
        import torch

        cfg = self.cfg
        beta = cfg.effective_beta
        exs, items, scores = self._rollout(batch)
        old_lp, old_v = self._forward(items, grad=False)
        with self.reference() as ref:
            ref_lp = batch_answer_logprobs(ref, items, self.pad_id, grad=False)
        advantages, returns, kls = [], [], []
        for lp, rlp, v, score in zip(old_lp, ref_lp, old_v, scores):
            r, kl = kl_penalized_rewards(lp.detach(), rlp.detach(), score, beta)
            kls.append(float(kl.sum()))
            adv, ret = gae(r, v.detach(), cfg.gae_lambda)
            advantages.append(adv)
            returns.append(ret)
        adv_flat = whiten(torch.cat(advantages)).detach()
        old_flat, old_v_flat = torch.cat(old_lp).detach(), torch.cat(old_v).detach()
        ret_flat = torch.cat(returns).detach()
        stats = {}
        for _ in range(cfg.ppo_epochs):
            new_lp, new_v = self._forward(items, grad=True)
            nl, nv = torch.cat(new_lp), torch.cat(new_v)
            pg, clipfrac = ppo_policy_loss(nl, old_flat, adv_flat, cfg.clip_range)
            vf = ppo_value_loss(nv, old_v_flat, ret_flat, cfg.clip_range)
            loss = pg + cfg.vf_coef * vf
            grad_norm = self.optimizer_step(loss)
            stats = {"loss": float(loss.detach()), "pg_loss": float(pg.detach()), "vf_loss": float(vf.detach()),
                     "grad_norm": grad_norm, "clipfrac": clipfrac}
        return {**stats, "reward_mean": _mean(scores), "kl": _mean(kls),
                "answer_tokens": _mean([len(i.completion_ids) for i in items])}


def train_ppo(run: AlignRun, model: Any, tokenizer: Any) -> TrainOutcome:
    return PPOTrainer(run, model, tokenizer).train()


def train_raft(run: AlignRun, model: Any, tokenizer: Any) -> TrainOutcome:
    return RAFTTrainer(run, model, tokenizer).train()


def train_rrhf(run: AlignRun, model: Any, tokenizer: Any) -> TrainOutcome:
    if run.cfg.effective_k == 0 and not any(ex.scores and len(ex.responses) > 1 for ex in run.train):
        raise ConfigError(
            "rrhf without sampled answers ranks the data's own answers, but the data has no scored alternatives.",
            hint="Use pairs/rankings/ratings data, or pass --reward-model DIR and --k N to sample candidates.",
        )
    return RRHFTrainer(run, model, tokenizer).train()
