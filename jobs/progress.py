"""Progress a person can read while a stage runs: documents done, rate and ETA, printed by the driver.

A ``Ticker`` runs beside each stage (``jobs.runtime.run_job`` starts it) and, every ``interval_s`` seconds
after the first, prints one line to stderr: what the stage is counting (documents scored by a model, with
rate and ETA) or, when nothing is counted, the elapsed time and the running Spark stages' task counts.
Stages shorter than the interval print nothing. Spark's own console progress bar (``spark.progress``) is
independent and can stay on.

Counting happens on executors through a Spark accumulator: a Python worker's additions reach the driver
when its task ends, so the count moves task by task. ``Ticker.count(label, total)`` makes one active for a
block of driver code; transforms built inside that block (``jobs.scoring.model_transform``) pick it up with
``active_counter()`` and add the rows they process.
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

_active = threading.local()


def active_counter():
    """The accumulator of the innermost ``Ticker.count`` block on this thread, or None."""
    return getattr(_active, "counter", None)


def fmt_seconds(seconds: float) -> str:
    """``h:mm:ss`` (or ``m:ss`` under an hour)."""
    s = int(round(max(seconds, 0)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def rate_line(label: str, done: int, total: int | None, seconds: float, unit: str = "docs") -> str:
    """``label: done/total unit (pct)  rate unit/s  ETA`` (ETA and percentage only with a total)."""
    rate = done / seconds if seconds > 0 else 0.0
    if total:
        pct = 100.0 * done / total
        eta = fmt_seconds((total - done) / rate) if rate > 0 and done < total else "-"
        return f"{label}: {done:,}/{total:,} {unit} ({pct:.0f}%)  {rate:,.1f} {unit}/s  ETA {eta}"
    return f"{label}: {done:,} {unit}  {rate:,.1f} {unit}/s"


@dataclass
class _Count:
    label: str
    total: int | None
    unit: str
    acc: object
    started: float


class Ticker:
    """Prints a stage's progress every ``interval_s`` seconds from a daemon thread while enabled.

    Args:
        spark: the session (its status tracker and accumulators).
        stage: the stage name, at the start of every line.
        enabled: print at all (off: ``count`` still works, nothing is printed).
        interval_s: seconds between lines; the first line comes after one interval.
        out: where lines go (default stderr, beside Spark's own progress bar).
    """

    def __init__(self, spark, stage: str, enabled: bool, interval_s: float = 10.0, out=None):
        self.spark = spark
        self.stage = stage
        self.enabled = enabled
        self.interval_s = interval_s
        self.out = out or sys.stderr
        self._count: _Count | None = None
        self._phase: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.perf_counter()

    def __enter__(self) -> Ticker:
        self._t0 = time.perf_counter()
        if self.enabled:
            self._thread = threading.Thread(target=self._loop, name=f"progress-{self.stage}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @contextmanager
    def count(self, label: str, total: int | None, unit: str = "docs"):
        """Count ``unit`` processed on executors while the block runs; yields the accumulator."""
        acc = self.spark.sparkContext.accumulator(0)
        self._count = _Count(label, total, unit, acc, time.perf_counter())
        previous = active_counter()
        _active.counter = acc
        try:
            yield acc
        finally:
            _active.counter = previous
            self._count = None

    @contextmanager
    def phase(self, text: str):
        """Name what the driver is doing while the block runs (gates, commits), for lines between counts."""
        previous, self._phase = self._phase, text
        try:
            yield
        finally:
            self._phase = previous

    def line(self) -> str:
        """The line the ticker would print now."""
        elapsed = time.perf_counter() - self._t0
        head = f"[{self.stage} {fmt_seconds(elapsed)}]"
        count = self._count
        if count is not None:
            body = rate_line(
                count.label, int(count.acc.value), count.total, time.perf_counter() - count.started
            )
            return f"{head} {body}"
        parts = [p for p in (self._phase, self._tasks()) if p]
        return f"{head} {'; '.join(parts) or 'working on the driver'}"

    def _tasks(self) -> str:
        try:
            tracker = self.spark.sparkContext.statusTracker()
            infos = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]
        except Exception:  # the tracker is advisory; a stopping context must not break the stage
            return ""
        parts = [
            f"Spark stage {i.stageId}: {i.numCompletedTasks}/{i.numTasks} tasks"
            for i in infos
            if i is not None
        ]
        return ", ".join(parts)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            # \r first: Spark's console bar may be mid-line on the same stream.
            print("\r" + self.line().ljust(79), file=self.out, flush=True)
