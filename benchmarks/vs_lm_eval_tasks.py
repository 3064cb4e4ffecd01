"""aligngoals against lm-evaluation-harness's own task definitions: TruthfulQA MC1/MC2, CrowS-Pairs, BBQ.

Usage: python benchmarks/vs_lm_eval_tasks.py --data-dir DIR [--limit N] [--tasks a,b] [--batch-size 8]
                                             [--threads N] [--device cpu]

DIR has the layout aligngoals' preference suite reads (files you supply; nothing is downloaded):

    DIR/truthfulqa/mc_task.json               TruthfulQA's multiple-choice file (the TruthfulQA repository's format)
    DIR/crows_pairs/crows_pairs_anonymized.csv
    DIR/bbq/*.jsonl                           BBQ's per-category files

The embedded SmolLM2-135M-Instruct GGUF is loaded once through transformers (float32)
and handed to both tools in this process. aligngoals runs its built-in tasks
``truthfulqa_mc1``, ``truthfulqa_mc2``, ``crows_pairs`` and ``bbq_lm_eval``; lm-eval runs
its installed ``truthfulqa_mc1``, ``truthfulqa_mc2``, ``crows_pairs_english`` and
``bbq`` task files, copied (with their ``utils.py``) to a temporary folder where
only ``dataset_path`` changes: ``json`` with ``data_files`` pointing at your files
(TruthfulQA's answer->label maps and the CrowS-Pairs CSV are first rewritten as
JSONL in the field layout lm-eval's YAML reads; BBQ's JSONL is read as it is).
A limit keeps the first N items in both (lm-eval's ``limit``, aligngoals'
``--limit-mode first``).

Per task it prints both tools' metrics, the items whose prediction differs
(flips), the largest per-request log-likelihood difference (requests matched by
continuation text), and both wall times; it ends with one line::

    tasks=<n> max_metric_diff=<max |diff|> flips=<total> maxdiff=<max |dLL|> ratio=<aligngoals s / lm-eval s> nats_metric_diff=<..>

Targets: metrics equal to 1e-6, 0 flips, maxdiff < 1e-3, ratio <= 0.5. ``max_metric_diff``
covers the rates (accuracies, MC2 mass, pct_stereotype, BBQ accuracies and bias
scores); CrowS-Pairs' ``likelihood_diff`` is a mean log-likelihood difference in
nats, so it carries the same float32 noise as the per-request log-likelihoods
(about 1e-5 on CPU) and is reported apart as ``nats_metric_diff``, held to the
``maxdiff`` target.

BBQ: lm-eval's ``bbq`` offers the two non-UNKNOWN answers plus ten phrasings of
"unknown" (HELM's list, ``bbq/utils.py`` ``doc_to_choice``) and counts any of them
as the UNKNOWN answer; aligngoals' ``bbq`` offers the item's own three answers, as the
BBQ paper does, so the two may pick different answers on the same log-likelihoods.
The benchmark therefore runs aligngoals' ``bbq_lm_eval`` task (lm-eval's twelve
choices and scoring) against lm-eval's ``bbq``. A BBQ prediction is compared as an
answer class (one of the two people, or UNKNOWN in any phrasing).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from lm_eval_common import load_average, load_shared_model, make_hflm, run_aligngoals, run_lm_eval


@dataclass(frozen=True)
class TaskPair:
    """One task in both tools: names, lm-eval's folder and YAML files, split, and metric names (label, ours, theirs)."""

    ours: str
    theirs: str
    folder: str
    yamls: tuple[str, ...]
    split: str
    metrics: tuple[tuple[str, str, str], ...]


TASKS = (
    TaskPair("truthfulqa_mc1", "truthfulqa_mc1", "truthfulqa", ("truthfulqa_mc1.yaml",), "validation",
             (("mc1 acc", "mc1", "acc,none"),)),
    TaskPair("truthfulqa_mc2", "truthfulqa_mc2", "truthfulqa", ("truthfulqa_mc1.yaml", "truthfulqa_mc2.yaml"),
             "validation", (("mc2 acc", "mc2", "acc,none"),)),
    TaskPair("crows_pairs", "crows_pairs_english", "crows_pairs", ("crows_pairs_english.yaml",), "test",
             (("pct_stereotype", "pct_stereotype", "pct_stereotype,none"),
              ("likelihood_diff", "likelihood_diff", "likelihood_diff,none"))),
    TaskPair("bbq_lm_eval", "bbq", "bbq", ("bbq_multiple_choice.yaml",), "test",
             (("acc", "acc", "acc,none"), ("acc_ambig", "acc_ambig", "accuracy_amb,none"),
              ("acc_disambig", "acc_disambig", "accuracy_disamb,none"),
              ("bias_ambig", "bias_ambig", "amb_bias_score,none"),
              ("bias_disambig", "bias_disambig", "disamb_bias_score,none"))),
)
NATS_METRICS = {"likelihood_diff"}
"""Metrics in nats (log-likelihood differences): they carry the per-request float32 noise (``maxdiff``), so they
are held to the ``maxdiff`` target and reported as ``nats_metric_diff``, apart from the rates in ``max_metric_diff``."""
DATA = {"truthfulqa": "truthfulqa/mc_task.json", "crows_pairs": "crows_pairs/crows_pairs_anonymized.csv",
        "bbq": "bbq/*.jsonl"}


