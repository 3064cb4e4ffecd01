"""An embedded SQLite database per run directory.

Why SQLite (WAL mode): every model answer is written the moment it arrives, so a
killed run loses at most the request in flight; a re-run asks the store before
the model and skips what is done. One file, no server, readable with any
SQLite tool.

Tables
------
``requests``  one row per model request, keyed by a hash of (model identity,
              request, generation settings); holds the request and its result.
``items``     per-item outputs of a task (e.g. a generation and its score), so
              later commands (judges, reports) can read what a run produced.
``meta``      run metadata (command, model, seed, timings) as JSON values.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from aligngoals.errors import AligngoalsError
from aligngoals.io import stable_hash

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    key        TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    request    TEXT NOT NULL,
    result     TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    task       TEXT NOT NULL,
    item_id    TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (task, item_id)
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

STORE_FILENAME = "store.sqlite"


def request_key(model_identity: dict, kind: str, request: dict) -> str:
    """Cache key of one request: the same model, request and settings give the same key."""
    return stable_hash({"model": model_identity, "kind": kind, "request": request})


class RunStore:
    """The run store of one run directory (``<run_dir>/store.sqlite``)."""

    def __init__(self, run_dir: str | Path, *, readonly: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / STORE_FILENAME
        if readonly:
            if not self.path.is_file():
                raise AligngoalsError(
                    f"{self.run_dir} is not an aligngoals run directory (no {STORE_FILENAME}).",
                    hint="Pass the directory an earlier 'aligngoals eval --out DIR' wrote.",
                )
            uri = f"file:{self.path}?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable across process crashes in WAL mode (only an OS crash
            # can lose the last transactions), which is the failure we protect against.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                (json.dumps(SCHEMA_VERSION),),
            )
            self._conn.commit()
        self._lock = threading.Lock()

    # --- requests ---------------------------------------------------------------------
    def get_many(self, keys: Iterable[str]) -> dict[str, dict]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, dict] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, result in self._conn.execute(
                    f"SELECT key, result FROM requests WHERE key IN ({marks})", chunk
                ):
                    found[key] = json.loads(result)
        return found

    def get(self, key: str) -> dict | None:
        return self.get_many([key]).get(key)

    def put(self, key: str, kind: str, request: dict, result: dict) -> None:
        """Save one completed request; committed immediately so a crash cannot lose it."""
        self.put_many([(key, kind, request, result)])

    def put_many(self, rows: Iterable[tuple[str, str, dict, dict]]) -> None:
        now = time.time()
        data = [
            (k, kind, json.dumps(req, ensure_ascii=False), json.dumps(res, ensure_ascii=False), now)
            for k, kind, req, res in rows
        ]
        with self._lock:
            self._conn.executemany(
                "INSERT OR REPLACE INTO requests(key, kind, request, result, created_at) VALUES (?,?,?,?,?)",
                data,
            )
            self._conn.commit()

    def count_requests(self, kind: str | None = None) -> int:
        with self._lock:
            if kind is None:
                return int(self._conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0])
            return int(
                self._conn.execute("SELECT COUNT(*) FROM requests WHERE kind = ?", (kind,)).fetchone()[0]
            )

    def iter_requests(self, kind: str | None = None) -> Iterator[tuple[str, dict, dict]]:
        """Yield ``(kind, request, result)`` rows in insertion order."""
        sql = "SELECT kind, request, result FROM requests"
        args: tuple = ()
        if kind is not None:
            sql += " WHERE kind = ?"
            args = (kind,)
        sql += " ORDER BY rowid"
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        for k, req, res in rows:
            yield k, json.loads(req), json.loads(res)

    # --- items ---------------------------------------------------------------------------
    def put_item(self, task: str, item_id: str, data: dict) -> None:
        self.put_items(task, [(item_id, data)])

    def put_items(self, task: str, rows: Iterable[tuple[str, dict]]) -> None:
        now = time.time()
        payload = [(task, str(i), json.dumps(d, ensure_ascii=False), now) for i, d in rows]
        with self._lock:
            self._conn.executemany(
                "INSERT OR REPLACE INTO items(task, item_id, data, created_at) VALUES (?,?,?,?)", payload
            )
            self._conn.commit()

    def items(self, task: str | None = None) -> list[tuple[str, str, dict]]:
        """``(task, item_id, data)`` rows, in insertion order."""
        sql = "SELECT task, item_id, data FROM items"
        args: tuple = ()
        if task is not None:
            sql += " WHERE task = ?"
            args = (task,)
        sql += " ORDER BY rowid"
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [(t, i, json.loads(d)) for t, i, d in rows]

    def tasks(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT DISTINCT task FROM items ORDER BY task")]

    # --- meta -----------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value, ensure_ascii=False))
            )
            self._conn.commit()

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def claim(self, key: str, fingerprint: Any, conflict: Callable[[Any], str]) -> None:
        """Bind this run directory to one job (evaluation, survey, judging, value suite).

        Why in the store: every resumable job must refuse to mix its answers with those of
        another job in the same directory; ``conflict(previous)`` says what the directory holds.
        """
        previous = self.get_meta(key)
        if previous is None:
            self.set_meta(key, fingerprint)
        elif previous != fingerprint:
            raise AligngoalsError(conflict(previous),
                                  hint="Choose another --out directory, or delete that one to start over.")

    def all_meta(self) -> dict[str, Any]:
        with self._lock:
            return {k: json.loads(v) for k, v in self._conn.execute("SELECT key, value FROM meta")}

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
