"""A test hook, inert in production: kill the process at a named point of a table write.

The atomicity, resume and concurrency tests SIGKILL a writer between its steps to prove that a crash never
leaves half a write. ``Lakehouse.commit`` calls :func:`fault_point` just before and just after each commit;
unless the environment variable ``CORPUSLAKE_FAULT`` is set (only those tests set it), the call returns at
once and does nothing.

``CORPUSLAKE_FAULT=<point>`` dies at the first ``<point>`` (``before_commit`` or ``after_commit``);
``<point>:<table>:<n>`` dies at the n-th commit to that table. In-process tests may instead monkeypatch
``jobs.faults.fault_point`` (callers look it up on this module at each call).
"""

from __future__ import annotations

import os
import signal

ENV = "CORPUSLAKE_FAULT"
POINTS = ("before_commit", "after_commit")

_counts: dict[str, int] = {}


def fault_point(name: str, table: str) -> None:
    """Die here (SIGKILL, no cleanup) if ``CORPUSLAKE_FAULT`` asks for this point; otherwise do nothing.

    Args:
        name: the point, one of ``POINTS``.
        table: the table being committed (``silver.documents``).
    """
    want = os.environ.get(ENV)
    if not want:
        return
    if want == name:
        os.kill(os.getpid(), signal.SIGKILL)
    parts = want.split(":")
    if len(parts) == 3 and parts[0] == name and parts[1] == table:
        _counts[want] = _counts.get(want, 0) + 1
        if _counts[want] == int(parts[2]):
            os.kill(os.getpid(), signal.SIGKILL)
