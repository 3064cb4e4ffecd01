"""``aligngoals data formats|inspect|convert`` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from test_data_shared import FILES, RAW, SOURCES_ROWS, independent_rows
from typer.testing import CliRunner

from aligngoals.cli.main import app
from aligngoals.data import load_records
from aligngoals.errors import DataError

runner = CliRunner()


def _inspect_json(*args: str) -> dict:
    r = runner.invoke(app, ["data", "inspect", *args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.mark.parametrize("rel", sorted(FILES) + sorted(RAW))
def test_inspect_every_shared_file_reports_matching_counts(shared_data, rel):
    p = shared_data / rel
    info = _inspect_json(str(p))
    header = FILES[rel][1] if rel in FILES else (1 if rel.endswith(".csv") else 0)
    n = independent_rows(p, header)
    assert info["report"]["rows"] == n
    if rel in FILES:
        assert info["format"] == FILES[rel][0] and info["detected"] and info["mode"] == "records"
        assert info["report"]["records"] == n
        assert sum(info["report"]["record_types"].values()) == n
        for field, (filled, total) in next(iter(info["coverage"].values())).items():
            assert 0 <= filled <= total == n
    else:
        assert info["format"] == RAW[rel] and info["mode"] == "rows" and n == SOURCES_ROWS[rel]
        assert all(total == n for _, total in info["coverage"]["row"].values())
    assert len(info["examples"]) == 2


def test_inspect_human_output_and_options(shared_data):
    p = shared_data / "valuebench" / "value_orientation.csv"
    r = runner.invoke(app, ["data", "inspect", str(p), "--opt", "inventory=PVQ40", "-n", "1"])
    assert r.exit_code == 0, r.output
    assert "format: valuebench" in r.stdout and "(detected)" in r.stdout and "questionnaire_item" in r.stdout and "PVQ40_01" in r.stdout
    info = _inspect_json(str(p), "--opt", "inventory=VSM13", "--limit", "5")
    assert info["report"]["records"] == 5 and info["report"]["truncated"]


def test_inspect_excel_is_a_clear_error(shared_data):
    r = runner.invoke(app, ["data", "inspect", str(shared_data / "valuebench" / "value_data.xlsx")])
    assert isinstance(r.exception, DataError) and "Excel" in r.exception.message


def test_inspect_skip_bad_reports_reasons(tmp_path):
    p = tmp_path / "pairs.jsonl"
    p.write_text('{"prompt": "a", "chosen": "x", "rejected": "y"}\n{"prompt": "b", "chosen": "x"}\n{"prompt": 3, "chosen": "x", "rejected": "y"}\n', encoding="utf-8")
    r = runner.invoke(app, ["data", "inspect", str(p)])
    assert isinstance(r.exception, DataError)
    assert f"{p}:2: field 'rejected'" in r.exception.message
    r = runner.invoke(app, ["data", "inspect", str(p), "--skip-bad"])
    assert r.exit_code == 0
    assert "Skipped 2 bad row(s)" in r.output and "missing field 'rejected'" in r.output and "field 'prompt'" in r.output


def test_main_prints_errors_without_traceback(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"prompt": "a", "chosen": "x"}\n', encoding="utf-8")
    env = dict(os.environ, COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "aligngoals.cli.main", "data", "inspect", str(p), "--format", "pairs_jsonl"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "bad.jsonl:1: field 'rejected'" in proc.stderr.replace("\n", "")


def test_convert_jsonl_round_trip_on_real_file(shared_data, tmp_path):
    src = shared_data / "moral-stories" / "norm_distance_action_norm_dev.jsonl"
    out = tmp_path / "ms.jsonl"
    r = runner.invoke(app, ["data", "convert", str(src), "--to", "jsonl", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "Wrote 2000 record(s)" in r.output
    assert list(load_records(out)) == list(load_records(src))
    assert load_records(out).report.format == "records_jsonl"


def test_convert_hf_round_trip_and_pairs(shared_data, tmp_path):
    pytest.importorskip("datasets")
    src = shared_data / "hh-rlhf" / "harmless-base-test.jsonl.gz"
    out = tmp_path / "hh_ds"
    r = runner.invoke(app, ["data", "convert", str(src), "--to", "hf", "--out", str(out), "--limit", "50"])
    assert r.exit_code == 0, r.output
    import datasets

    ds = datasets.load_from_disk(str(out))
    assert len(ds) == 50 and {"prompt", "chosen", "rejected", "prompt_messages"} <= set(ds.column_names)
    assert list(load_records(out)) == list(load_records(src, limit=50))
    r = runner.invoke(app, ["data", "convert", str(src), "--to", "hf", "--out", str(out), "--limit", "5"])
    assert r.exception is not None and "already exists" in r.exception.message
    # rankings become all pairs
    rank = tmp_path / "rank.jsonl"
    rank.write_text(json.dumps({"prompt": "p", "responses": ["a", "b", "c"]}) + "\n", encoding="utf-8")
    pairs = tmp_path / "pairs.jsonl"
    r = runner.invoke(app, ["data", "convert", str(rank), "--to", "jsonl", "--out", str(pairs), "--pairs"])
    assert r.exit_code == 0, r.output
    got = load_records(pairs)
    assert [(p.chosen, p.rejected) for p in got] == [("a", "b"), ("a", "c"), ("b", "c")]


def test_convert_generic_with_mapping(tmp_path):
    src = tmp_path / "qa.csv"
    src.write_text("q,good,bad\nWhat is 2+2?,4,5\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    r = runner.invoke(app, ["data", "convert", str(src), "--to", "jsonl", "--out", str(out), "--record-type", "preference_pair",
                            "--map", "prompt=q", "--map", "chosen=good", "--map", "rejected=bad"])
    assert r.exit_code == 0, r.output
    (p,) = load_records(out)
    assert (p.prompt, p.chosen, p.rejected) == ("What is 2+2?", "4", "5")


def test_formats_listing(tmp_path):
    from aligngoals.data import list_formats

    r = runner.invoke(app, ["data", "formats"])
    assert r.exit_code == 0
    r = runner.invoke(app, ["data", "formats", "valuebench"])
    assert r.exit_code == 0 and "inventory" in r.output
    assert len(list_formats()) >= 30
