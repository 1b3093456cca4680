"""Every table the pipeline writes, and a session in which all of them are queryable by name.

``connect(conf)`` is what the CLI's read commands, the report and the notebooks start from: after it,
``spark.sql("select … from gold.selection")`` works on either engine (views over the embedded engine's
snapshots, catalog tables over Delta locations on delta-spark).
"""

from __future__ import annotations

from pyspark.sql import SparkSession

from jobs.config import Conf
from schemas.base import TableSpec


def all_specs() -> tuple[TableSpec, ...]:
    """Every table, in pipeline order (bronze → ref → silver → scores → gold → audit)."""
    from schemas import audit, bronze, gold, ref, scores, silver

    return (*bronze.TABLES, *ref.TABLES, *silver.TABLES, *scores.TABLES, *gold.TABLES, *audit.TABLES)


def table_spec(name: str) -> TableSpec:
    """The spec of ``layer.table``.

    Raises:
        UsageError: no table has that name (the message lists the known ones).
    """
    from jobs.runtime import UsageError

    for spec in all_specs():
        if spec.name == name:
            return spec
    known = ", ".join(s.name for s in all_specs())
    raise UsageError(f"unknown table {name!r}; known tables: {known}")


def connect(conf: Conf, spark: SparkSession | None = None):
    """The profile's session and lakehouse, with every table registered for Spark SQL.

    Args:
        conf: the loaded profile.
        spark: a session to use (default: the active one, or one built from ``conf.spark``).

    Returns:
        ``(spark, lakehouse)``.
    """
    from jobs.session import get_spark
    from jobs.tables import open_lakehouse

    spark = spark or get_spark(conf.spark, conf.storage.engine)
    lakehouse = open_lakehouse(
        spark, conf.storage.warehouse, conf.storage.engine, conf.storage.storage_options
    )
    lakehouse.register_sql(all_specs())
    return spark, lakehouse
