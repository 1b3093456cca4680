"""The embedded engine: Spark writes the Parquet files, the driver commits them with delta-rs as ONE commit.

Reads list the snapshot's files through delta-rs and hand them to Spark, so removed or never-committed files
are never read. No Delta jars needed: laptops, CI, and any place where a commit must not rewrite data.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
import uuid

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StringType, StructField, StructType

from jobs.tables.base import (
    CommitResult,
    Lakehouse,
    MaintainResult,
    StagedWrite,
    TableMoved,
    delta_schema,
    fs_and_path,
    join_path,
    safe_name,
)
from jobs.tables.shared import (
    bind_sql,
    conflict_error,
    create_once,
    delta_files,
    delta_table_ddl,
    is_conflict,
    vacuum_retention,
)
from schemas.base import TableSpec


class EmbeddedLakehouse(Lakehouse):
    """Delta tables committed by delta-rs; Spark writes and reads the Parquet files."""

    engine = "embedded"

    def __init__(self, spark: SparkSession, warehouse: str, storage_options: dict[str, str] | None = None):
        super().__init__(spark, warehouse, storage_options)
        # One open delta-rs table per name, refreshed by reading only the commits since: replaying the whole
        # log on every call made commit cost grow with the table's history.
        self._open_tables: dict[str, object] = {}

    def _dt(self, spec: TableSpec, version: int | None = None):
        from deltalake import DeltaTable

        if version is not None:
            try:
                return DeltaTable(self.path(spec), version=version, storage_options=self.storage_options)
            except Exception as exc:
                latest = self.version(spec)
                if latest is not None and not 0 <= version <= latest:
                    raise ValueError(f"{spec.name}: no version {version} (versions 0 to {latest})") from None
                raise exc
        dt = self._open_tables.get(spec.name)
        if dt is None:
            dt = self._open_tables[spec.name] = DeltaTable(
                self.path(spec), storage_options=self.storage_options
            )
        else:
            dt.update_incremental()
        return dt

    def exists(self, spec: TableSpec) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self.path(spec), storage_options=self.storage_options)

    def create_if_missing(self, spec: TableSpec) -> None:
        from deltalake import DeltaTable

        if self.exists(spec):
            return

        def create() -> None:
            DeltaTable.create(
                self.path(spec),
                schema=to_arrow_schema(delta_schema(spec)),
                partition_by=list(spec.partition_by) or None,
                mode="ignore",
                name=spec.name,
                description=spec.description,
                # Frequent checkpoints keep log replay (every open and every commit) short as tables grow.
                configuration={"delta.checkpointInterval": "10"},
                storage_options=self.storage_options,
            )

        create_once(spec, self.path(spec), create, lambda: self.exists(spec))

    def _latest(self, spec: TableSpec):
        """The open table, refreshed, or None when there is no table.

        A table this lakehouse has open is refreshed without asking first whether it exists: that check
        lists the log again, and on every commit it was about a tenth of the commit's time (bench/ingest.py).
        """
        if spec.name in self._open_tables:
            try:
                return self._dt(spec)
            except Exception:  # removed since (a test's rmtree): ask the storage again
                self._open_tables.pop(spec.name, None)
        return self._dt(spec) if self.exists(spec) else None

    def version(self, spec: TableSpec) -> int | None:
        dt = self._latest(spec)
        return None if dt is None else dt.version()

    def transaction_version(self, spec: TableSpec, app_id: str) -> int | None:
        dt = self._latest(spec)
        return None if dt is None else dt.transaction_version(app_id)

    def history(self, spec: TableSpec) -> list[dict]:
        """Newest first: version, timestamp, operation, run_id and the rest of the commit info."""
        if not self.exists(spec):
            return []
        return self._dt(spec).history()

    def commit_info(self, spec: TableSpec, key: str) -> list[tuple[int, str | None, str]]:
        # delta-rs history on either engine: DESCRIBE HISTORY shows no custom commit fields.
        if not self.exists(spec):
            return []
        found = [
            (int(h["version"]), h.get("run_id") or h.get("userMetadata"), h[key])
            for h in self._dt(spec).history()
            if h.get(key) is not None
        ]
        return sorted(found)

    def snapshot_files(self, spec: TableSpec, version: int | None = None) -> list[dict]:
        """The live files of a version: uri, encoded relative path and partition values."""
        return delta_files(self._dt(spec, version), spec.partition_by)

    def read(self, spec: TableSpec, version: int | None = None) -> DataFrame:
        """The table (or its ``version``) as a DataFrame, read from the snapshot's file list only."""
        if not self.exists(spec):
            if version is not None:
                raise ValueError(f"{spec.name}: no table at {self.path(spec)}, so no version {version}")
            return self._empty(spec)
        files = self.snapshot_files(spec, version)
        if not files:
            return self._empty(spec)
        uris = [f["uri"] for f in files]
        df = self.spark.read.schema(spec.data_schema).parquet(*uris)
        if spec.partition_by:
            # Partition values come from the log. Key each file by its last segments (partition folders +
            # file name), which Spark's _metadata.file_path and the log's path encode the same way.
            depth = len(spec.partition_by) + 1
            rows = [
                (
                    "/".join(f["path"].split("/")[-depth:]),
                    *[f["partition_values"][c] for c in spec.partition_by],
                )
                for f in files
            ]
            part_schema = StructType(
                [StructField("_cl_key", StringType(), False)]
                + [f for f in spec.schema.fields if f.name in spec.partition_by]
            )
            parts = self.spark.createDataFrame(rows, part_schema)
            key = F.array_join(F.slice(F.split(F.col("_metadata.file_path"), "/"), -depth, depth), "/")
            df = df.withColumn("_cl_key", key).join(F.broadcast(parts), "_cl_key").drop("_cl_key")
        return df.select(*[f.name for f in spec.schema.fields])

    def rows(self, spec: TableSpec, columns: list[str] | None = None) -> list[dict]:
        """``Lakehouse.rows`` through delta-rs on the driver: no Spark job (see there)."""
        if not self.exists(spec):
            return []
        return plain_rows(self._dt(spec).to_pyarrow_table(columns=columns))

    def append_rows(self, spec: TableSpec, rows: list[dict], run_id: str) -> CommitResult:
        """``Lakehouse.append_rows`` with the Parquet file written by pyarrow on the driver (no Spark job);
        staging and commit are the same as for any write."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if spec.partition_by:
            return super().append_rows(spec, rows, run_id)
        self.create_if_missing(spec)
        table = pa.Table.from_pylist(rows, schema=to_arrow_schema(delta_schema(spec)))
        folder = join_path(self.path(spec), f"run-{safe_name(run_id)}-{uuid.uuid4().hex[:8]}")
        staged = StagedWrite(self, spec, "append", run_id, folder)
        try:
            fs, base = fs_and_path(folder)
            fs.create_dir(base, recursive=True)
            pq.write_table(table, f"{base}/part-00000-{uuid.uuid4()}.snappy.parquet", filesystem=fs)
            self._describe_files(staged, self.path(spec))
            return self.commit(staged)
        except BaseException:
            self.abort(staged)
            raise

    def _stage(self, df: DataFrame, spec: TableSpec, mode: str, run_id: str) -> StagedWrite:
        folder = join_path(self.path(spec), f"run-{safe_name(run_id)}-{uuid.uuid4().hex[:8]}")
        staged = StagedWrite(self, spec, mode, run_id, folder)
        try:
            self._spark_write(df, spec, folder)
            self._describe_files(staged, self.path(spec))
        except BaseException:
            self._remove_tree(folder)
            raise
        return staged

    def _landed(self, staged: StagedWrite) -> bool:
        try:
            live = {urllib.parse.unquote(f["path"]) for f in self.snapshot_files(staged.spec)}
        except Exception:
            return True  # cannot tell: keeping orphan files is safe, deleting table data is not
        return any(f["path"] in live for f in staged.files)

    def _commit_base(self, spec: TableSpec, read_version: int | None, fresh: bool = False):
        """The snapshot a commit is built on: the latest, or the version its rows were checked against (a
        commit in between then makes this one fail). ``fresh``: the open table was refreshed just now (by
        ``commit``'s own checks), so it is used as it is rather than listing the log again, and when it is at
        ``read_version`` rather than loading that version from the log."""
        open_dt = self._open_tables.get(spec.name) if fresh else None
        if open_dt is not None and (read_version is None or open_dt.version() == read_version):
            return open_dt
        return self._dt(spec) if read_version is None else self._dt(spec, read_version)

    def _commit(
        self,
        staged: StagedWrite,
        app_id,
        txn_version,
        metadata,
        merge_on,
        read_version=None,
        fresh: bool = False,
        dt=None,
    ) -> CommitResult:
        """See ``Lakehouse.commit``; ``dt``: the snapshot to build on, when the caller already opened it
        (``_commit_base``)."""
        from deltalake.transaction import AddAction, CommitProperties, RemoveAction, Transaction

        spec = staged.spec
        now = int(time.time() * 1000)
        actions: list = [
            AddAction(
                f["path"],
                f["size"],
                f["partition_values"],
                now,
                True,
                json.dumps({"numRecords": f["num_records"]}),
            )
            for f in staged.files
        ]
        mode = "overwrite" if staged.mode == "overwrite" else "append"
        if staged.mode == "overwrite-partition":
            replaced = {json.dumps(p, sort_keys=True) for p in staged.partition_values()}
            for f in self.snapshot_files(spec):
                if json.dumps(f["partition_values"], sort_keys=True) in replaced:
                    actions.append(
                        RemoveAction(urllib.parse.unquote(f["path"]), True, now, None, f["partition_values"])
                    )
        info = {"userMetadata": staged.run_id, "corpuslake.table": spec.name, "corpuslake.mode": staged.mode}
        info.update(metadata)
        props = CommitProperties(
            custom_metadata=info,
            app_transactions=[Transaction(app_id, txn_version)]
            if app_id and txn_version is not None
            else None,
            # Blind appends commute, so delta-rs may retry them on top of a newer version. An overwrite's
            # removes were computed from the snapshot it was built on: retried on a newer one it would keep
            # the other writer's files (a union, not a replacement). It must lose the race instead, and so
            # must an append whose rows were checked against one version (read_version).
            max_commit_retries=None if staged.mode == "append" and read_version is None else 0,
        )
        dt = dt or self._commit_base(spec, read_version, fresh)
        try:
            dt.create_write_transaction(
                actions,
                mode=mode,
                # The table's own schema: a commit adds files, it never changes the table's metadata.
                schema=dt.schema(),
                partition_by=list(spec.partition_by) or None,
                commit_properties=props,
            )
        except Exception as exc:
            # An error can come after the log entry landed (a lost response from an object store): then the
            # staged files are table data and must never be removed by an abort.
            staged.done = self._landed(staged)
            if not staged.done and is_conflict(exc):
                if read_version is not None:
                    raise TableMoved(spec.name, read_version) from None
                raise conflict_error(spec, staged.mode, exc) from None
            raise
        staged.done = True
        dt = self._dt(spec)
        return CommitResult(spec.name, dt.version(), files=len(staged.files), rows=staged.rows)

    def register_sql(self, specs) -> None:
        """Make ``layer.table`` queryable from Spark SQL.

        With Delta's SQL extension in the session (its jars are cached, see ``jobs.jars``) the name is a
        Delta catalog table over the location, as on delta-spark: ``DESCRIBE HISTORY``, ``VERSION AS OF`` and
        ``TIMESTAMP AS OF`` work. Without it, a Python data source over the latest snapshot (no time travel:
        Spark does not pass a version to Python sources).
        """
        from jobs.session import delta_classes_loadable

        if delta_classes_loadable(self.spark):
            bind_sql(self.spark, specs, self.path, self.create_if_missing, "delta", delta_table_ddl)
            return
        from jobs.sql_source import register_table

        def ddl(spec: TableSpec, location: str) -> str:
            source = register_table(self.spark, spec.name, location, spec.schema, spec.partition_by)
            return f"CREATE TABLE `{spec.layer}`.`{spec.short}` USING {source}"

        bind_sql(self.spark, specs, self.path, self.create_if_missing, "source", ddl)

    def maintain(self, spec: TableSpec, retain_hours: float | None = None) -> MaintainResult:
        """Compact small files (delta-rs ``optimize.compact``), then VACUUM what no readable version needs.

        Args:
            spec: the table.
            retain_hours: files removed from the table (or never committed) longer ago than this are
                deleted. Default and floor: the table's ``delta.logRetentionDuration`` (30 days unless set),
                so every version still in the log stays readable; lower that property to keep less.

        Raises:
            ValueError: ``retain_hours`` below the log retention, or no table.
        """
        dt = self._maintained(spec)
        retain = vacuum_retention(spec, dt.metadata().configuration, retain_hours)
        before = len(self._list_parquet(self.path(spec)))
        metrics = dt.optimize.compact()
        dt.update_incremental()
        # Files the log still needs are never candidates; removed files and, with full=True, files no log
        # entry ever named (a killed run's staging, as delta-spark's VACUUM does) go once older than that.
        deleted = dt.vacuum(
            retention_hours=math.ceil(retain), dry_run=False, enforce_retention_duration=False, full=True
        )
        dt.update_incremental()
        return MaintainResult(
            spec.name,
            dt.version(),
            int(metrics.get("numFilesRemoved", 0)),
            int(metrics.get("numFilesAdded", 0)),
            len(deleted),
            before,
            len(self._list_parquet(self.path(spec))),
            retain,
        )

    def _maintained(self, spec: TableSpec):
        if not self.exists(spec):
            raise ValueError(f"{spec.name}: no table at {self.path(spec)}")
        return self._dt(spec)


def plain_rows(table) -> list[dict]:
    """A pyarrow table's rows as Spark's ``Row.asDict(recursive=True)`` gives them, maps as dicts (pyarrow
    gives a map as a list of pairs)."""
    import pyarrow as pa

    maps = [f.name for f in table.schema if pa.types.is_map(f.type)]
    rows = table.to_pylist()
    for r in rows:
        for name in maps:
            if r[name] is not None:
                r[name] = dict(r[name])
    return rows
