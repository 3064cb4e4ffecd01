"""The reward-model benchmark: RewardBench-style chosen-vs-rejected accuracy per subset and section.

RewardBench (Lambert et al. 2024) scores a reward model by whether it rates the
chosen answer above the rejected one, per subset, and reports section scores
(Chat, Chat Hard, Safety, Reasoning) as example-count-weighted means of their
subsets. A DPO policy is scored by its implicit reward, ``log pi(y|x) - log
pi_ref(y|x)`` summed over the answer's tokens, against a reference model.

The ``rm_pairs`` task runs like any pair task (the evaluated model's log-likelihood
of both answers after the chat-rendered prompt, kept as ``pref_acc``); then
:func:`add_rm_pairs_scores` scores every pair by one of three scorers, in this order:

* ``--scorer rm:DIR``: a reward model (``aligngoals align reward`` output);
* ``--ref-model MODEL``: the implicit reward of the evaluated model (the DPO policy)
  against the reference model, on the very requests the task scored;
* neither: the evaluated model's own log-likelihood (a language model as its own judge).

``rm_acc`` per item is 1, 0, or 0.5 on a tie (``metrics.preference_acc``). Why in
``align``: the scorers (reward models, reference models) are align's; the task
registers itself and the evaluation registry loads this module as a plug-in.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Optional

import yaml

from aligngoals.errors import ConfigError
from aligngoals.evaluate.metrics import preference_acc, summarize
from aligngoals.evaluate.tasks.pair import PairTask
from aligngoals.evaluate.tasks.registry import register_task
from aligngoals.evaluate.tasks.spec import TaskSpec
from aligngoals.models.base import LoglikelihoodRequest


@register_task("rm_pairs")
class RMPairsTask(PairTask):
    """Pairs in RewardBench's format (``rewardbench/filtered.jsonl``, or any preference-pair data)."""

    @classmethod
    def default_spec(cls) -> TaskSpec:
        return TaskSpec(
            name="rm_pairs", level="preferences", type="pair", python="rm_pairs",
            description="RewardBench-style reward-model benchmark: chosen vs rejected per subset and section; "
                        "scored by --scorer rm:DIR, by DPO implicit reward with --ref-model, else by log-likelihood.",
            data={"path": "rewardbench/filtered.jsonl", "format": "rewardbench"},
            prompt="{{ prompt }}", chat=True, chosen="{{ chosen }}", rejected="{{ rejected }}",
            metrics=["pref_acc", "logprob_margin"], breakdown=["subset"],
        )

    def process_doc(self, doc: dict) -> Optional[dict]:
        doc["subset"] = str((doc.get("meta") or {}).get("subset") or "all")
        return doc

    def score(self, doc, requests, results, ctx) -> dict:
        record = super().score(doc, requests, results, ctx)
        # A multi-turn prompt (HH-RLHF) is kept as its turns, so that a reward model sees the conversation
        # as ``align reward`` trained it, not the transcript flattened into one user turn.
        record.update(subset=doc["subset"], context=requests[0].context, rm_pairs=True,
                      messages=doc.get("prompt_messages") or None)
        return record


def load_section_map(path: Optional[str | Path] = None) -> dict[str, list[str]]:
    """``{section: [subset, ...]}`` from a YAML ``sections:`` mapping (the built-in RewardBench map by default)."""
    p = Path(path) if path else Path(str(resources.files("aligngoals.align") / "rewardbench_sections.yaml"))
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Section map {p}: cannot read it ({exc}).", hint="Write 'sections: {Name: [subset, ...]}'.") from exc
    sections = raw.get("sections") if isinstance(raw, dict) else None
    if not isinstance(sections, dict) or not sections or not all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in sections.values()):
        raise ConfigError(f"Section map {p}: expected 'sections:' mapping each section name to a list of subsets.",
                          hint="See the built-in aligngoals/align/rewardbench_sections.yaml.")
    seen: dict[str, str] = {}
    for name, subsets in sections.items():
        for s in subsets:
            if s in seen:
                raise ConfigError(f"Section map {p}: subset {s!r} is in both {seen[s]!r} and {name!r}.")
            seen[s] = str(name)
    return {str(k): list(v) for k, v in sections.items()}


