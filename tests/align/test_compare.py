"""``aligngoals compare``: the arithmetic of the intervals, and the command on real run directories."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from aligngoals.align.compare import Z95, compare_runs, paired_bootstrap
from aligngoals.align.evaluation import write_eval_run
from aligngoals.errors import AligngoalsError


def _run(dir_, accs: dict[str, float], extra_task: bool = False):
    items = [{"id": i, "scores": {"acc": a}} for i, a in accs.items()]
    tasks = {"pref": items}
    if extra_task:
        tasks["only_here"] = [{"id": "z", "scores": {"acc": 1.0}}]
    return write_eval_run(dir_, tasks, model_info={"backend": "test", "name": dir_.name}, settings={"phase": dir_.name},
                          command=None, started=time.time())


def test_paired_bootstrap_arithmetic():
    b = np.array([1.0, 0.0, 1.0, 0.0])
    a = np.array([1.0, 1.0, 1.0, 0.0])
    diff, lo, hi = paired_bootstrap(b, a, n_boot=4000, seed=1)
    assert diff == pytest.approx(0.25)
    # the per-item differences are (0, 1, 0, 0): a resampled mean is k/4 for k ones, so the bounds are quarters
    assert lo == pytest.approx(0.0) and hi in (pytest.approx(0.75), pytest.approx(0.5))
    # a constant shift has a zero-width interval
    diff, lo, hi = paired_bootstrap(np.array([0.1, 0.5, 0.9]), np.array([0.3, 0.7, 1.1]))
    assert (diff, lo, hi) == pytest.approx((0.2, 0.2, 0.2))


def test_compare_pairs_on_shared_item_ids(tmp_path):
    _run(tmp_path / "before", {"a": 1.0, "b": 0.0, "c": 1.0, "d": 0.0, "gone": 1.0})
    _run(tmp_path / "after", {"a": 1.0, "b": 1.0, "c": 1.0, "d": 0.0, "new": 0.0}, extra_task=True)
    _, _, rows = compare_runs(tmp_path / "before", tmp_path / "after")
    acc = next(r for r in rows if r.task == "pref" and r.metric == "acc")
    assert acc.method == "paired_bootstrap" and acc.n_paired == 4
    assert (acc.before, acc.after, acc.diff) == pytest.approx((0.5, 0.75, 0.25))  # over the 4 shared items only
    assert acc.ci_low <= acc.diff <= acc.ci_high
    only = next(r for r in rows if r.task == "only_here")
    assert only.method == "missing" and only.diff is None


def test_compare_normal_approximation_without_item_scores(tmp_path):
    def report(dir_, v, lo, hi):
        dir_.mkdir()
        (dir_ / "report.json").write_text(json.dumps(
            {"tasks": {"t": {"metrics": {"acc": {"value": v, "ci_low": lo, "ci_high": hi, "n": 100}}}}}))

    report(tmp_path / "b", 0.5, 0.3, 0.7)
    report(tmp_path / "a", 0.6, 0.4, 0.8)
    _, _, (row,) = compare_runs(tmp_path / "b", tmp_path / "a")
    se = 0.4 / (2 * Z95)
    half = Z95 * math.sqrt(2 * se * se)  # = 0.2 * sqrt(2)
    assert row.method == "normal" and row.diff == pytest.approx(0.1)
    assert (row.ci_low, row.ci_high) == pytest.approx((0.1 - half, 0.1 + half))
    assert half == pytest.approx(0.2 * math.sqrt(2))
    assert not row.significant


def test_compare_errors_name_the_directory(tmp_path):
    with pytest.raises(AligngoalsError, match="no report.json"):
        compare_runs(tmp_path, tmp_path / "x")
    with pytest.raises(AligngoalsError, match="eval/before"):
        compare_runs(tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "report.json").write_text("{nope")
    with pytest.raises(AligngoalsError, match="not valid JSON"):
        compare_runs(tmp_path / "bad", tmp_path / "bad")


def test_compare_cli(tmp_path):
    from typer.testing import CliRunner

    from aligngoals.cli.main import app

    _run(tmp_path / "before", {"a": 0.0, "b": 0.0, "c": 1.0})
    _run(tmp_path / "after", {"a": 1.0, "b": 1.0, "c": 1.0})
    res = CliRunner().invoke(app, ["compare", str(tmp_path / "before"), str(tmp_path / "after"), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    acc = next(m for m in data["metrics"] if m["metric"] == "acc")
    assert acc["diff"] == pytest.approx(2 / 3) and acc["n_paired"] == 3
    res = CliRunner().invoke(app, ["compare", str(tmp_path / "before"), str(tmp_path / "after")])
    assert res.exit_code == 0 and "+0.667" in res.stdout
