"""The table API every job uses (``Lakehouse``), what a write returns, and the schema checks of a write.

An engine (``jobs.tables.embedded``, ``jobs.tables.delta_spark``) implements the abstract methods; staging,
the commit protocol (idempotent app transactions, ``read_version``) and aborts are shared here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, MapType, StructField, StructType

from jobs import faults
from schemas.base import TableSpec

WriteMode = Literal["append", "overwrite", "overwrite-partition"]
WRITE_MODES: tuple[str, ...] = ("append", "overwrite", "overwrite-partition")
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
# The warehouse folder that holds runs' intermediate results (``Lakehouse.checkpoints``); no table's layer.
CHECKPOINTS = "_checkpoints"


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


def fs_and_path(uri: str) -> tuple[pafs.FileSystem, str]:
    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    return pafs.FileSystem.from_uri(uri.replace("s3a://", "s3://", 1))


def join_path(root: str, *parts: str) -> str:
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
        return join_path(self.warehouse, spec.layer, spec.short)

    def _empty(self, spec: TableSpec) -> DataFrame:
        return self.spark.createDataFrame([], spec.schema)

    def _list_parquet(self, folder: str) -> list[tuple[str, int]]:
        fs, base = fs_and_path(folder)
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
        fs, base = fs_and_path(folder)
        try:
            fs.delete_dir(base)
        except (FileNotFoundError, OSError):
            pass

    @contextlib.contextmanager
    def checkpoints(self, run_id: str) -> Iterator[str]:
        """``<warehouse>/_checkpoints/<run id>``: a folder on the lake's storage for one run's intermediate
        results (``jobs.methods.dedup_components.materialize``), removed when the block ends, however it
        ends. Files there outlive the executors that wrote them, which blocks of a local checkpoint do not.
        A run killed outright leaves its folder behind; nothing reads it, and the run id names it.
        """
        path = join_path(self.warehouse, CHECKPOINTS, safe_name(run_id))
        try:
            yield path
        finally:
            self._remove_tree(path)

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
        fs, root = fs_and_path(table_root)
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
        # Whether a check below has just read the table's latest version (the commit can build on it).
        fresh = False
        if app_id is not None and txn_version is not None:
            fresh = True
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
            current, fresh = self.version(staged.spec), True
            if current != read_version:
                self.abort(staged)
                raise TableMoved(staged.spec.name, read_version, current)
        faults.fault_point("before_commit", staged.spec.name)
        result = self._commit(
            staged,
            app_id,
            txn_version,
            {"run_id": staged.run_id, **metadata},
            list(merge_on or []),
            read_version,
            fresh,
        )
        staged.done = True
        faults.fault_point("after_commit", staged.spec.name)
        return result

    def _commit(
        self,
        staged,
        app_id,
        txn_version,
        metadata,
        merge_on: list[str],
        read_version: int | None,
        fresh: bool = False,
    ) -> CommitResult:
        """The engine's commit; ``fresh``: ``commit`` has just read the table's latest version."""
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

    def rows(self, spec: TableSpec, columns: list[str] | None = None) -> list[dict]:
        """A small table's rows on the driver, as plain dicts (maps as dicts, timestamps in UTC).

        For the audit tables, whose size is bounded by runs, never by documents: every stage reads them at
        start and end, and a Spark job per question cost seconds of fixed overhead per stage.
        """
        if not self.exists(spec):
            return []
        df = self.read(spec)
        return [r.asDict(recursive=True) for r in (df.select(*columns) if columns else df).collect()]

    def append_rows(self, spec: TableSpec, rows: list[dict], run_id: str) -> CommitResult:
        """Append a few driver-side rows (audit) in one commit, without a gate."""
        return self.write(self.spark.createDataFrame(rows, spec.schema), spec, "append", run_id=run_id)

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
