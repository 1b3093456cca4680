"""audit.runs and audit.expectations: what ran, what it read and wrote, and what its gates said."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pyspark.sql import functions as F

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


def new_run_id(stage: str) -> str:
    return f"{stage}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def ensure_tables(lakehouse: Lakehouse) -> None:
    for spec in audit_schemas.TABLES:
        lakehouse.create_if_missing(spec)


def _append(lakehouse: Lakehouse, spec: TableSpec, rows: list[dict], run_id: str) -> None:
    df = lakehouse.spark.createDataFrame(rows, spec.schema)
    lakehouse.write(df, spec, "append", run_id=run_id)


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
    """Record a run as started. A run id seen before keeps its sequence number: its commits are idempotent."""
    ensure_tables(lakehouse)
    run_id = run_id or new_run_id(stage)
    prior = (
        lakehouse.read(audit_schemas.RUNS)
        .filter((F.col("run_id") == run_id) & (F.col("stage") == stage))
        .agg(F.min("seq").alias("seq"), F.min("started_at").alias("started_at"))
        .first()
    )
    if prior is not None and prior["seq"] is not None:
        run = Run(run_id, stage, prior["seq"], prior["started_at"].astimezone(timezone.utc), profile)
    else:
        run = Run(run_id, stage, time.time_ns() // 1_000_000, datetime.now(timezone.utc), profile)
    _append(lakehouse, audit_schemas.RUNS, [_run_row(run, "running", False, None)], run_id)
    return run


def finish_run(lakehouse: Lakehouse, run: Run, status: str, message: str | None = None) -> None:
    """Record how a run ended: succeeded, gate_failed, failed or refused."""
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
        latest = (
            lakehouse.read(audit_schemas.EXPECTATIONS)
            .filter(F.col("table_name").isin(names))
            .groupBy("table_name")
            .agg(F.max_by(F.struct("success", "run_id", "stage"), "validated_at").alias("last"))
            .collect()
        )
        for row in latest:
            if not row["last"]["success"]:
                raise UpstreamNotPassed(
                    f"{row['table_name']}: its latest gate failed (run {row['last']['run_id']} of stage "
                    f"{row['last']['stage']}); fix the input and re-run that stage first"
                )
    for spec in specs:
        v = lakehouse.version(spec)
        if v is not None:
            versions[spec.name] = v
    return versions


def succeeded_inputs(lakehouse: Lakehouse, stage: str) -> set[str]:
    """Input fingerprints recorded by succeeded runs of ``stage`` (files already ingested)."""
    rows = (
        lakehouse.read(audit_schemas.RUNS)
        .filter((F.col("stage") == stage) & (F.col("status") == "succeeded"))
        .select(F.explode_outer("inputs").alias("fp"))
        .distinct()
        .collect()
    )
    return {r["fp"] for r in rows if r["fp"]}
