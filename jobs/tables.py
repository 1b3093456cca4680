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

import datetime
import json
import logging
import math
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
    """Another writer committed to the table first; nothing of this write was committed."""


class TableMoved(CommitConflict):
    """The table is no longer at the version a run's checks read (another run committed since).

    Args:
        table: the table's name.
        read_version: the version the checks read.
        version: the version found at commit time (None when only the commit itself failed on it).
    """

    def __init__(self, table: str, read_version: int, version: int | None = None):
        self.table, self.read_version, self.version = table, read_version, version
        now = f"v{version}" if version is not None else "a newer version"
        super().__init__(
            f"{table}: another run committed to the table while this run was checking its rows against it "
            f"(checked v{read_version}, found {now}); nothing of this run was committed, so re-running it "
            "is safe"
        )


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


def delta_schema(spec: TableSpec) -> StructType:
    """The schema a Delta table is created with: the spec's, with nested elements and fields nullable.

    Spark writes every array element, map value and struct field as nullable, and Delta's MERGE refuses to
    insert ``array<float>`` into a column declared ``array<float NOT NULL>``. Top-level nullability stays: it
    is the column contract the suites check.
    """
    return StructType(
        [
            StructField(f.name, _strip_nullability(f.dataType), f.nullable, f.metadata)
            for f in spec.schema.fields
        ]
    )


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
        # Hidden and underscore segments (Spark's _temporary of an unfinished or killed task, _delta_log)
        # are never data files of a finished write.
        return sorted(
            (i.path, i.size)
            for i in infos
            if i.type == pafs.FileType.File
            and i.base_name.endswith(".parquet")
            and not any(seg[:1] in ("_", ".") for seg in i.path[len(base) :].split("/") if seg)
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

    def maintain(self, spec: TableSpec, retain_hours: float | None = None) -> MaintainResult:
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
        self,
        staged: StagedWrite,
        app_id: str | None = None,
        txn_version: int | None = None,
        merge_on: list[str] | None = None,
        read_version: int | None = None,
        **metadata: str,
    ) -> CommitResult:
        """Make the staged files the table's next version, in one commit.

        Args:
            staged: what ``stage`` returned.
            app_id: the Delta transaction id (``corpuslake.<stage>.<run id>``); with ``txn_version`` it makes
                the commit idempotent: a version already recorded for this app adds nothing.
            txn_version: the run sequence number.
            merge_on: key columns of an append that must never duplicate a key (scores): delta-spark commits
                it as an insert-only ``MERGE``; the embedded engine appends (its gate has checked the keys).
            read_version: commit only on top of this version, the one the staged rows were checked against
                (ingest's doc_id check): the commit is built on that snapshot and never retried onto a newer
                one, so a concurrent commit in between makes this one fail with ``TableMoved``.
                delta-spark's own copy path (tables only it can write) checks the version just before.
            **metadata: extra commit info (run_id is always recorded, also as ``userMetadata``).

        Raises:
            TableMoved: ``read_version`` is no longer the table's version (nothing was committed).
            CommitConflict: a newer run of the same app already committed to this table, or another writer
                committed a conflicting change first (nothing of this write was committed).
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
                    f"{txn_version}: a later commit of the same app id landed first (stages use one app id "
                    "per run, so only a writer reusing another's app id gets here); nothing was committed"
                )
        if read_version is not None:
            current = self.version(staged.spec)
            if current != read_version:
                self.abort(staged)
                raise TableMoved(staged.spec.name, read_version, current)
        _fault_point("before_commit", staged.spec.name)
        result = self._commit(
            staged,
            app_id,
            txn_version,
            {"run_id": staged.run_id, **metadata},
            list(merge_on or []),
            read_version,
        )
        staged.done = True
        _fault_point("after_commit", staged.spec.name)
        return result

    def _commit(
        self, staged, app_id, txn_version, metadata, merge_on: list[str], read_version: int | None
    ) -> CommitResult:
        raise NotImplementedError

    def commit_info(self, spec: TableSpec, key: str) -> list[tuple[int, str | None, str]]:
        """``(version, run_id, value)`` of every commit whose commit info carries ``key``, oldest first.

        The commit info is written in the same log entry as the data, so it is true exactly when the rows
        are (ingest records the files a commit's rows came from this way). Commits delta-spark made itself
        (``format("delta")``: tables only it can write) carry no custom keys.
        """
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
    # Test hook: the atomicity and resume tests SIGKILL the process at named points of a write
    # (before_commit, after_commit). CORPUSLAKE_FAULT=<point> dies at the first; <point>:<table>:<n> at the
    # n-th commit to that table.
    want = os.environ.get("CORPUSLAKE_FAULT")
    if not want:
        return
    if want == name:
        os.kill(os.getpid(), 9)
    parts = want.split(":")
    if len(parts) == 3 and parts[0] == name and parts[1] == table:
        _FAULT_COUNTS[want] = _FAULT_COUNTS.get(want, 0) + 1
        if _FAULT_COUNTS[want] == int(parts[2]):
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

        _create_once(spec, self.path(spec), create, lambda: self.exists(spec))

    def version(self, spec: TableSpec) -> int | None:
        return self._dt(spec).version() if self.exists(spec) else None

    def transaction_version(self, spec: TableSpec, app_id: str) -> int | None:
        return self._dt(spec).transaction_version(app_id) if self.exists(spec) else None

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

    def _commit(
        self, staged: StagedWrite, app_id, txn_version, metadata, merge_on, read_version=None
    ) -> CommitResult:
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
        # Built on the version the rows were checked against: a commit in between makes this one fail.
        dt = self._dt(spec) if read_version is None else self._dt(spec, read_version)
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
            if not staged.done and _is_conflict(exc):
                if read_version is not None:
                    raise TableMoved(spec.name, read_version) from None
                raise _conflict(spec, staged.mode, exc) from None
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
            _bind_sql(self.spark, specs, self.path, self.create_if_missing, "delta", _delta_table_ddl)
            return
        from jobs.sql_source import register_table

        def ddl(spec: TableSpec, location: str) -> str:
            source = register_table(self.spark, spec.name, location, spec.schema, spec.partition_by)
            return f"CREATE TABLE `{spec.layer}`.`{spec.short}` USING {source}"

        _bind_sql(self.spark, specs, self.path, self.create_if_missing, "source", ddl)

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
        retain = _retention(spec, dt.metadata().configuration, retain_hours)
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


@dataclass
class MaintainResult:
    """What ``Lakehouse.maintain`` did to one table."""

    table: str
    version: int
    compacted_files: int
    written_files: int
    vacuumed_files: int
    files_before: int
    files_after: int
    retain_hours: float

    def line(self) -> str:
        return (
            f"{self.table:<24} v{self.version:<5} compacted {self.compacted_files:>5} files into "
            f"{self.written_files:>3}; vacuumed {self.vacuumed_files:>5} files older than "
            f"{self.retain_hours:g} h; files on disk {self.files_before:,} -> {self.files_after:,}"
        )


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


def _retention(spec: TableSpec, configuration: dict, retain_hours: float | None) -> float:
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


def _sql_str(v: str) -> str:
    return v.replace("\\", "\\\\").replace("'", "\\'")


def _delta_table_ddl(spec: TableSpec, location: str) -> str:
    return f"CREATE TABLE `{spec.layer}`.`{spec.short}` USING delta LOCATION '{_sql_str(location)}'"


def _bind_sql(spark, specs, path_of, create_if_missing, kind: str, ddl) -> None:
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


# Table features both engines write correctly when delta-rs commits files that Spark wrote. Anything else
# (deletion vectors, column mapping, CHECK constraints, generated columns, …) is left to delta-spark itself.
RS_WRITABLE_READER = 1
RS_WRITABLE_WRITER = 2


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
        _create_once(spec, self.path(spec), builder.execute, lambda: self.exists(spec))

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

    def rs_writable(self, spec: TableSpec) -> bool:
        """Whether delta-rs may commit Spark-written files to this table (see the class docstring)."""
        dt = self._dt(spec)
        p = dt.protocol()
        conf = dt.metadata().configuration
        return (
            p.min_reader_version <= RS_WRITABLE_READER
            and p.min_writer_version <= RS_WRITABLE_WRITER
            and str(conf.get("delta.appendOnly", "false")).lower() != "true"
            and "delta.invariants" not in dt.schema().to_json()
        )

    def _commit(
        self, staged: StagedWrite, app_id, txn_version, metadata, merge_on, read_version=None
    ) -> CommitResult:
        spec = staged.spec
        if merge_on:
            return self._merge(staged, merge_on)
        if self.rs_writable(spec):
            return super()._commit(staged, app_id, txn_version, metadata, merge_on, read_version)
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
            if _is_conflict(exc):
                raise _conflict(spec, staged.mode, exc) from None
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
        key = "spark.databricks.delta.commitInfo.userMetadata"
        previous = self.spark.conf.get(key, None)
        self.spark.conf.set(key, staged.run_id)
        try:
            for attempt in range(1, attempts + 1):
                try:
                    target = DeltaTable.forPath(self.spark, self.path(spec)).alias("t")
                    target.merge(source.alias("s"), cond).whenNotMatchedInsertAll().execute()
                    break
                except Exception as exc:
                    if not _is_conflict(exc):
                        raise
                    if attempt == attempts:
                        raise _conflict(spec, "merge", exc) from None
                    log.info("%s: concurrent commit during MERGE, retrying (%d)", spec.name, attempt)
        finally:
            if previous is None:
                self.spark.conf.unset(key)
            else:
                self.spark.conf.set(key, previous)
        return self._copied(staged)

    def register_sql(self, specs) -> None:
        """Make ``layer.table`` a Delta catalog table over its location (history and time travel in SQL)."""
        _bind_sql(self.spark, specs, self.path, self.create_if_missing, "delta", _delta_table_ddl)

    def maintain(self, spec: TableSpec, retain_hours: float | None = None) -> MaintainResult:
        """``OPTIMIZE`` then ``VACUUM … RETAIN`` (see ``EmbeddedLakehouse.maintain`` for the retention)."""
        dt = self._maintained(spec)
        retain = _retention(spec, dt.metadata().configuration, retain_hours)
        path = _sql_str(self.path(spec))
        before = len(self._list_parquet(self.path(spec)))
        metrics = self.spark.sql(f"OPTIMIZE delta.`{path}`").first()["metrics"]
        check = "spark.databricks.delta.retentionDurationCheck.enabled"
        # Delta's own guard refuses less than 7 days; a table whose log retention is shorter asked for it.
        if retain < 168:
            self.spark.conf.set(check, "false")
        try:
            self.spark.sql(f"VACUUM delta.`{path}` RETAIN {math.ceil(retain)} HOURS").collect()
        finally:
            self.spark.conf.unset(check)
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


def _create_once(spec: TableSpec, path: str, create, exists, wait_s: float = 30.0) -> None:
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


def _is_conflict(exc: BaseException) -> bool:
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


def _conflict(spec: TableSpec, mode: str, exc: BaseException) -> CommitConflict:
    return CommitConflict(
        f"{spec.name}: another writer committed to the table while this {mode} was being committed "
        f"({_first_line(exc)[:300]}); nothing of this run was committed, so re-running it is safe"
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
                "run `make install` (it caches the jars in .cache/jars; under spark-submit also pass "
                '--jars "$(python -m jobs.jars list)"), add --packages io.delta:delta-spark_2.13:4.3.1, '
                "or use storage.engine: embedded"
            )
        return DeltaSparkLakehouse(spark, warehouse, storage_options)
    return EmbeddedLakehouse(spark, warehouse, storage_options)
