"""audit.runs and audit.expectations: what ran, what it read and wrote, and what its gates said.

A run writes a ``running`` row when it starts (with the host and process that run it) and one more when it
ends. A run that was killed never writes the second row: the next run of the same stage marks it
``abandoned`` (see ``abandoned_because`` for the rule that keeps a live concurrent run from being marked).
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from jobs.tables import Lakehouse
from schemas import audit as audit_schemas
from schemas.base import TableSpec


class UpstreamNotPassed(RuntimeError):
    """A table this stage reads did not pass its latest gate."""


@dataclass
class Run:
    """One stage run. ``seq`` is the Delta transaction version of its commits (stable for a run id)."""

    run_id: str
    stage: str
    seq: int
    started_at: datetime
    profile: str | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    tables_read: dict[str, int] = field(default_factory=dict)
    tables_written: dict[str, int] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    # Earlier runs of the stage this run found killed and marked abandoned when it started: (why, row).
    abandoned: list[tuple[str, dict]] = field(default_factory=list)


# A run on another host cannot be asked whether it is alive: it counts as abandoned once it started this long
# ago without an end row. Were it still alive, its own end row comes later and is the run's latest state.
ABANDON_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class Owner:
    """The process that runs a stage: host, pid and the pid's start time (clock ticks, Linux only)."""

    host: str
    pid: int
    ticks: int | None = None

    def line(self) -> str:
        ticks = f" started {self.ticks}" if self.ticks is not None else ""
        return f"running on host {self.host} pid {self.pid}{ticks}"


_OWNER = re.compile(r"running on host (\S+) pid (\d+)(?: started (\d+))?")


def this_process() -> Owner:
    from jobs.cluster import process_start

    pid = os.getpid()
    return Owner(socket.gethostname(), pid, process_start(pid) if os.path.isdir("/proc") else None)


def parse_owner(message: str | None) -> Owner | None:
    """The owner recorded in a ``running`` row's message, or None (rows written before owners were)."""
    m = _OWNER.search(message or "")
    if m is None:
        return None
    return Owner(m.group(1), int(m.group(2)), int(m.group(3)) if m.group(3) else None)


def _process_alive(owner: Owner) -> bool:
    if os.path.isdir("/proc"):
        from jobs.cluster import process_start

        start = process_start(owner.pid)
        return start is not None and (owner.ticks is None or start == owner.ticks)
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def abandoned_because(owner: Owner | None, started_at: datetime, now: datetime, host: str) -> str | None:
    """Why a run with no end row is abandoned, or None when it may still be running.

    The rule: on this host, a run is abandoned when its process is gone (the pid no longer runs, or runs a
    process that started at another time: pids get reused). On another host, or with no owner recorded, a
    run is abandoned once it started more than ``ABANDON_AFTER`` ago.
    """
    if owner is not None and owner.host == host:
        if _process_alive(owner):
            return None
        return f"its process (pid {owner.pid} on {owner.host}) is gone"
    age = now - started_at
    if age <= ABANDON_AFTER:
        return None
    where = f"on host {owner.host}" if owner is not None else "on an unrecorded host"
    return f"it started {age.total_seconds() / 3600:.0f} h ago {where} and never ended"


def new_run_id(stage: str) -> str:
    return f"{stage}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def ensure_tables(lakehouse: Lakehouse) -> None:
    for spec in audit_schemas.TABLES:
        lakehouse.create_if_missing(spec)


def _append(lakehouse: Lakehouse, spec: TableSpec, rows: list[dict], run_id: str) -> None:
    lakehouse.append_rows(spec, rows, run_id)


# The audit tables hold a few rows per run (never per document): every question a stage asks them is
# answered on the driver from one read of the columns it needs (``Lakehouse.rows``), without a Spark job.
_RUN_COLUMNS = ["run_id", "stage", "seq", "status", "started_at", "ended_at", "message", "profile"]


def _stage_runs(lakehouse: Lakehouse, stage: str, columns: list[str]) -> list[dict]:
    return [r for r in lakehouse.rows(audit_schemas.RUNS, sorted({"stage", *columns})) if r["stage"] == stage]


def _run_row(run: Run, status: str, ended: bool, message: str | None) -> dict:
    return {
        "run_id": run.run_id,
        "stage": run.stage,
        "seq": run.seq,
        "status": status,
        "started_at": run.started_at,
        "ended_at": datetime.now(timezone.utc) if ended else None,
        "rows_in": run.rows_in,
        "rows_out": run.rows_out,
        "tables_read": dict(run.tables_read),
        "tables_written": dict(run.tables_written),
        "inputs": list(run.inputs),
        "message": (message or "")[:4000] or None,
        "profile": run.profile,
    }


