"""The lm-eval parity benchmark on the standard tasks (benchmarks/vs_lm_eval_tasks.py), end to end.

It runs aligngoals and lm-evaluation-harness's own truthfulqa_mc1/mc2, crows_pairs_english
and bbq task files on the same float32 weights, on small files written for these tests in
the published formats (tests/fixtures/parity_tasks_data.py), and must find the same
predictions and the same per-request log-likelihoods.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "fixtures"))
sys.path.insert(0, str(REPO / "benchmarks"))
from parity_tasks_data import BBQ, CROWS, TRUTHFULQA, write_parity_data  # noqa: E402

LAST_LINE = re.compile(r"^tasks=(\d+) max_metric_diff=(\S+) flips=(\d+) maxdiff=(\S+) ratio=(\S+) nats_metric_diff=(\S+)$")


def _without_data_lines(lines: list[str]) -> list[str]:
    """A task file's lines without its dataset lines (ours: path + the three data_files lines)."""
    out, skip = [], 0
    for line in lines:
        if skip:
            skip -= 1
        elif line.startswith("dataset_kwargs:"):
            skip = 2
        elif not line.startswith(("dataset_path:", "dataset_name:")):
            out.append(line)
    return out


def test_localized_task_files_keep_lm_evals_definitions(tmp_path):
    """Only the dataset lines change; lm-eval's !function hooks, prompts and metrics stay as installed."""
    pytest.importorskip("lm_eval")
    import lm_eval.tasks
    from vs_lm_eval_tasks import TASKS, build_lm_eval_tasks

    data = write_parity_data(tmp_path / "data")
    (tmp_path / "work").mkdir()
    root = build_lm_eval_tasks(data, list(TASKS), tmp_path / "work")
    installed = Path(lm_eval.tasks.__file__).parent
    for pair in TASKS:
        assert (root / pair.folder / "utils.py").read_bytes() == (installed / pair.folder / "utils.py").read_bytes()
        for name in pair.yamls:
            ours = (root / pair.folder / name).read_text().splitlines()
            theirs = (installed / pair.folder / name).read_text().splitlines()
            assert _without_data_lines(ours) == _without_data_lines(theirs)
            if any(line.startswith("dataset_path:") for line in theirs):
                i = ours.index("dataset_path: json")
                assert ours[i + 1:i + 3] == ["dataset_kwargs:", "  data_files:"]
                split, files = ours[i + 3].strip().split(": ", 1)
                assert split == pair.split and all(Path(f).is_file() for f in json.loads(files))


@pytest.mark.slow
def test_parity_benchmark_matches_lm_eval_on_fixtures(tmp_path):
    pytest.importorskip("lm_eval")
    data = write_parity_data(tmp_path / "data")
    limit = 3
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "vs_lm_eval_tasks.py"), "--data-dir", str(data),
         "--limit", str(limit), "--threads", "2", "--batch-size", "4"],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    last = out.strip().splitlines()[-1]
    m = LAST_LINE.match(last)
    assert m, last
    tasks, max_metric_diff, flips, maxdiff, ratio, nats = m.groups()
    assert int(tasks) == 4
    assert int(flips) == 0, out
    assert float(maxdiff) < 1e-3, out
    assert float(max_metric_diff) < 1e-6, out
    assert float(nats) < 1e-3, out
    assert float(ratio) > 0
    # Both tools condition an empty context (CrowS-Pairs) on the same token, and see the same first items.
    tok = re.search(r"empty-context token: aligngoals (\d+), lm-eval (\d+)", out)
    assert tok and tok.group(1) == tok.group(2), out
    counts = {"truthfulqa_mc1": min(limit, len(TRUTHFULQA)), "truthfulqa_mc2": min(limit, len(TRUTHFULQA)),
              "crows_pairs": min(limit, len(CROWS)), "bbq_lm_eval": min(limit, sum(len(v) for v in BBQ.values()))}
    for task, n in counts.items():
        assert re.search(rf"^{task} \(lm-eval task \S+; {n} items, limit mode first\)$", out, re.M), out
        assert f"flips 0/{n}" in out and f"same context {n}/{n}" in out


def test_parity_benchmark_says_which_data_is_missing(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "vs_lm_eval_tasks.py"), "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert proc.returncode != 0
    assert "truthfulqa/mc_task.json" in proc.stderr and "bbq/*.jsonl" in proc.stderr