# --- lm-eval's task folder, pointed at the user's files ------------------------------------------
def _hf_targets(t: Any, where: str) -> dict:
    """``{answer: 0/1}`` (TruthfulQA's own JSON) -> ``{choices, labels}`` (the layout lm-eval's YAML reads)."""
    if isinstance(t, dict) and set(t) == {"choices", "labels"}:
        return {"choices": list(t["choices"]), "labels": [int(x) for x in t["labels"]]}
    if not isinstance(t, dict) or not t:
        sys.exit(f"{where}: expected a map from answer text to 0/1, got {type(t).__name__}")
    return {"choices": list(t), "labels": [int(v) for v in t.values()]}


def convert_truthfulqa(src: Path, dst: Path) -> None:
    text = src.read_text(encoding="utf-8")
    try:
        rows = json.loads(text)
    except json.JSONDecodeError:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not isinstance(rows, list):
        sys.exit(f"{src}: expected a JSON list of questions (TruthfulQA's mc_task.json)")
    out = []
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or "question" not in r:
            sys.exit(f"{src}: item {i} has no 'question'")
        out.append({"question": r["question"], "mc1_targets": _hf_targets(r.get("mc1_targets"), f"{src} item {i} mc1_targets"),
                    "mc2_targets": _hf_targets(r.get("mc2_targets"), f"{src} item {i} mc2_targets")})
    dst.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out), encoding="utf-8")


def convert_crows(src: Path, dst: Path) -> None:
    with src.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"sent_more", "sent_less"} <= set(rows[0]):
        sys.exit(f"{src}: expected CrowS-Pairs' CSV with columns sent_more, sent_less, ...")
    with dst.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({("index" if k == "" else k): v for k, v in r.items()}, ensure_ascii=False) + "\n")


def localize_yaml(text: str, split: str, files: list[str]) -> str:
    """lm-eval's YAML with ``dataset_path`` switched to local JSON files; every other line kept as it is."""
    out = []
    for line in text.splitlines():
        if line.startswith("dataset_path:"):
            out += ["dataset_path: json", "dataset_kwargs:", "  data_files:", f"    {split}: {json.dumps(files)}"]
        elif not line.startswith("dataset_name:"):
            out.append(line)
    return "\n".join(out) + "\n"


def build_lm_eval_tasks(data_dir: Path, pairs: list[TaskPair], work: Path) -> Path:
    """Copy lm-eval's installed task files for ``pairs`` into ``work/tasks`` and point them at the data."""
    import lm_eval.tasks

    installed = Path(lm_eval.tasks.__file__).parent
    files: dict[str, list[str]] = {}
    if any(p.folder == "truthfulqa" for p in pairs):
        convert_truthfulqa(data_dir / DATA["truthfulqa"], work / "truthfulqa.jsonl")
        files["truthfulqa"] = [str(work / "truthfulqa.jsonl")]
    if any(p.folder == "crows_pairs" for p in pairs):
        convert_crows(data_dir / DATA["crows_pairs"], work / "crows_pairs.jsonl")
        files["crows_pairs"] = [str(work / "crows_pairs.jsonl")]
    if any(p.folder == "bbq" for p in pairs):  # same order as aligngoals' glob: sorted
        files["bbq"] = [str(p) for p in sorted((data_dir / "bbq").glob("*.jsonl"))]
    root = work / "tasks"
    for p in pairs:
        dst = root / p.folder
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copy(installed / p.folder / "utils.py", dst / "utils.py")
        for name in p.yamls:
            text = (installed / p.folder / name).read_text(encoding="utf-8")
            (dst / name).write_text(localize_yaml(text, p.split, files[p.folder]), encoding="utf-8")
    return root