def start_run(lakehouse: Lakehouse, stage: str, run_id: str | None = None, profile: str | None = None) -> Run:
    """Record a run as started, and earlier runs of the stage that were killed as ``abandoned``.

    A run id seen before keeps its sequence number: its commits are idempotent. The ``running`` row names the
    host and process (``Owner``), so that a later run can tell a killed run from a live concurrent one.
    """
    ensure_tables(lakehouse)
    run_id = run_id or new_run_id(stage)
    runs = _stage_runs(lakehouse, stage, _RUN_COLUMNS)
    mine = [r for r in runs if r["run_id"] == run_id]
    if mine:
        seq, started = min(r["seq"] for r in mine), min(r["started_at"] for r in mine)
        run = Run(run_id, stage, seq, started.astimezone(timezone.utc), profile)
    else:
        run = Run(run_id, stage, time.time_ns() // 1_000_000, datetime.now(timezone.utc), profile)
    me = this_process()
    rows = [_run_row(run, "running", False, me.line())]
    run.abandoned = _abandoned_rows(runs, run, me.host)
    rows += [r for _, r in run.abandoned]
    _append(lakehouse, audit_schemas.RUNS, rows, run_id)
    return run


def _abandoned_rows(runs: list[dict], run: Run, host: str) -> list[tuple[str, dict]]:
    """``(why, audit row)`` for each run of the stage (``runs``: its audit rows) with no end row whose
    owner is gone."""
    ended = {r["run_id"] for r in runs if r["ended_at"] is not None}
    open_rows = [
        r for r in runs if r["status"] == "running" and r["run_id"] != run.run_id and r["run_id"] not in ended
    ]
    now = datetime.now(timezone.utc)
    out: dict[str, tuple[str, dict]] = {}
    for r in open_rows:
        started = r["started_at"].astimezone(timezone.utc)
        why = abandoned_because(parse_owner(r["message"]), started, now, host)
        if why is None or r["run_id"] in out:
            continue
        dead = Run(r["run_id"], run.stage, r["seq"], started, r["profile"])
        found = f"abandoned: found by run {run.run_id} at {now:%Y-%m-%d %H:%M:%S} UTC, because {why}"
        out[r["run_id"]] = (why, _run_row(dead, "abandoned", True, found))
    return sorted(out.values(), key=lambda x: x[1]["started_at"])


def finish_run(lakehouse: Lakehouse, run: Run, status: str, message: str | None = None) -> None:
    """Record how a run ended: succeeded, gate_failed, failed or refused (``abandoned`` is written for a
    killed run by the next run of its stage, see ``start_run``)."""
    if status not in audit_schemas.RUN_STATUSES:
        raise ValueError(f"unknown run status {status!r}")
    _append(lakehouse, audit_schemas.RUNS, [_run_row(run, status, True, message)], run.run_id)


def record_expectations(lakehouse: Lakehouse, run: Run, results: list, versions: dict[str, int]) -> None:
    """One audit.expectations row per validated suite (``versions``: table → version committed)."""
    now = datetime.now(timezone.utc)
    rows = [
        {
            "run_id": run.run_id,
            "stage": run.stage,
            "table_name": r.table,
            "suite": r.suite,
            "success": r.success,
            "evaluated": r.evaluated,
            "unsuccessful": r.unsuccessful,
            "observed_rows": r.observed_rows,
            "results_json": json.dumps(r.expectations, default=str),
            "table_version": versions.get(r.table),
            "validated_at": now,
        }
        for r in results
    ]
    if rows:
        _append(lakehouse, audit_schemas.EXPECTATIONS, rows, run.run_id)


def check_upstream(lakehouse: Lakehouse, specs: list[TableSpec]) -> dict[str, int]:
    """Refuse to start on a table whose latest gate failed; return the versions about to be read.

    Raises:
        UpstreamNotPassed: naming the table, the failing run and its stage.
    """
    versions: dict[str, int] = {}
    names = [s.name for s in specs]
    if names:
        latest: dict[str, dict] = {}
        cols = ["table_name", "validated_at", "success", "run_id", "stage"]
        for r in lakehouse.rows(audit_schemas.EXPECTATIONS, cols):
            if r["table_name"] in names and (
                r["table_name"] not in latest or r["validated_at"] > latest[r["table_name"]]["validated_at"]
            ):
                latest[r["table_name"]] = r
        for name, last in sorted(latest.items()):
            if not last["success"]:
                raise UpstreamNotPassed(
                    f"{name}: its latest gate failed (run {last['run_id']} of stage "
                    f"{last['stage']}); fix the input and re-run that stage first"
                )
    for spec in specs:
        v = lakehouse.version(spec)
        if v is not None:
            versions[spec.name] = v
    return versions


def succeeded_inputs(lakehouse: Lakehouse, stage: str) -> set[str]:
    """Input fingerprints recorded by succeeded runs of ``stage`` (files already ingested)."""
    runs = _stage_runs(lakehouse, stage, ["status", "inputs"])
    return {fp for r in runs if r["status"] == "succeeded" for fp in r["inputs"] or () if fp}


def ended_runs(lakehouse: Lakehouse, stage: str) -> set[str]:
    """Run ids of ``stage`` that have ended one way or another (an end row, ``abandoned`` included)."""
    runs = _stage_runs(lakehouse, stage, ["run_id", "ended_at"])
    return {r["run_id"] for r in runs if r["ended_at"] is not None}
