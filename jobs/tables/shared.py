"""Helpers both Delta engines share: snapshot files, retention, SQL names, creation races, conflicts."""

from __future__ import annotations

import re
import time
import urllib.parse

import pyarrow as pa

from jobs.tables.base import CommitConflict, join_path
from schemas.base import TableSpec


def delta_files(dt, partition_by: tuple[str, ...] | list[str]) -> list[dict]:
    """A delta-rs snapshot's live files: uri, the log's (encoded) relative path, partition values, rows.

    Shared by ``EmbeddedLakehouse.read`` and the SQL data source, which runs on a Python worker.
    """
    actions = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
    root = dt.table_uri.rstrip("/")
    if root.startswith("file://"):
        root = urllib.parse.unquote(root[len("file://") :])
    out = []
    for a in actions:
        raw = urllib.parse.unquote(a["path"])
        out.append(
            {
                "uri": raw if "://" in raw or raw.startswith("/") else join_path(root, raw),
                "path": a["path"],
                "partition_values": {c: a.get(f"partition.{c}") for c in partition_by},
                "num_records": a.get("num_records"),
                "size_bytes": a.get("size_bytes"),
            }
        )
    return out


_INTERVAL = re.compile(r"(\d+(?:\.\d+)?)\s*(week|day|hour|minute|second|millisecond)s?", re.IGNORECASE)
_HOURS = {
    "week": 168.0,
    "day": 24.0,
    "hour": 1.0,
    "minute": 1 / 60,
    "second": 1 / 3600,
    "millisecond": 1 / 3.6e6,
}


def interval_hours(text: str) -> float:
    """A Delta interval property (``interval 30 days``, ``7 days``, ``interval 1 week``) in hours."""
    found = _INTERVAL.findall(text or "")
    if not found:
        raise ValueError(f"cannot read the interval {text!r}")
    return sum(float(n) * _HOURS[u.lower()] for n, u in found)


def vacuum_retention(spec: TableSpec, configuration: dict, retain_hours: float | None) -> float:
    # Delta drops log entries older than logRetentionDuration at checkpoints: versions younger than that can
    # be time-travelled to, so VACUUM must keep every file they name.
    floor = interval_hours(configuration.get("delta.logRetentionDuration") or "interval 30 days")
    if retain_hours is None:
        return floor
    if retain_hours < floor:
        raise ValueError(
            f"{spec.name}: a retention of {retain_hours:g} h would delete files that versions still in the "
            f"log need (delta.logRetentionDuration is {floor:g} h); lower that table property first"
        )
    return float(retain_hours)


# SQL name → (binding kind, table location) per session (by id), so repeated ``register_sql`` calls are cheap.
_SQL_BINDINGS: dict[int, dict[str, tuple[str, str]]] = {}


def sql_str(v: str) -> str:
    return v.replace("\\", "\\\\").replace("'", "\\'")


def delta_table_ddl(spec: TableSpec, location: str) -> str:
    return f"CREATE TABLE `{spec.layer}`.`{spec.short}` USING delta LOCATION '{sql_str(location)}'"


def bind_sql(spark, specs, path_of, create_if_missing, kind: str, ddl) -> None:
    """Bind each spec's SQL name to its location with ``ddl``; a name already bound the same way is kept."""
    bound = _SQL_BINDINGS.setdefault(id(spark), {})
    for spec in specs:
        create_if_missing(spec)
        location = path_of(spec)
        if bound.get(spec.name) == (kind, location) and spark.catalog.tableExists(spec.name):
            continue
        spark.sql(f"CREATE DATABASE IF NOT EXISTS `{spec.layer}`")
        # An external table: dropping the name never touches the files.
        spark.sql(f"DROP TABLE IF EXISTS `{spec.layer}`.`{spec.short}`")
        spark.sql(ddl(spec, location))
        bound[spec.name] = (kind, location)


def create_once(spec: TableSpec, path: str, create, exists, wait_s: float = 30.0) -> None:
    """Create a table unless another process is creating it right now: then wait until it exists.

    Two stages starting together both find no table; the loser's create fails (the folder already has a
    ``_delta_log`` that holds no commit yet, or version 0 exists). The table it wanted is the winner's.
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            create()
            return
        except Exception as exc:
            if exists():
                return
            if time.monotonic() > deadline:
                msg = f"{spec.name}: could not create table at {path}: {_first_line(exc)}"
                raise RuntimeError(msg) from exc
            time.sleep(0.2)
            if exists():
                return


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_conflict(exc: BaseException) -> bool:
    """A commit lost a race with another writer (delta-rs CommitFailedError, Delta's Concurrent*)."""
    name = type(exc).__name__
    text = str(exc)
    return (
        name == "CommitFailedError"
        or "Concurrent" in name
        or "ConcurrentAppendException" in text
        or "ConcurrentDeleteReadException" in text
        or "ConcurrentDeleteDeleteException" in text
        or "ConcurrentTransactionException" in text
        or "MetadataChangedException" in text
        or "ProtocolChangedException" in text
        or "DELTA_CONCURRENT" in text
    )


def conflict_error(spec: TableSpec, mode: str, exc: BaseException) -> CommitConflict:
    return CommitConflict(
        f"{spec.name}: another writer committed to the table while this {mode} was being committed "
        f"({_first_line(exc)[:300]}); nothing of this run was committed, so re-running it is safe"
    )
