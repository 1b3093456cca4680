"""Delta tables on two engines behind one small API.

* ``EmbeddedLakehouse`` (default offline, in CI): Spark writes the Parquet files into the table folder, the
  driver commits them with delta-rs as ONE Delta commit. Reads list the snapshot's files through delta-rs and
  hand them to Spark, so removed or never-committed files are never read.
* ``DeltaSparkLakehouse`` (where Delta's Spark classes load: Databricks, ``--packages io.delta:…``):
  ``format("delta")`` with Delta's own idempotent-write options.

Both follow the same protocol, which the gates rely on: ``stage`` (files written, nothing visible) →
validate ``staged.dataframe()`` → ``commit`` or ``abort``. A commit carries ``Transaction(app_id, version)``
so a retried run with the same run sequence number adds nothing.

Modules: ``base`` (the ``Lakehouse`` API, staged writes, schema checks), ``embedded`` and ``delta_spark``
(one per engine), ``shared`` (helpers both engines use). Everything callers import is re-exported here.
"""

from __future__ import annotations

from pyspark.sql import SparkSession

from jobs.tables.base import (
    HIVE_NULL,
    WRITE_MODES,
    CommitConflict,
    CommitResult,
    Lakehouse,
    MaintainResult,
    SchemaMismatch,
    StagedWrite,
    TableMoved,
    WriteMode,
    conform,
    delta_schema,
    fs_and_path,
    safe_name,
    schema_differences,
)
from jobs.tables.delta_spark import RS_WRITABLE_READER, RS_WRITABLE_WRITER, DeltaSparkLakehouse
from jobs.tables.embedded import EmbeddedLakehouse
from jobs.tables.shared import delta_files, interval_hours

# The name jobs.export imported before ``fs_and_path`` was public.
_fs_and_path = fs_and_path

__all__ = [
    "HIVE_NULL",
    "RS_WRITABLE_READER",
    "RS_WRITABLE_WRITER",
    "WRITE_MODES",
    "CommitConflict",
    "CommitResult",
    "DeltaSparkLakehouse",
    "EmbeddedLakehouse",
    "Lakehouse",
    "MaintainResult",
    "SchemaMismatch",
    "StagedWrite",
    "TableMoved",
    "WriteMode",
    "conform",
    "delta_files",
    "delta_schema",
    "fs_and_path",
    "interval_hours",
    "open_lakehouse",
    "safe_name",
    "schema_differences",
]


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
