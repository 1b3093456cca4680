"""A read-only Spark Python data source over a Delta snapshot, so SQL can name embedded-engine tables.

Spark's temporary views cannot have two-part names, and a Parquet catalog table would read files the Delta
log has removed. ``CREATE TABLE bronze.documents USING corpuslake_bronze_documents`` instead resolves the
table's latest snapshot through delta-rs each time a query is planned, and reads exactly its files.
Jobs themselves read through ``Lakehouse.read`` (Spark's native Parquet reader); this source serves SQL users.
"""

from __future__ import annotations

import json

from pyspark.sql import SparkSession
from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
from pyspark.sql.types import StructType

TARGET_PARTITION_BYTES = 128 * 1024 * 1024


class _FilesPartition(InputPartition):
    """Some of the snapshot's files, read one after another by one task."""

    def __init__(self, files: list[tuple[str, dict]]):
        super().__init__(len(files))
        self.files = files


def group_files(files: list[dict], max_parts: int) -> list[list[dict]]:
    """Files in at most ``max_parts`` groups (more when the data exceeds 128 MiB per group), by size.

    Small tables are many small files (every commit adds some, audit tables one per event): one task per
    file made a query over audit.runs cost seconds of task overhead. Largest first into the lightest
    group keeps the groups even.
    """
    if not files:
        return []
    total = sum(int(f.get("size_bytes") or 0) for f in files)
    n = max(1, min(len(files), max(max_parts, -(-total // TARGET_PARTITION_BYTES))))
    groups: list[list[dict]] = [[] for _ in range(n)]
    loads = [0] * n
    for f in sorted(files, key=lambda f: (-int(f.get("size_bytes") or 0), f["uri"])):
        i = loads.index(min(loads))
        groups[i].append(f)
        loads[i] += int(f.get("size_bytes") or 0) or 1
    return [g for g in groups if g]


class _SnapshotReader(DataSourceReader):
    def __init__(self, table_uri: str, partition_by: list[str], schema: StructType, max_parts: int):
        self.table_uri = table_uri
        self.partition_by = partition_by
        self.schema = schema
        self.max_parts = max_parts

    def partitions(self):
        from deltalake import DeltaTable

        from jobs.tables import delta_files

        files = delta_files(DeltaTable(self.table_uri), self.partition_by)
        groups = group_files(files, self.max_parts)
        parts = [_FilesPartition([(f["uri"], f["partition_values"]) for f in g]) for g in groups]
        # Spark needs at least one partition; an empty one yields no rows.
        return parts or [_FilesPartition([])]

    def read(self, partition: _FilesPartition):
        import pyarrow as pa
        import pyarrow.parquet as pq
        from pyspark.sql.pandas.types import to_arrow_schema

        target = to_arrow_schema(self.schema)
        data_cols = [f.name for f in target if f.name not in self.partition_by]
        for uri, values in partition.files:
            pf = pq.ParquetFile(uri)
            for batch in pf.iter_batches(batch_size=4096, columns=data_cols):
                cols = []
                for f in target:
                    if f.name in self.partition_by:
                        value = values.get(f.name)
                        cols.append(pa.array([value] * batch.num_rows, pa.string()).cast(f.type))
                    else:
                        cols.append(batch.column(batch.schema.get_field_index(f.name)).cast(f.type))
                yield pa.RecordBatch.from_arrays(cols, schema=target)


class _SnapshotSource(DataSource):
    """Base of the per-table sources; subclasses carry the table's location, schema and partitioning."""

    source_name = ""
    table_uri = ""
    schema_json = ""
    partition_by: tuple[str, ...] = ()
    max_parts = 2

    @classmethod
    def name(cls) -> str:
        return cls.source_name

    def schema(self) -> StructType:
        return StructType.fromJson(json.loads(self.schema_json))

    def reader(self, schema: StructType) -> DataSourceReader:
        return _SnapshotReader(self.table_uri, list(self.partition_by), schema, self.max_parts)


def register_table(
    spark: SparkSession, sql_name: str, table_uri: str, schema: StructType, partition_by: tuple[str, ...]
) -> str:
    """Register a source for one table and return its name for ``CREATE TABLE … USING <name>``.

    Spark does not hand a catalog table's OPTIONS to a Python source's reader, so each table gets its own
    source class with the location baked in (pickled by value to the workers).
    """
    source_name = "corpuslake_" + sql_name.replace(".", "_")
    cls = type(
        source_name,
        (_SnapshotSource,),
        {
            "source_name": source_name,
            "table_uri": table_uri,
            "schema_json": schema.json(),
            "partition_by": tuple(partition_by),
            # the reader runs on a Python worker, which cannot ask the session: bake the parallelism in
            "max_parts": spark.sparkContext.defaultParallelism,
            "__module__": "__main__",
        },
    )
    spark.dataSource.register(cls)
    return source_name