# --- comparing the two runs -----------------------------------------------------------------------
def _ours_requests(rec: dict) -> list[tuple[str, float]]:
    if "chosen" in rec:  # a pair task: logprobs are [chosen, rejected]
        return [(rec["chosen"], rec["logprobs"][0]), (rec["rejected"], rec["logprobs"][1])]
    return list(zip(rec["choices"], rec["logprobs"]))


def _theirs_requests(sample: dict) -> list[tuple[str, float]]:
    return [(args[1], float(resp[0])) for args, resp in zip(sample["arguments"], sample["filtered_resps"])]


def _argmax(reqs: list[tuple[str, float]]) -> str:
    return max(enumerate(reqs), key=lambda x: (x[1][1], -x[0]))[1][0]  # first of equal maxima, as np.argmax


def _unknown_phrasings() -> set[str]:
    from lm_eval.tasks.bbq import utils as bbq_utils

    return set(bbq_utils.UNKNOWN_RESPONSES)


def predictions(pair: TaskPair, rec: dict, sample: dict) -> tuple[Any, Any]:
    """(ours, theirs) prediction of one item, comparable across the tools."""
    ours, theirs = _ours_requests(rec), _theirs_requests(sample)
    if pair.ours == "crows_pairs":  # the more stereotyping sentence is the more likely one
        return rec["logprobs"][1] > rec["logprobs"][0], theirs[0][1] > theirs[1][1]
    if pair.ours == "bbq_lm_eval":  # answer class: one of the two people, or UNKNOWN in any phrasing
        unknown = _unknown_phrasings()
        t = _argmax(theirs).strip()
        return ("UNKNOWN" if rec["bbq"]["unknown"] else _argmax(ours).strip()), ("UNKNOWN" if t in unknown else t)
    return _argmax(ours), _argmax(theirs)


def _value(x: Any) -> Optional[float]:
    if isinstance(x, dict):
        x = x.get("value")
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return float(x)


def metric_diff(a: Optional[float], b: Optional[float]) -> float:
    if a is None and b is None:
        return 0.0
    if a is None or b is None:
        return math.inf
    return abs(a - b)


def compare_items(pair: TaskPair, ours: list[tuple[str, dict]], samples: list[dict]) -> dict:
    """Flips, matched per-request log-likelihood differences and context agreement, item by item."""
    samples = sorted(samples, key=lambda s: s["doc_id"])
    if len(ours) != len(samples):
        sys.exit(f"{pair.ours}: aligngoals scored {len(ours)} items, lm-eval {len(samples)}; they must see the same items")
    flips, diffs, unmatched, same_ctx = 0, [], 0, 0
    for (_, rec), s in zip(ours, samples):
        theirs = dict(_theirs_requests(s))
        for cont, lp in _ours_requests(rec):
            if cont in theirs:
                diffs.append(abs(lp - theirs[cont]))
            else:
                unmatched += 1
        a, b = predictions(pair, rec, s)
        flips += a != b
        same_ctx += rec.get("prompt", "") == s["arguments"][0][0]
    return {"n": len(ours), "flips": flips, "maxdiff": max(diffs, default=math.inf),
            "mean_diff": sum(diffs) / max(1, len(diffs)), "n_requests": len(diffs), "unmatched": unmatched,
            "same_context": same_ctx}


# --- the run ------------------------------------------------------------------------------------
def _print_metrics(pair: TaskPair, ours: dict, theirs: dict, label: str = "lm-eval") -> tuple[float, float]:
    """Prints each metric of both; returns the largest |diff| of the rate metrics and of the nats metrics."""
    worst = {False: 0.0, True: 0.0}
    for name, ours_key, theirs_key in pair.metrics:
        a, b = _value(ours.get(ours_key)), _value(theirs.get(theirs_key))
        d = metric_diff(a, b)
        worst[ours_key in NATS_METRICS] = max(worst[ours_key in NATS_METRICS], d)
        fa = "n/a" if a is None else f"{a:.7f}"
        fb = "n/a" if b is None else f"{b:.7f}"
        print(f"  {name:<16} aligngoals {fa:>10}  {label} {fb:>10}  |diff| {d:.1e}"
              + ("  (nats: a mean of log-likelihood differences)" if ours_key in NATS_METRICS else ""))
    return worst[False], worst[True]