def rm_summary(rows: list[dict], section_map: dict[str, list[str]], *, seed: int = 0) -> dict:
    """Per-subset accuracy with intervals, count-weighted section scores and their mean."""
    by_subset: dict[str, list[float]] = {}
    for r in rows:
        by_subset.setdefault(r["subset"], []).append(r["rm_acc"])
    subsets = {s: summarize(v, seed=seed) for s, v in sorted(by_subset.items())}
    sections: dict[str, dict] = {}
    for name, members in section_map.items():
        vals = [x for s in members for x in by_subset.get(s, [])]
        if vals:  # count-weighted: the mean over every item of the section's subsets
            sections[name] = {**summarize(vals, seed=seed), "subsets": [s for s in members if s in by_subset]}
    mapped = {s for m in section_map.values() for s in m}
    present = [v["value"] for v in sections.values()]
    return {"subsets": subsets, "sections": sections,
            "score": sum(present) / len(present) if present else None,
            "unmapped_subsets": sorted(set(by_subset) - mapped)}


def add_rm_pairs_scores(report: dict, run_dir: str | Path, *, scorer: Any = None, ref_model: Any = None,
                        section_map: Optional[str | Path] = None, seed: int = 0) -> list[str]:
    """Score the pairs of every ``rm_pairs`` task in an evaluation run; returns the tasks scored.

    Each item gets ``scores["rm_acc"]`` (and the rewards used); the task gets an
    ``rm_acc`` metric and an ``rm_pairs`` block (scorer, subsets, sections, score).
    """
    from aligngoals.store import RunStore

    smap = load_section_map(section_map)
    done: list[str] = []
    with RunStore(run_dir) as store:
        for task in list(report.get("tasks", {})):
            rows = [(i, d) for _, i, d in store.items(task) if isinstance(d, dict) and d.get("rm_pairs")]
            if not rows:
                continue
            if scorer is not None:
                msgs = [d.get("messages") or [{"role": "user", "content": d["prompt"]}] for _, d in rows]
                rewards = scorer.score([m for m in msgs for _ in (0, 1)],
                                       [a for _, d in rows for a in (d["chosen"], d["rejected"])])
                how = {"scorer": "reward_model", **scorer.identity}
            elif ref_model is not None:
                reqs = [LoglikelihoodRequest(d["context"], a) for _, d in rows for a in (d["chosen"], d["rejected"])]
                ref = ref_model.loglikelihood(reqs)
                rewards = [d["logprobs"][k] - ref[2 * j + k].logprob for j, (_, d) in enumerate(rows) for k in (0, 1)]
                how = {"scorer": "dpo_implicit_reward", "reference": ref_model.identity}
            else:
                rewards = [lp for _, d in rows for lp in d["logprobs"]]
                how = {"scorer": "policy_loglikelihood"}
            for j, (_, d) in enumerate(rows):
                rc, rr = rewards[2 * j], rewards[2 * j + 1]
                d["rewards"] = [rc, rr]
                d.setdefault("scores", {})["rm_acc"] = preference_acc(rc, rr)
                d["rm_acc"] = d["scores"]["rm_acc"]
            store.put_items(task, rows)
            entry = report["tasks"][task]
            entry.setdefault("metrics", {})["rm_acc"] = summarize([d["rm_acc"] for _, d in rows], seed=seed)
            entry["rm_pairs"] = {**how, "section_map": str(section_map or "built-in RewardBench map"),
                                 **rm_summary([d for _, d in rows], smap, seed=seed)}
            done.append(task)
        store.set_meta("report", report)
    return done
