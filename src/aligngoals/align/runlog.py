"""``train_log.jsonl`` and progress reporting, shared by every method.

Why a file of JSON lines: one line per logged step is readable while training
runs (``tail -f``), survives a crash up to the last line, and a resumed run can
cut it back to the checkpoint it resumes from so the log never has two
histories.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Protocol

LOG_FILENAME = "train_log.jsonl"


def _clean(v: Any) -> Any:
    if hasattr(v, "item"):
        try:
            v = v.item()
        except (ValueError, RuntimeError):
            return str(v)
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return v


class TrainLog:
    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOG_FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.t0 = time.time()

    def truncate_after(self, step: int) -> None:
        """Drop training lines logged after ``step`` (a resumed run repeats them)."""
        if not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash
            if row.get("event", "train") == "train" and int(row.get("step", 0)) > step:
                continue
            kept.append(line)
        from aligngoals.io import atomic_write_text

        atomic_write_text(self.path, "".join(k + "\n" for k in kept))

    def write(self, row: dict) -> None:
        if int(os.environ.get("RANK", "0")) != 0:  # one log per run: rank 0 writes it
            return
        row = {k: _clean(v) for k, v in row.items()}
        row.setdefault("time", round(time.time(), 3))
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def step(self, step: int, metrics: dict) -> None:
        self.write({"event": "train", "step": int(step), **metrics})

    def event(self, event: str, **fields: Any) -> None:
        self.write({"event": event, **fields})

    def rows(self, event: str | None = "train") -> list[dict]:
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event is None or row.get("event") == event:
                out.append(row)
        return out


class Progress(Protocol):
    """What the trainers report to (the CLI shows a rich bar; the API default prints nothing)."""

    def start(self, description: str, total: int) -> None: ...

    def update(self, step: int, metrics: dict) -> None: ...

    def note(self, text: str) -> None: ...

    def finish(self) -> None: ...


class NullProgress:
    def start(self, description: str, total: int) -> None:
        pass

    def update(self, step: int, metrics: dict) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def finish(self) -> None:
        pass


class Deadline:
    """``max_minutes`` as a clock the training loops check after every step."""

    def __init__(self, max_minutes: float | None) -> None:
        self.t0 = time.time()
        self.limit = None if max_minutes is None else max_minutes * 60.0

    def passed(self) -> bool:
        return self.limit is not None and time.time() - self.t0 >= self.limit


def reset_peak_memory(device: str = "cpu") -> None:
    """Start a new peak-memory window (so training's peak excludes loading and the before-measurement).

    On Linux, writing 5 to /proc/self/clear_refs resets the process's VmHWM
    (peak RSS); where that is not possible the peak stays process-wide.
    """
    if device.startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats()
        return
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def peak_memory_mb(device: str = "cpu") -> float:
    """Peak memory since :func:`reset_peak_memory`: CUDA allocator peak on GPU, peak RSS on CPU (MB)."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