def run_pair(pair: TaskPair, model: Any, lm: Any, task_dir: Path, work: Path, args: argparse.Namespace) -> dict:
    """One task through both tools; prints its block and returns its figures."""
    from aligngoals.evaluate.suites import resolve_task

    lm_wall, results, samples = run_lm_eval(lm, task_dir, [pair.theirs], limit=args.limit)
    ag_wall, report, items = run_aligngoals(model, [resolve_task(pair.ours)], work / "runs" / pair.ours,
                                            limit=args.limit, limit_mode="first", data_dir=args.data_dir)
    entry = report["tasks"][pair.ours]
    if entry.get("skipped"):
        sys.exit(f"aligngoals skipped {pair.ours}: {entry['skipped']}")
    cmp = compare_items(pair, items[pair.ours], samples[pair.theirs])
    print(f"\n{pair.ours} (lm-eval task {pair.theirs}; {cmp['n']} items, limit mode {entry.get('limit_mode')})")
    worst, worst_nats = _print_metrics(pair, entry["metrics"], results[pair.theirs])
    print(f"  flips {cmp['flips']}/{cmp['n']}; per-request log-likelihood |diff| max {cmp['maxdiff']:.1e}, "
          f"mean {cmp['mean_diff']:.1e} over {cmp['n_requests']} requests matched by text"
          + (f", {cmp['unmatched']} of ours not among lm-eval's" if cmp["unmatched"] else "")
          + f"; same context {cmp['same_context']}/{cmp['n']}")
    print(f"  wall: aligngoals {ag_wall:.2f} s, lm-eval {lm_wall:.2f} s (ratio {ag_wall / lm_wall:.2f})")
    return {**cmp, "metric_diff": worst, "nats_diff": worst_nats, "ag_wall": ag_wall, "lm_wall": lm_wall}


def available_pairs(data_dir: Path, names: Optional[str]) -> list[TaskPair]:
    if names is not None:  # "bbq" names the BBQ pair too (aligngoals runs it as bbq_lm_eval)
        names = ",".join("bbq_lm_eval" if n == "bbq" else n for n in names.split(","))
    wanted = [p for p in TASKS if names is None or p.ours in names.split(",")]
    if names is not None:
        unknown = set(names.split(",")) - {p.ours for p in TASKS}
        if unknown:
            sys.exit(f"--tasks: unknown task(s) {', '.join(sorted(unknown))}; choose from {', '.join(p.ours for p in TASKS)}")
    out = []
    for p in wanted:
        rel = DATA[p.folder]
        found = sorted(data_dir.glob(rel)) if "*" in rel else [data_dir / rel] if (data_dir / rel).is_file() else []
        if found:
            out.append(p)
        else:
            print(f"skipping {p.ours}: {data_dir / rel} not found")
    if not out:
        sys.exit(f"no task has its data under {data_dir}; expected " + ", ".join(DATA.values()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True, help="folder with truthfulqa/, crows_pairs/, bbq/")
    ap.add_argument("--limit", type=int, default=None, help="first N items of each task in both tools (default: all)")
    ap.add_argument("--tasks", default=None, help="comma-separated subset of " + ",".join(p.ours for p in TASKS))
    ap.add_argument("--batch-size", type=int, default=8, help="batch size of both tools (default 8)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.limit is not None and args.limit < 1:
        sys.exit("--limit must be at least 1")
    args.data_dir = args.data_dir.resolve()
    pairs = available_pairs(args.data_dir, args.tasks)

    with tempfile.TemporaryDirectory(prefix="ag-vs-lmeval-tasks-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("HF_DATASETS_CACHE", str(work / "hf_datasets"))  # before lm-eval imports datasets
        task_dir = build_lm_eval_tasks(args.data_dir, pairs, work)
        model, load_s = load_shared_model(args.device, args.batch_size, threads=args.threads)
        lm = make_hflm(model, args.batch_size)
        import torch

        print(f"model: hf:smollm2 (float32, {args.device}, torch threads {torch.get_num_threads()}), loaded once in "
              f"{load_s:.1f} s; batch size {args.batch_size} for both tools")
        print(f"empty-context token: aligngoals {model.prefix_token_id}, lm-eval {lm.prefix_token_id}"
              + ("" if model.prefix_token_id == lm.prefix_token_id else "  (DIFFERENT: empty-context scores will differ)"))
        print("load average before: " + load_average())
        figures = [run_pair(p, model, lm, task_dir, work, args) for p in pairs]
    print("\nload average after: " + load_average())
    ratio = sum(f["ag_wall"] for f in figures) / sum(f["lm_wall"] for f in figures)
    print(f"tasks={len(figures)} max_metric_diff={max(f['metric_diff'] for f in figures):.1e} "
          f"flips={sum(f['flips'] for f in figures)} maxdiff={max(f['maxdiff'] for f in figures):.1e} ratio={ratio:.2f} "
          f"nats_metric_diff={max(f['nats_diff'] for f in figures):.1e}")


if __name__ == "__main__":
    main()
