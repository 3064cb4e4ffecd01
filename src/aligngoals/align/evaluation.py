"""The before/after measurement every alignment run closes with.

Why inside ``align``: a run should prove what it did on data it did not train
on. Each phase (``before``, ``after``, and ``in_context`` when a goal is given)
is written as an ordinary aligngoals run directory (``report.json`` in the
documented schema plus a run store whose ``items`` table keeps per-item
scores), so ``aligngoals compare OUT/eval/before OUT/eval/after`` gives paired
intervals of the change, exactly as for two ``eval`` runs.

Measurements (held-out examples, the last ``--eval-n`` of the data file):

* ``heldout_preference`` (policies): ``acc`` = 1 when the model gives the
  chosen answer a higher summed log-probability than the rejected one, 0.5 on
  an exact tie (the one tie rule of every preference accuracy in aligngoals,
  :func:`aligngoals.evaluate.metrics.preference_acc`), ``acc_norm`` the same per
  token. Answers are tokenised exactly as in DPO training.
* ``heldout_nll`` (sft): mean negative log-likelihood per token of the reference answer.
* ``heldout_rm_accuracy`` (reward models): ``acc`` = 1 when the reward of the
  chosen answer is higher (0.5 on a tie); ``margin`` = reward difference.
* ``heldout_reward`` (sampling methods, with a reward model): mean reward of the
  model's greedy answer.
* ``heldout_implicit_reward`` (dpo, phase ``implicit``): DPO's implicit reward accuracy,
  whether ``log pi - log pi_ref`` is higher for the chosen answer (TRL's ``rewards/accuracies``).
"""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path
from typing import Any, Sequence

from aligngoals import __version__
from aligngoals.align.data import Example
from aligngoals.evaluate.metrics import preference_acc, preference_acc_per_token, summarize
from aligngoals.io import atomic_write_json


def preference_items(model: Any, tokenizer: Any, examples: Sequence[Example], *, system_prompt: str | None = None,
                     batch_tokens: int = 2048, max_batch: int = 8, max_length: int | None = None) -> list[dict]:
    from aligngoals.align.scoring import answer_logprobs

    pairs = [(ex, c, r) for ex in examples for c, r in ex.pairs()[:1]]
    if not pairs:
        return []
    prompts = [ex.prompt for ex, _, _ in pairs for _ in (0, 1)]
    answers = [a for _, c, r in pairs for a in (c, r)]
    lps = answer_logprobs(model, tokenizer, prompts, answers, system_prompt=system_prompt,
                          batch_tokens=batch_tokens, max_batch=max_batch, max_length=max_length)
    out = []
    for j, (ex, _, _) in enumerate(pairs):
        (lc, nc), (lr, nr) = lps[2 * j], lps[2 * j + 1]
        out.append({"id": ex.id, "logprobs": [lc, lr], "n_tokens": [nc, nr],
                    "scores": {"acc": preference_acc(lc, lr),
                               "acc_norm": preference_acc_per_token(lc, nc, lr, nr)}})
    return out


def nll_items(model: Any, tokenizer: Any, examples: Sequence[Example], *, system_prompt: str | None = None,
              batch_tokens: int = 2048, max_batch: int = 8, max_length: int | None = None) -> list[dict]:
    from aligngoals.align.scoring import answer_logprobs

    lps = answer_logprobs(model, tokenizer, [ex.prompt for ex in examples], [ex.best() for ex in examples],
                          system_prompt=system_prompt, batch_tokens=batch_tokens, max_batch=max_batch,
                          max_length=max_length)
    return [{"id": ex.id, "logprob": lp, "n_tokens": n, "scores": {"nll_per_token": -lp / max(n, 1)}}
            for ex, (lp, n) in zip(examples, lps)]


def rm_accuracy_items(scorer: Any, examples: Sequence[Example]) -> list[dict]:
    pairs = [(ex, c, r) for ex in examples for c, r in ex.pairs()[:1]]
    if not pairs:
        return []
    rewards = scorer.score([ex.prompt for ex, _, _ in pairs for _ in (0, 1)], [a for _, c, r in pairs for a in (c, r)])
    out = []
    for j, (ex, _, _) in enumerate(pairs):
        rc, rr = rewards[2 * j], rewards[2 * j + 1]
        out.append({"id": ex.id, "rewards": [rc, rr], "scores": {"acc": preference_acc(rc, rr), "margin": rc - rr}})
    return out


