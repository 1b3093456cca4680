"""Delta tables on two engines behind one small API.

* ``EmbeddedLakehouse`` (default offline, in CI): Spark writes the Parquet files into the table folder, the
  driver commits them with delta-rs as ONE Delta commit. Reads list the snapshot's files through delta-rs and
  hand them to Spark, so removed or never-committed files are never read.
* ``DeltaSparkLakehouse`` (where Delta's Spark classes load: Databricks, ``--packages io.delta:…``):
  ``format("delta")`` with Delta's own idempotent-write options.

Both follow the same protocol, which the gates rely on: ``stage`` (files written, nothing visible) →
validate ``staged.dataframe()`` → ``commit`` or ``abort``. A commit carries ``Transaction(app_id, version)``
so a retried run with the same run sequence number adds nothing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import ArrayType, DataType, MapType, StringType, StructField, StructType

from schemas.base import TableSpec

log = logging.getLogger(__name__)

WriteMode = Literal["append", "overwrite", "overwrite-partition"]
WRITE_MODES: tuple[str, ...] = ("append", "overwrite", "overwrite-partition")
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


class SchemaMismatch(ValueError):
    """A DataFrame does not match its table's schema; the message lists every difference."""


class CommitConflict(RuntimeError):
    """A newer run of the same job already committed to the table."""


def _type_str(t: DataType) -> str:
    return t.simpleString()


def _strip_nullability(t: DataType) -> DataType:
    # Spark marks most derived columns nullable; nullability is enforced by the suite's not-null checks.
    if isinstance(t, StructType):
        return StructType([type(f)(f.name, _strip_nullability(f.dataType), True) for f in t.fields])
    if isinstance(t, ArrayType):
        return ArrayType(_strip_nullability(t.elementType), True)
    if isinstance(t, MapType):
        return MapType(_strip_nullability(t.keyType), _strip_nullability(t.valueType), True)
    return t


def schema_differences(actual: StructType, expected: StructType) -> list[str]:
    """Missing, extra and mistyped columns of ``actual`` against ``expected`` (names are case-sensitive)."""
    act = {f.name: f.dataType for f in actual.fields}
    exp = {f.name: f.dataType for f in expected.fields}
    diffs = [f"missing column {n} ({_type_str(t)})" for n, t in exp.items() if n not in act]
    diffs += [f"extra column {n} ({_type_str(t)})" for n, t in act.items() if n not in exp]
    diffs += [
        f"column {n} is {_type_str(act[n])}, expected {_type_str(t)}"
        for n, t in exp.items()
        if n in act and _strip_nullability(act[n]) != _strip_nullability(t)
    ]
    return diffs


def conform(df: DataFrame, spec: TableSpec) -> DataFrame:
    """Check ``df`` against the table schema and put its columns in table order.

    Raises:
        SchemaMismatch: listing every missing, extra or mistyped column.
    """
    diffs = schema_differences(df.schema, spec.schema)
    if diffs:
        raise SchemaMismatch(f"{spec.name}: DataFrame does not match the table schema: " + "; ".join(diffs))
    return df.select(*[F.col(f.name) for f in spec.schema.fields])


