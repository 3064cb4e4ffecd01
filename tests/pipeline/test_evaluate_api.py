"""The Python API gives what the CLI gives: ``aligngoals.evaluate(...)`` vs ``aligngoals eval``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import aligngoals
from aligngoals.report.schema import SCHEMA_VERSION, read_report


def _without_run(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "run"}


@pytest.mark.slow
def test_goal_hhh_api_and_cli_give_the_same_report(shared_data, tmp_path):
    out = tmp_path / "run"
    api = aligngoals.evaluate("smollm2", goal="hhh", data_dir=shared_data, limit=1, out=out)
    assert api["schema_version"] == SCHEMA_VERSION
    assert "values" in api["sections"] and api["tasks"]
    # The CLI on the same run directory sends exactly the same requests: all come from the store.
    r = subprocess.run([sys.executable, "-m", "aligngoals.cli.main", "eval", "--model", "smollm2", "--goal", "hhh",
                        "--data-dir", str(shared_data), "--limit", "1", "--out", str(out)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    cli = read_report(out / "report.json")
    assert cli["run"]["requests_computed"] == 0
    assert cli["run"]["requests_cached"] == api["run"]["requests_cached"] + api["run"]["requests_computed"]
    a, c = _without_run(api), _without_run(cli)
    # The value section records the questionnaire's own file path and the packages; both identical here.
    assert json.dumps(a, sort_keys=True, default=str) == json.dumps(c, sort_keys=True, default=str)


def test_evaluate_rejects_two_selections():
    from aligngoals.errors import ConfigError

    with pytest.raises(ConfigError, match="only one of suite, tasks and goal"):
        aligngoals.evaluate("smollm2", suite="quick", goal="hhh")