def reward_items(model: Any, tokenizer: Any, scorer: Any, examples: Sequence[Example], *, max_new_tokens: int,
                 system_prompt: str | None = None, batch_size: int = 8) -> list[dict]:
    from aligngoals.align.scoring import generate_answers

    prompts = [ex.prompt for ex in examples]
    answers = [a[0] for a in generate_answers(model, tokenizer, prompts, max_new_tokens=max_new_tokens,
                                              temperature=0.0, batch_size=batch_size, system_prompt=system_prompt)]
    rewards = scorer.score(prompts, answers)  # the reward model judges the answer to the plain prompt
    return [{"id": ex.id, "output": a, "scores": {"reward": r}} for ex, a, r in zip(examples, answers, rewards)]


TASK_LEVEL = {"heldout_preference": "preferences", "heldout_nll": "instructions",
              "heldout_rm_accuracy": "preferences", "heldout_reward": "preferences",
              "heldout_implicit_reward": "preferences"}


def write_eval_run(run_dir: Path, tasks: dict[str, list[dict]], *, model_info: dict, settings: dict,
                   command: str | None, started: float, seed: int = 0) -> dict:
    """Write ``report.json`` (+ html) and the per-item store of one measurement phase."""
    from aligngoals.evaluate.run import package_versions, run_block
    from aligngoals.evaluate.samples import write_run_report
    from aligngoals.report.schema import SCHEMA_VERSION, validate_report
    from aligngoals.store import RunStore

    run_dir.mkdir(parents=True, exist_ok=True)
    report_tasks = {}
    with RunStore(run_dir) as store:
        for name, items in tasks.items():
            if not items:
                continue
            store.put_items(name, [(str(it["id"]), it) for it in items])
            metric_names = list(items[0]["scores"])
            report_tasks[name] = {
                "level": TASK_LEVEL.get(name, "preferences"),
                "type": "alignment_heldout",
                "n": len(items),
                "metrics": {m: summarize([it["scores"][m] for it in items], seed=seed) for m in metric_names},
            }
        report = {
            "schema_version": SCHEMA_VERSION,
            "kind": "alignment_eval",
            "aligngoals_version": __version__,
            "run": run_block(run_dir, command, _dt.datetime.fromtimestamp(started, _dt.timezone.utc),
                             time.time() - started, requests_cached=0,
                             requests_computed=sum(len(v) for v in tasks.values())),
            "model": model_info,
            "settings": {"seed": seed, **settings},
            "packages": package_versions(),
            "tasks": report_tasks,
            "sections": {},
        }
        store.set_meta("report", report)
    validate_report(report, source=str(run_dir / "report.json"))
    try:
        write_run_report(report, run_dir)
    except Exception:  # the HTML is a convenience; report.json below is the record
        pass
    atomic_write_json(run_dir / "report.json", report)
    return report


def metric_values(report: dict | None) -> dict[str, float]:
    """``{"task.metric": value}`` of a report, for summaries and the benchmark line."""
    if not report:
        return {}
    return {f"{t}.{m}": v["value"] for t, task in report.get("tasks", {}).items() for m, v in task["metrics"].items()}


def stored_items(run_dir: Path, task: str) -> dict[str, dict]:
    """``{item id: item}`` of one task in a measurement phase's run store (empty when absent)."""
    from aligngoals.store.run_store import STORE_FILENAME, RunStore

    if not (Path(run_dir) / STORE_FILENAME).is_file():
        return {}
    with RunStore(run_dir, readonly=True) as store:
        return {item_id: data for _, item_id, data in store.items(task) if isinstance(data, dict)}


def implicit_reward_items(before: dict[str, dict], after: dict[str, dict], beta: float) -> list[dict]:
    """DPO's implicit reward on held-out pairs: ``beta * (log pi - log pi_ref)``, chosen vs rejected.

    Why next to the raw preference accuracy: DPO optimizes the *difference* from
    the reference model, so it can rank held-out pairs correctly relative to the
    reference (what TRL's eval reports as ``rewards/accuracies``) long before the
    raw log-probabilities cross. ``acc`` = 1 when the chosen answer's implicit
    reward is higher (a tie, as before any training, counts 0.5); ``margin`` is
    the reward difference. ``before``/``after`` are the ``heldout_preference``
    items of the reference and the trained policy (``logprobs`` = [chosen, rejected]).
    """
    out = []
    for item_id, b in before.items():
        a = after.get(item_id)
        if not a or "logprobs" not in a or "logprobs" not in b:
            continue
        rc = beta * (a["logprobs"][0] - b["logprobs"][0])
        rr = beta * (a["logprobs"][1] - b["logprobs"][1])
        acc = 0.5 if abs(rc - rr) < 1e-9 else float(rc > rr)
        out.append({"id": item_id, "rewards": [rc, rr], "scores": {"acc": acc, "margin": rc - rr}})
    return out
