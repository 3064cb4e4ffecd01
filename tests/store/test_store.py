"""The SQLite run store."""

from __future__ import annotations

import sqlite3

import pytest

from aligngoals.errors import AligngoalsError
from aligngoals.store import RunStore, request_key


def test_put_get_and_wal(tmp_path):
    s = RunStore(tmp_path / "run")
    k1 = request_key({"backend": "x"}, "loglikelihood", {"context": "a", "continuation": "b"})
    k2 = request_key({"backend": "y"}, "loglikelihood", {"context": "a", "continuation": "b"})
    assert k1 != k2, "the model identity is part of the key"
    s.put(k1, "loglikelihood", {"context": "a"}, {"logprob": -1.5})
    assert s.get(k1) == {"logprob": -1.5}
    assert s.get(k2) is None
    assert s.count_requests() == 1 and s.count_requests("generate") == 0
    mode = sqlite3.connect(s.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    s.close()
    # A new connection (a new process in real use) sees the committed row.
    assert RunStore(tmp_path / "run", readonly=True).get(k1) == {"logprob": -1.5}


def test_items_and_meta(tmp_path):
    s = RunStore(tmp_path)
    s.put_items("t1", [("a", {"output": "x"}), ("b", {"output": "y"})])
    s.put_item("t2", "a", {"output": "<b>z</b>"})
    assert [i for _, i, _ in s.items("t1")] == ["a", "b"]
    assert s.tasks() == ["t1", "t2"]
    s.set_meta("seed", 3)
    assert s.get_meta("seed") == 3 and s.get_meta("missing", "d") == "d"
    assert s.all_meta()["schema_version"] == 1


def test_many_keys_lookup(tmp_path):
    s = RunStore(tmp_path)
    s.put_many([(f"k{i}", "generate", {}, {"text": str(i)}) for i in range(1200)])
    found = s.get_many([f"k{i}" for i in range(0, 1300, 7)])
    assert len(found) == len(range(0, 1200, 7)) and found["k7"] == {"text": "7"}


def test_readonly_on_a_non_run_dir(tmp_path):
    with pytest.raises(AligngoalsError, match="not an aligngoals run directory"):
        RunStore(tmp_path / "nothing", readonly=True)
