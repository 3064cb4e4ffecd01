"""A plug-in package installed with pip adds a backend, a task, a format, a method and a judge mode.

The package lives in tests/plugins/aligngoals_example_plugin; the test installs it into
the running interpreter's environment, runs the CLI with its backend and task (on the
real embedded model), and uninstalls it again.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).parent / "aligngoals_example_plugin"


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def plugin_installed():
    r = _pip("install", "--no-deps", "--no-build-isolation", "-q", str(PLUGIN))
    if r.returncode != 0:
        pytest.fail(f"pip install of the example plug-in failed:\n{r.stderr[-2000:]}")
    yield
    _pip("uninstall", "-y", "-q", "aligngoals-example-plugin")


def _run(code: str) -> str:
    """Run ``code`` in a fresh interpreter (entry points are read once per process)."""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


@pytest.mark.slow
def test_plugin_backend_and_task_from_the_cli(plugin_installed, tmp_path):
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "aligngoals.cli.main", "eval", "--model", "mirror:smollm2",
                        "--tasks", "capitals_mc", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["name"] == "mirror:smollm2"
    task = report["tasks"]["capitals_mc"]
    assert task["n"] == 6 and 0.0 <= task["metrics"]["acc"]["value"] <= 1.0
    # The same model through the built-in backend gives the same answers (the plug-in is a real backend).
    ref = tmp_path / "ref"
    r = subprocess.run([sys.executable, "-m", "aligngoals.cli.main", "eval", "--model", "smollm2",
                        "--tasks", "capitals_mc", "--out", str(ref)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((ref / "report.json").read_text())["tasks"]["capitals_mc"]["metrics"]["acc"]["value"] == \
        task["metrics"]["acc"]["value"]


def test_plugin_format_method_and_judge_mode_are_registered(plugin_installed, tmp_path):
    data = tmp_path / "qa.tsv"
    data.write_text("2+2?\t4\t5\nSky colour?\tblue\tgreen\n", encoding="utf-8")
    out = _run(
        "from aligngoals.data import load_records; from aligngoals.align.config import AlignConfig;"
        "from aligngoals.judges.modes import JUDGE_MODES; from aligngoals.models.registry import describe_model_forms;"
        f"recs = load_records({str(data)!r}, format='qa_tsv');"
        "print(len(recs), recs[0].choices);"
        "c = AlignConfig(method='sft_short', data='x.jsonl', out='o'); print(c.effective_lr);"
        "print('single_strict' in JUDGE_MODES.names()); print('mirror:' in describe_model_forms())"
    )
    lines = out.strip().splitlines()
    assert lines[0] == "2 ['4', '5']"
    assert float(lines[1]) == pytest.approx(1e-4)
    assert lines[2:] == ["True", "True"]


def test_broken_plugin_is_reported_not_fatal():
    from aligngoals.errors import ConfigError
    from aligngoals.plugins import Registry

    reg: Registry[int] = Registry("widget", "aligngoals.no_such_group_for_tests")
    reg.add("one", 1)
    assert reg.get("one") == 1
    with pytest.raises(ConfigError, match="Unknown widget 'two'.*Known: one"):
        reg.get("two")
