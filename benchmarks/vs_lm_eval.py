"""aligngoals against lm-evaluation-harness: same model, same items, same process.

Usage: python benchmarks/vs_lm_eval.py [--n 200] [--split helpful] [--min-turns 3] [--batch-size 8]
                                       [--threads N] [--data-dir ../shared/data]

The embedded SmolLM2-135M-Instruct GGUF is loaded once through transformers
(dequantized to float32, CPU) and handed to both tools, so both score with the
same weights. The task is HH-RLHF (Bai et al. 2022) as two-way multiple choice:
the shared conversation up to the final "Assistant:" is the context, the
human-preferred and the rejected final answers are the choices (in a seeded
random order), and ``acc`` counts the items where the preferred answer has the
higher summed log-likelihood. Items are the first N conversations of the test
split with at least ``--min-turns`` human turns, the case where a long context is
shared by the choices.

lm-evaluation-harness reads the items through a local task YAML
(``dataset_path: json`` with ``data_files``, no hub access); aligngoals reads the
same file through a task spec and runs the full engine (run store included). The
script prints the per-item log-likelihood max |difference|, the accuracy from
each, the wall time of each, and ends with one line::

    ratio=<aligngoals/lm-eval> acc_equal=<True|False> maxdiff=<max |dLL|>

Targets: accuracies equal, maxdiff < 1e-3, ratio <= 0.5.

Where aligngoals saves time: each conversation is computed once for both answers
(lm-eval recomputes it for each), only the context's last position gets the
vocabulary projection (lm-eval projects and log-softmaxes every position), and the
answers run as one batch on the context's key/value cache. On CPU the items run one
at a time (padding several items' contexts into one batch was measured slower on
CPU); ``--cross-item-batching on`` batches them, as the GPU default does. The load
average is printed because the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

from lm_eval_common import load_average, load_shared_model, make_hflm, run_aligngoals, run_lm_eval

REPO = Path(__file__).resolve().parents[1]
TASK = "aligngoals_hh_rlhf_mc"


def build_items(data_dir: Path, split: str, n: int, min_turns: int, seed: int) -> list[dict]:
    from aligngoals.data import load_records

    path = data_dir / "hh-rlhf" / f"{split}-base-test.jsonl.gz"
    if not path.is_file():
        sys.exit(f"{path} not found; pass --data-dir pointing at the folder with hh-rlhf/")
    rng = random.Random(seed)
    items = []
    for rec in load_records(path, format="hh_rlhf"):
        if rec.prompt.count("\n\nHuman:") < min_turns or rec.chosen == rec.rejected:
            continue
        choices = [rec.chosen, rec.rejected]
        gold = 0
        if rng.random() < 0.5:
            choices.reverse()
            gold = 1
        items.append({"id": str(len(items)), "question": rec.prompt, "choices": choices, "answer": gold})
        if len(items) == n:
            break
    if len(items) < n:
        sys.exit(f"only {len(items)} items with >= {min_turns} human turns in {path}")
    return items


def write_lm_eval_task(workdir: Path, data_file: Path) -> None:
    (workdir / f"{TASK}.yaml").write_text(
        "\n".join([
            f"task: {TASK}",
            "dataset_path: json",
            "dataset_kwargs:",
            "  data_files:",
            f"    test: {json.dumps(str(data_file))}",
            "test_split: test",
            "output_type: multiple_choice",
            'doc_to_text: "{{question}}"',
            'doc_to_choice: "{{choices}}"',
            'doc_to_target: "{{answer}}"',
            'target_delimiter: " "',
            "metric_list:",
            "  - metric: acc",
            "    aggregation: mean",
            "    higher_is_better: true",
            "metadata:",
            "  version: 1.0",
            "",
        ]),
        encoding="utf-8",
    )


def lm_eval_acc(hf_model, workdir: Path, batch_size: int) -> tuple[float, float, dict[str, list[float]]]:
    lm = make_hflm(hf_model, batch_size)
    wall, results, samples = run_lm_eval(lm, workdir, [TASK], num_fewshot=0)
    acc = float(results[TASK]["acc,none"])
    lls = {str(s["doc"]["id"]): [float(r[0]) for r in s["filtered_resps"]] for s in samples[TASK]}
    return wall, acc, lls


def aligngoals_acc(hf_model, data_file: Path, run_dir: Path) -> tuple[float, float, dict[str, list[float]]]:
    from aligngoals.evaluate.tasks.spec import TaskSpec

    spec = TaskSpec(name=TASK, level="preferences", type="multiple_choice",
                    data={"path": str(data_file), "format": "mc_jsonl"},
                    prompt="{{ question }}", choice=" {{ choice }}", metrics=["acc"])
    wall, report, items = run_aligngoals(hf_model, [spec], run_dir)
    acc = float(report["tasks"][TASK]["metrics"]["acc"]["value"])
    lls = {item_id: [float(x) for x in data["logprobs"]] for item_id, data in items[TASK]}
    return wall, acc, lls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="number of items (default 200)")
    ap.add_argument("--split", default="helpful", choices=["helpful", "harmless"])
    ap.add_argument("--min-turns", type=int, default=3, help="keep conversations with at least this many human turns")
    ap.add_argument("--batch-size", type=int, default=8, help="batch size of both tools (default 8)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cross-item-batching", choices=["auto", "on", "off"], default="auto",
                    help="aligngoals hf backend: batch contexts of several items (auto: on for GPUs only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args()

    items = build_items(args.data_dir, args.split, args.n, args.min_turns, args.seed)
    with tempfile.TemporaryDirectory(prefix="ag-vs-lmeval-") as tmp:
        work = Path(tmp)
        data_file = work / "items.jsonl"
        data_file.write_text("".join(json.dumps(it, ensure_ascii=False) + "\n" for it in items), encoding="utf-8")
        write_lm_eval_task(work, data_file)

        cib = {"auto": None, "on": True, "off": False}[args.cross_item_batching]
        model, load_s = load_shared_model(args.device, args.batch_size, cib, args.threads)
        n_ctx = sum(len(model.tokenize(it["question"])) for it in items)
        n_cont = sum(len(model.encode_pair(it["question"], " " + c)[1]) for it in items for c in it["choices"])
        print(f"items: {len(items)} HH-RLHF {args.split}-base test conversations with >= {args.min_turns} human turns, "
              f"2 choices each; tokens: {n_ctx} context, {n_cont} continuation "
              f"(mean {n_ctx / len(items):.0f} + {n_cont / len(items):.0f} per item)")
        import torch

        print(f"model: hf:smollm2 (float32, {args.device}, torch threads {torch.get_num_threads()}), "
              f"loaded once in {load_s:.1f} s; batch size {args.batch_size} for both tools; "
              f"aligngoals cross-item batching {'on' if model.cross_item_batching else 'off'}")
        print("load average before: " + load_average())
        lm_wall, lm_acc, lm_lls = lm_eval_acc(model, work, args.batch_size)
        print(f"lm-eval   : acc={lm_acc:.4f} wall={lm_wall:.2f} s")
        ag_wall, ag_acc, ag_lls = aligngoals_acc(model, data_file, work / "run")
        print(f"aligngoals: acc={ag_acc:.4f} wall={ag_wall:.2f} s")

    if set(lm_lls) != set(ag_lls):
        sys.exit(f"item ids differ: {sorted(set(lm_lls) ^ set(ag_lls))[:5]}")
    diffs = [abs(a - b) for k in lm_lls for a, b in zip(lm_lls[k], ag_lls[k], strict=True)]
    maxdiff = max(diffs)
    mean_diff = sum(diffs) / len(diffs)
    print("load average after: " + load_average())
    print(f"per-choice log-likelihood |diff|: max {maxdiff:.2e}, mean {mean_diff:.2e} over {len(diffs)} choices")
    ratio = ag_wall / lm_wall
    print(f"ratio={ratio:.2f} acc_equal={lm_acc == ag_acc} maxdiff={maxdiff:.1e}")


if __name__ == "__main__":
    main()
