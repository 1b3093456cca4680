"""The delta-spark engine: Delta Lake's Spark classes (Databricks, ``--packages io.delta:…``, cached jars)."""

from __future__ import annotations

import datetime
import logging
import math
import posixpath

from pyspark.sql import DataFrame

from jobs.session import session_settings
from jobs.tables.base import CommitResult, Lakehouse, MaintainResult, StagedWrite, delta_schema
from jobs.tables.embedded import EmbeddedLakehouse
from jobs.tables.shared import (
    bind_sql,
    conflict_error,
    create_once,
    delta_table_ddl,
    is_conflict,
    sql_str,
    vacuum_retention,
)
from schemas.base import TableSpec

log = logging.getLogger("jobs.tables")


# Table features both engines write correctly when delta-rs commits files that Spark wrote. Anything else
# (deletion vectors, column mapping, CHECK constraints, generated columns, …) is left to delta-spark itself.
RS_WRITABLE_READER = 1
RS_WRITABLE_WRITER = 2


# VACUUM lists the table's folders in that many Spark tasks per level of folders (Spark's default: 10,000).
# On a table of a few folders nearly all of them list nothing, and their scheduling is the whole cost: 49 s
# for VACUUM of a 15-folder table on 2 local cores, 4.9 s with one task per folder (2026-11-27).
LISTING = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


def listing_parallelism(current: str, files: list[tuple[str, int]]) -> int:
    """VACUUM's listing tasks: one per folder that holds the table's data files, never more than the
    session's setting (``current``), which a user who set it lower keeps."""
    folders = {posixpath.dirname(path) for path, _ in files}
    return max(1, min(int(current), len(folders)))