def safe_name(run_id: str) -> str:
    """A run id made safe for a folder name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)[:80]


@dataclass
class CommitResult:
    """What a commit did: the table version it made, or that it was already committed."""

    table: str
    version: int
    skipped: bool = False
    files: int = 0
    rows: int = 0


@dataclass
class StagedWrite:
    """Files written for one table by one run, not yet visible to readers."""

    lakehouse: Lakehouse
    spec: TableSpec
    mode: str
    run_id: str
    path: str
    files: list[dict] = field(default_factory=list)
    rows: int = 0
    done: bool = False

    def dataframe(self) -> DataFrame:
        """The staged rows (with partition columns), as validators and counts should see them."""
        return self.lakehouse._read_staged(self)

    def partition_values(self) -> list[dict[str, str | None]]:
        seen = {json.dumps(f["partition_values"], sort_keys=True) for f in self.files}
        return [json.loads(s) for s in sorted(seen)]


def _fs_and_path(uri: str) -> tuple[pafs.FileSystem, str]:
    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    return pafs.FileSystem.from_uri(uri.replace("s3a://", "s3://", 1))


def _join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


class Lakehouse:
    """The table API every job uses. Build one with ``open_lakehouse``.

    Args:
        spark: the session (passed in, never a global).
        warehouse: root folder or URI; table ``layer.name`` lives at ``<warehouse>/<layer>/<name>``.
        storage_options: object-store options for delta-rs.
    """

    engine = "abstract"

    def __init__(self, spark: SparkSession, warehouse: str, storage_options: dict[str, str] | None = None):
        self.spark = spark
        self.warehouse = warehouse if "://" in warehouse else os.path.abspath(warehouse)
        self.storage_options = storage_options or None

    # -- shared helpers ------------------------------------------------------------------------------
    def path(self, spec: TableSpec) -> str:
        return _join(self.warehouse, spec.layer, spec.short)

    def _empty(self, spec: TableSpec) -> DataFrame:
        return self.spark.createDataFrame([], spec.schema)

    def _list_parquet(self, folder: str) -> list[tuple[str, int]]:
        fs, base = _fs_and_path(folder)
        try:
            infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        except FileNotFoundError:
            return []
        return sorted(
            (i.path, i.size)
            for i in infos
            if i.type == pafs.FileType.File
            and i.base_name.endswith(".parquet")
            and not i.base_name.startswith(".")
        )

    def _remove_tree(self, folder: str) -> None:
        fs, base = _fs_and_path(folder)
        try:
            fs.delete_dir(base)
        except (FileNotFoundError, OSError):
            pass

    def _read_staged(self, staged: StagedWrite) -> DataFrame:
        if not staged.files:
            return self._empty(staged.spec)
        reader = self.spark.read.schema(staged.spec.schema).option("basePath", staged.path)
        # Partition columns come back from the key=value folder names, exactly as they will be committed.
        return reader.parquet(staged.path).select(*[f.name for f in staged.spec.schema.fields])

    def _spark_write(self, df: DataFrame, spec: TableSpec, folder: str) -> None:
        writer = df.write.mode("errorifexists").option("compression", "snappy")
        if spec.partition_by:
            writer = writer.partitionBy(*spec.partition_by)
        writer.parquet(folder)

    def _describe_files(self, staged: StagedWrite, table_root: str) -> None:
        # Footers only: row counts for the log's stats without scanning the data.
        fs, root = _fs_and_path(table_root)
        for path, size in self._list_parquet(staged.path):
            rel = os.path.relpath(path, root) if "://" not in table_root else path[len(root) + 1 :]
            pvals: dict[str, str | None] = {}
            for seg in rel.split("/")[:-1]:
                if "=" in seg:
                    k, v = seg.split("=", 1)
                    if k in staged.spec.partition_by:
                        v = urllib.parse.unquote(v)
                        pvals[k] = None if v == HIVE_NULL else v
            with fs.open_input_file(path) as fh:
                num_rows = pq.ParquetFile(fh).metadata.num_rows
            staged.files.append(
                {"path": rel, "size": size, "partition_values": pvals, "num_records": num_rows}
            )
            staged.rows += num_rows

    # -- the API ------------------------------------------------------------------------------------
    def exists(self, spec: TableSpec) -> bool:
        raise NotImplementedError

    def create_if_missing(self, spec: TableSpec) -> None:
        raise NotImplementedError

    def read(self, spec: TableSpec, version: int | None = None) -> DataFrame:
        raise NotImplementedError

    def version(self, spec: TableSpec) -> int | None:
        raise NotImplementedError

    def history(self, spec: TableSpec) -> list[dict]:
        raise NotImplementedError

    def transaction_version(self, spec: TableSpec, app_id: str) -> int | None:
        raise NotImplementedError

    def register_sql(self, specs: list[TableSpec] | tuple[TableSpec, ...]) -> None:
        raise NotImplementedError

    def stage(self, df: DataFrame, spec: TableSpec, mode: WriteMode, run_id: str) -> StagedWrite:
        """Write ``df``'s files where no reader sees them yet.

        Raises:
            SchemaMismatch: the DataFrame's columns differ from the table's.
            ValueError: unknown mode, or overwrite-partition on an unpartitioned table.
        """
        if mode not in WRITE_MODES:
            raise ValueError(f"{spec.name}: unknown write mode {mode!r}; use one of {', '.join(WRITE_MODES)}")
        if mode == "overwrite-partition" and not spec.partition_by:
            raise ValueError(f"{spec.name}: overwrite-partition needs a partitioned table")
        df = conform(df, spec)
        self.create_if_missing(spec)
        return self._stage(df, spec, mode, run_id)

    def _stage(self, df: DataFrame, spec: TableSpec, mode: str, run_id: str) -> StagedWrite:
        raise NotImplementedError

    def commit(
        self, staged: StagedWrite, app_id: str | None = None, txn_version: int | None = None, **metadata: str
    ) -> CommitResult:
        """Make the staged files the table's next version, in one commit.

        Args:
            staged: what ``stage`` returned.
            app_id: the job's Delta transaction id (e.g. ``corpuslake.ingest``); with ``txn_version`` it makes
                the commit idempotent: a version already recorded for this app adds nothing.
            txn_version: the run sequence number.
            **metadata: extra commit info (run_id is always recorded, also as ``userMetadata``).

        Raises:
            CommitConflict: a newer run of the same app already committed to this table.
        """
        if staged.done:
            raise RuntimeError(f"{staged.spec.name}: staged write already committed or aborted")
        if app_id is not None and txn_version is not None:
            current = self.transaction_version(staged.spec, app_id)
            if current is not None and current == txn_version:
                self.abort(staged)
                return CommitResult(staged.spec.name, self.version(staged.spec) or 0, skipped=True)
            if current is not None and current > txn_version:
                self.abort(staged)
                raise CommitConflict(
                    f"{staged.spec.name}: {app_id} already committed run sequence {current}, newer than "
                    f"{txn_version}; start a new run instead of retrying the old one"
                )
        _fault_point("before_commit", staged.spec.name)
        result = self._commit(staged, app_id, txn_version, {"run_id": staged.run_id, **metadata})
        staged.done = True
        return result

    def _commit(self, staged, app_id, txn_version, metadata) -> CommitResult:
        raise NotImplementedError

    def abort(self, staged: StagedWrite) -> None:
        """Remove the staged files; nothing was ever visible."""
        if not staged.done:
            self._remove_tree(staged.path)
            staged.done = True

    def write(
        self,
        df: DataFrame,
        spec: TableSpec,
        mode: WriteMode = "append",
        run_id: str | None = None,
        app_id: str | None = None,
        txn_version: int | None = None,
        **metadata: str,
    ) -> CommitResult:
        """Stage and commit in one step (no gate). Gated writes go through ``jobs.gates.publish``."""
        staged = self.stage(df, spec, mode, run_id or f"adhoc-{uuid.uuid4().hex[:12]}")
        try:
            return self.commit(staged, app_id, txn_version, **metadata)
        except BaseException:
            self.abort(staged)
            raise


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
                "uri": raw if "://" in raw or raw.startswith("/") else _join(root, raw),
                "path": a["path"],
                "partition_values": {c: a.get(f"partition.{c}") for c in partition_by},
                "num_records": a.get("num_records"),
                "size_bytes": a.get("size_bytes"),
            }
        )
    return out


_FAULT_COUNTS: dict[str, int] = {}


def _fault_point(name: str, table: str) -> None:
    # Test hook: the atomicity and resume tests SIGKILL the process at named points of a write.
    # CORPUSLAKE_FAULT=<point> dies at the first; <point>:<table>:<n> at the n-th commit to that table.
    want = os.environ.get("CORPUSLAKE_FAULT")
    if not want:
        return
    if want == name:
        os.kill(os.getpid(), 9)
    parts = want.split(":")
    if len(parts) == 3 and parts[0] == name and parts[1] == table:
        _FAULT_COUNTS[table] = _FAULT_COUNTS.get(table, 0) + 1
        if _FAULT_COUNTS[table] == int(parts[2]):
            os.kill(os.getpid(), 9)


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
            return DeltaTable(self.path(spec), version=version, storage_options=self.storage_options)
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
        try:
            DeltaTable.create(
                self.path(spec),
                schema=to_arrow_schema(spec.schema),
                partition_by=list(spec.partition_by) or None,
                mode="ignore",
                name=spec.name,
                description=spec.description,
                # Frequent checkpoints keep log replay (every open and every commit) short as tables grow.
                configuration={"delta.checkpointInterval": "10"},
                storage_options=self.storage_options,
            )
        except Exception as exc:  # another writer created it between the check and the create
            if not self.exists(spec):
                raise RuntimeError(
                    f"{spec.name}: could not create table at {self.path(spec)}: {exc}"
                ) from exc

    def version(self, spec: TableSpec) -> int | None:
        return self._dt(spec).version() if self.exists(spec) else None

    def transaction_version(self, spec: TableSpec, app_id: str) -> int | None:
        return self._dt(spec).transaction_version(app_id) if self.exists(spec) else None

    def history(self, spec: TableSpec) -> list[dict]:
        """Newest first: version, timestamp, operation, run_id and the rest of the commit info."""
        if not self.exists(spec):
            return []
        return self._dt(spec).history()

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

    def _stage(self, df: DataFrame, spec: TableSpec, mode: str, run_id: str) -> StagedWrite:
        folder = _join(self.path(spec), f"run-{safe_name(run_id)}-{uuid.uuid4().hex[:8]}")
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

    def _commit(self, staged: StagedWrite, app_id, txn_version, metadata) -> CommitResult:
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
        )
        dt = self._dt(spec)
        try:
            dt.create_write_transaction(
                actions,
                mode=mode,
                schema=to_arrow_schema(spec.schema),
                partition_by=list(spec.partition_by) or None,
                commit_properties=props,
            )
        except Exception:
            # An error can come after the log entry landed (a lost response from an object store): then the
            # staged files are table data and must never be removed by an abort.
            staged.done = self._landed(staged)
            raise
        staged.done = True
        dt.update_incremental()
        return CommitResult(spec.name, dt.version(), files=len(staged.files), rows=staged.rows)

    def register_sql(self, specs) -> None:
        """Make ``layer.table`` queryable from Spark SQL (a catalog table over a Delta-snapshot source)."""
        from jobs.sql_source import register_table

        # A name already bound to this location in this session is left alone: a source resolves the latest
        # snapshot at query time, so rebinding only costs (each CREATE TABLE asks a Python worker).
        bound = _SQL_BINDINGS.setdefault(id(self.spark), {})
        for spec in specs:
            self.create_if_missing(spec)
            location = self.path(spec)
            if bound.get(spec.name) == location and self.spark.catalog.tableExists(spec.name):
                continue
            source = register_table(self.spark, spec.name, location, spec.schema, spec.partition_by)
            self.spark.sql(f"CREATE DATABASE IF NOT EXISTS `{spec.layer}`")
            self.spark.sql(f"DROP TABLE IF EXISTS `{spec.layer}`.`{spec.short}`")
            self.spark.sql(f"CREATE TABLE `{spec.layer}`.`{spec.short}` USING {source}")
            bound[spec.name] = location


# SQL name → table location bound per session (by id), so repeated ``register_sql`` calls are cheap.
_SQL_BINDINGS: dict[int, dict[str, str]] = {}


def _sql_str(v: str) -> str:
    return v.replace("\\", "\\\\").replace("'", "\\'")


class DeltaSparkLakehouse(Lakehouse):
    """Delta tables through Delta Lake's Spark classes (``format("delta")``)."""

    engine = "delta-spark"

    def _staging_root(self) -> str:
        return _join(self.warehouse, "_staging")

    def exists(self, spec: TableSpec) -> bool:
        from delta.tables import DeltaTable

        return DeltaTable.isDeltaTable(self.spark, self.path(spec))

    def create_if_missing(self, spec: TableSpec) -> None:
        from delta.tables import DeltaTable

        builder = DeltaTable.createIfNotExists(self.spark).location(self.path(spec)).addColumns(spec.schema)
        if spec.partition_by:
            builder = builder.partitionedBy(*spec.partition_by)
        builder.comment(spec.description).execute()

    def version(self, spec: TableSpec) -> int | None:
        if not self.exists(spec):
            return None
        return self.spark.sql(f"DESCRIBE HISTORY delta.`{self.path(spec)}` LIMIT 1").first()["version"]

    def transaction_version(self, spec: TableSpec, app_id: str) -> int | None:
        # Delta-spark checks txnAppId/txnVersion itself at commit; reading it back needs the log.
        from deltalake import DeltaTable

        try:
            return DeltaTable(self.path(spec), storage_options=self.storage_options).transaction_version(
                app_id
            )
        except Exception:
            return None

    def history(self, spec: TableSpec) -> list[dict]:
        if not self.exists(spec):
            return []
        rows = self.spark.sql(f"DESCRIBE HISTORY delta.`{self.path(spec)}`").collect()
        return [r.asDict(recursive=True) for r in rows]

    def read(self, spec: TableSpec, version: int | None = None) -> DataFrame:
        if not self.exists(spec):
            return self._empty(spec)
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(self.path(spec)).select(*[f.name for f in spec.schema.fields])

    def _stage(self, df: DataFrame, spec: TableSpec, mode: str, run_id: str) -> StagedWrite:
        # Delta-spark has no public "commit these files" call: stage as Parquet, validate, then copy in with
        # format("delta") at commit. The copy costs one more write; it keeps gates identical on both engines.
        folder = _join(
            self._staging_root(), spec.layer, spec.short, f"{safe_name(run_id)}-{uuid.uuid4().hex[:8]}"
        )
        staged = StagedWrite(self, spec, mode, run_id, folder)
        try:
            self._spark_write(df, spec, folder)
            self._describe_files(staged, folder)
        except BaseException:
            self._remove_tree(folder)
            raise
        return staged

    def _commit(self, staged: StagedWrite, app_id, txn_version, metadata) -> CommitResult:
        spec = staged.spec
        writer = staged.dataframe().write.format("delta").option("userMetadata", staged.run_id)
        if app_id and txn_version is not None:
            writer = writer.option("txnAppId", app_id).option("txnVersion", txn_version)
        if staged.mode == "append":
            writer = writer.mode("append")
        elif staged.mode == "overwrite":
            writer = writer.mode("overwrite")
        else:
            writer = writer.mode("overwrite").option("partitionOverwriteMode", "dynamic")
        writer.save(self.path(spec))
        self._remove_tree(staged.path)
        return CommitResult(spec.name, self.version(spec) or 0, files=len(staged.files), rows=staged.rows)

    def register_sql(self, specs) -> None:
        for spec in specs:
            self.create_if_missing(spec)
            self.spark.sql(f"CREATE DATABASE IF NOT EXISTS `{spec.layer}`")
            self.spark.sql(
                f"CREATE TABLE IF NOT EXISTS `{spec.layer}`.`{spec.short}` USING delta "
                f"LOCATION '{_sql_str(self.path(spec))}'"
            )


def open_lakehouse(
    spark: SparkSession, warehouse: str, engine: str = "auto", storage_options: dict[str, str] | None = None
) -> Lakehouse:
    """The lakehouse for a profile: delta-spark where its classes load (or when asked), embedded otherwise."""
    from jobs.session import delta_classes_loadable

    if engine == "auto":
        engine = "delta-spark" if delta_classes_loadable(spark) else "embedded"
    if engine == "delta-spark":
        if not delta_classes_loadable(spark):
            raise RuntimeError(
                "storage.engine is delta-spark but Delta's Spark classes are not loadable in this session; "
                "add --packages io.delta:delta-spark_2.13:<version> (or set spark.delta_packages), "
                "or use storage.engine: embedded"
            )
        return DeltaSparkLakehouse(spark, warehouse, storage_options)
    return EmbeddedLakehouse(spark, warehouse, storage_options)