class DeltaSparkLakehouse(EmbeddedLakehouse):
    """Delta tables through Delta Lake's Spark classes, with write-audit-publish in one copy of the data.

    Reads (``format("delta")``, ``versionAsOf``), SQL names (catalog tables ``USING delta``), history
    (``DESCRIBE HISTORY``), table creation, score upserts (``MERGE``) and maintenance (``OPTIMIZE``,
    ``VACUUM``) are delta-spark's. Staging is shared with the embedded engine: Spark writes the files into the
    table folder, where no snapshot names them; the gate validates them; the commit adds exactly those files
    to the log. On a table whose protocol both engines write (reader 1, writer ≤ 2, not append-only, no
    invariants: what either creates by default) that commit is a delta-rs log entry, so the data is written
    once. Delta-spark's Python API has no "add these files" call, so on any other table (deletion
    vectors, column mapping, constraints) delta-spark re-writes the staged rows with ``format("delta")``: one
    more copy, every feature honoured. Both engines put the log entry with put-if-absent, so they exclude
    each other on a local or HDFS file system; on S3 both need the same locking (a DynamoDB log store), as
    any two writers do.
    """

    engine = "delta-spark"

    def create_if_missing(self, spec: TableSpec) -> None:
        from delta.tables import DeltaTable

        if self.exists(spec):
            return
        builder = (
            DeltaTable.createIfNotExists(self.spark).location(self.path(spec)).addColumns(delta_schema(spec))
        )
        if spec.partition_by:
            builder = builder.partitionedBy(*spec.partition_by)
        builder = builder.comment(spec.description).property("delta.checkpointInterval", "10")
        create_once(spec, self.path(spec), builder.execute, lambda: self.exists(spec))

    def history(self, spec: TableSpec) -> list[dict]:
        """Newest first, from ``DESCRIBE HISTORY``: version, timestamp (epoch ms), operation, run_id, …"""
        if not self.exists(spec):
            return []
        rows = self.spark.sql(f"DESCRIBE HISTORY delta.`{self.path(spec)}`").collect()
        out = []
        for r in rows:
            h = r.asDict(recursive=True)
            ts = h.get("timestamp")
            if isinstance(ts, datetime.datetime):
                h["timestamp"] = int(ts.replace(tzinfo=ts.tzinfo or datetime.timezone.utc).timestamp() * 1000)
            # Every corpuslake commit records its run id as userMetadata (DESCRIBE HISTORY shows no other
            # custom commit fields).
            h["run_id"] = h.get("userMetadata")
            out.append(h)
        return out

    def read(self, spec: TableSpec, version: int | None = None) -> DataFrame:
        if not self.exists(spec):
            if version is not None:
                raise ValueError(f"{spec.name}: no table at {self.path(spec)}, so no version {version}")
            return self._empty(spec)
        reader = self.spark.read.format("delta")
        if version is not None:
            latest = self.version(spec) or 0
            if not 0 <= version <= latest:
                raise ValueError(f"{spec.name}: no version {version} (versions 0 to {latest})")
            reader = reader.option("versionAsOf", version)
        return reader.load(self.path(spec)).select(*[f.name for f in spec.schema.fields])

    def rows(self, spec: TableSpec, columns: list[str] | None = None) -> list[dict]:
        # delta-rs reads what it could write; a table with other features is read through Spark.
        if self.exists(spec) and not self.rs_writable(spec):
            return Lakehouse.rows(self, spec, columns)
        return super().rows(spec, columns)

    def rs_writable(self, spec: TableSpec, dt=None) -> bool:
        """Whether delta-rs may commit Spark-written files to this table (see the class docstring); ``dt``:
        the table as just opened (default: the latest version)."""
        dt = dt or self._dt(spec)
        p = dt.protocol()
        conf = dt.metadata().configuration
        return (
            p.min_reader_version <= RS_WRITABLE_READER
            and p.min_writer_version <= RS_WRITABLE_WRITER
            and str(conf.get("delta.appendOnly", "false")).lower() != "true"
            and "delta.invariants" not in dt.schema().to_json()
        )

    def _commit(
        self, staged: StagedWrite, app_id, txn_version, metadata, merge_on, read_version=None, fresh=False
    ) -> CommitResult:
        spec = staged.spec
        if merge_on:
            return self._merge(staged, merge_on)
        # The snapshot the commit is built on answers the protocol question too (a log listing less).
        dt = self._commit_base(spec, read_version, fresh)
        if self.rs_writable(spec, dt):
            return super()._commit(staged, app_id, txn_version, metadata, merge_on, read_version, fresh, dt)
        writer = staged.dataframe().write.format("delta").option("userMetadata", staged.run_id)
        if app_id and txn_version is not None:
            writer = writer.option("txnAppId", app_id).option("txnVersion", txn_version)
        if staged.mode == "overwrite-partition":
            writer = writer.mode("overwrite").option("partitionOverwriteMode", "dynamic")
        else:
            writer = writer.mode(staged.mode)
        try:
            writer.save(self.path(spec))
        except Exception as exc:
            if is_conflict(exc):
                raise conflict_error(spec, staged.mode, exc) from None
            raise
        return self._copied(staged)

    def _copied(self, staged: StagedWrite) -> CommitResult:
        """After delta-spark wrote the staged rows into the table: drop the staging, report the version."""
        self._remove_tree(staged.path)
        staged.done = True
        return CommitResult(
            staged.spec.name, self.version(staged.spec) or 0, files=len(staged.files), rows=staged.rows
        )

    def _merge(self, staged: StagedWrite, keys: list[str], attempts: int = 3) -> CommitResult:
        # Insert-only MERGE on the key columns: a retried or concurrent chunk whose rows already landed adds
        # nothing, so each key is scored once. A concurrent append to the table makes Delta refuse the MERGE
        # (it read the old snapshot); re-running it against the new one is safe, so retry a few times.
        from delta.tables import DeltaTable

        spec = staged.spec
        cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
        source = staged.dataframe()
        with session_settings(self.spark, {"spark.databricks.delta.commitInfo.userMetadata": staged.run_id}):
            for attempt in range(1, attempts + 1):
                try:
                    target = DeltaTable.forPath(self.spark, self.path(spec)).alias("t")
                    target.merge(source.alias("s"), cond).whenNotMatchedInsertAll().execute()
                    break
                except Exception as exc:
                    if not is_conflict(exc):
                        raise
                    if attempt == attempts:
                        raise conflict_error(spec, "merge", exc) from None
                    log.info("%s: concurrent commit during MERGE, retrying (%d)", spec.name, attempt)
        return self._copied(staged)

    def register_sql(self, specs) -> None:
        """Make ``layer.table`` a Delta catalog table over its location (history and time travel in SQL)."""
        bind_sql(self.spark, specs, self.path, self.create_if_missing, "delta", delta_table_ddl)

    def maintain(self, spec: TableSpec, retain_hours: float | None = None) -> MaintainResult:
        """``OPTIMIZE`` then ``VACUUM … RETAIN`` (see ``EmbeddedLakehouse.maintain`` for the retention)."""
        dt = self._maintained(spec)
        retain = vacuum_retention(spec, dt.metadata().configuration, retain_hours)
        path = sql_str(self.path(spec))
        files = self._list_parquet(self.path(spec))
        before = len(files)
        metrics = self.spark.sql(f"OPTIMIZE delta.`{path}`").first()["metrics"]
        settings = {LISTING: str(listing_parallelism(self.spark.conf.get(LISTING), files))}
        # Delta's own guard refuses less than 7 days; a table whose log retention is shorter asked for it.
        if retain < 168:
            settings["spark.databricks.delta.retentionDurationCheck.enabled"] = "false"
        with session_settings(self.spark, settings):
            self.spark.sql(f"VACUUM delta.`{path}` RETAIN {math.ceil(retain)} HOURS").collect()
        after = len(self._list_parquet(self.path(spec)))
        added = int(metrics["numFilesAdded"] or 0)
        removed = int(metrics["numFilesRemoved"] or 0)
        return MaintainResult(
            spec.name,
            self.version(spec) or 0,
            removed,
            added,
            max(0, before + added - after),
            before,
            after,
            retain,
        )
