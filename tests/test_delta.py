"""The table API's contract on the embedded engine (delta-rs), and on delta-spark where its jars load."""

from __future__ import annotations

import os

import pyarrow as pa
import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable
from pyspark.sql.types import LongType, StringType, StructType

from jobs.tables import CommitConflict, SchemaMismatch, schema_differences
from schemas.base import TableSpec, col

ITEMS = TableSpec(
    name="test.items",
    schema=StructType(
        [
            col("id", LongType(), False, "id"),
            col("name", StringType(), True, "name"),
            col("part", StringType(), True, "partition"),
        ]
    ),
    description="test table",
    partition_by=("part",),
)
FLAT = TableSpec(
    name="test.flat",
    schema=StructType([col("id", LongType(), False, "id"), col("name", StringType(), True, "name")]),
    description="unpartitioned test table",
)

# Partition values with characters Spark escapes in folder names and Delta encodes in log paths.
ROWS_1 = [(1, "a", "x"), (2, "b", "y y"), (3, "c", "c:d/e"), (4, "d", None)]
ROWS_2 = [(10, "j", "x"), (11, "k", "new")]


def _df(spark, rows, spec=ITEMS):
    return spark.createDataFrame(rows, spec.schema)


def _rows(df) -> list[tuple]:
    return sorted(tuple(r) for r in df.collect())


def _delta_rs_rows(path, version=None) -> list[tuple]:
    table = DeltaTable(path, version=version).to_pyarrow_table()
    return sorted(tuple(r.values()) for r in table.select(["id", "name", "part"]).to_pylist())


def test_embedded_write_is_standard_delta(spark, lakehouse):
    r1 = lakehouse.write(_df(spark, ROWS_1), ITEMS, "append", run_id="run-1")
    r2 = lakehouse.write(_df(spark, ROWS_2), ITEMS, "append", run_id="run-2")
    path = lakehouse.path(ITEMS)
    assert (r1.version, r2.version) == (1, 2)
    assert (r1.rows, r2.rows) == (4, 2)

    # Spark through the API and delta-rs straight from the folder see the same rows.
    expected = _df(spark, ROWS_1 + ROWS_2)
    assert_df_equality(lakehouse.read(ITEMS), expected, ignore_row_order=True, ignore_nullable=True)
    assert _delta_rs_rows(path) == sorted(ROWS_1 + ROWS_2, key=lambda r: r)

    # One history entry per write, carrying the run id; creation is version 0.
    history = DeltaTable(path).history()
    writes = [h for h in history if h["operation"] == "WRITE"]
    assert [(h["version"], h["run_id"], h["userMetadata"]) for h in writes] == [
        (2, "run-2", "run-2"),
        (1, "run-1", "run-1"),
    ]
    assert [h["operation"] for h in history if h["version"] == 0] == ["CREATE TABLE"]

    # Time travel on both readers.
    assert _rows(lakehouse.read(ITEMS, version=1)) == sorted(ROWS_1, key=lambda r: r)
    assert _delta_rs_rows(path, version=1) == sorted(ROWS_1, key=lambda r: r)
    assert lakehouse.read(ITEMS, version=0).count() == 0


def test_overwrite_and_overwrite_partition(spark, lakehouse):
    lakehouse.write(_df(spark, ROWS_1), ITEMS, "append", run_id="r1")
    lakehouse.write(_df(spark, ROWS_2), ITEMS, "overwrite-partition", run_id="r2")
    # Partition "x" replaced, "new" added, the others kept.
    expected = [(2, "b", "y y"), (3, "c", "c:d/e"), (4, "d", None), (10, "j", "x"), (11, "k", "new")]
    assert _rows(lakehouse.read(ITEMS)) == expected
    assert _delta_rs_rows(lakehouse.path(ITEMS)) == expected

    lakehouse.write(_df(spark, [(7, "z", "y y")]), ITEMS, "overwrite", run_id="r3")
    assert _rows(lakehouse.read(ITEMS)) == [(7, "z", "y y")]
    assert _delta_rs_rows(lakehouse.path(ITEMS)) == [(7, "z", "y y")]
    # Overwritten files stay on disk for time travel but are never read by the current version.
    assert _rows(lakehouse.read(ITEMS, version=2)) == expected

    with pytest.raises(ValueError, match="overwrite-partition needs a partitioned table"):
        lakehouse.write(spark.createDataFrame([(1, "a")], FLAT.schema), FLAT, "overwrite-partition")
    with pytest.raises(ValueError, match="unknown write mode 'upsert'"):
        lakehouse.write(_df(spark, ROWS_2), ITEMS, "upsert")


def test_retried_commit_adds_nothing(spark, lakehouse):
    first = lakehouse.write(
        _df(spark, ROWS_1), ITEMS, "append", run_id="r", app_id="corpuslake.test", txn_version=5
    )
    again = lakehouse.write(
        _df(spark, ROWS_1), ITEMS, "append", run_id="r", app_id="corpuslake.test", txn_version=5
    )
    assert (first.skipped, again.skipped, again.version) == (False, True, 1)
    assert lakehouse.read(ITEMS).count() == 4
    assert DeltaTable(lakehouse.path(ITEMS)).transaction_version("corpuslake.test") == 5
    # The skipped retry's staged files are gone: only the first run's folder is in the table.
    run_dirs = [d for d in os.listdir(lakehouse.path(ITEMS)) if d.startswith("run-")]
    assert len(run_dirs) == 1
    with pytest.raises(CommitConflict, match="already committed run sequence 5, newer than 4"):
        lakehouse.write(
            _df(spark, ROWS_2), ITEMS, "append", run_id="old", app_id="corpuslake.test", txn_version=4
        )
    nxt = lakehouse.write(
        _df(spark, ROWS_2), ITEMS, "append", run_id="n", app_id="corpuslake.test", txn_version=6
    )
    assert (nxt.version, lakehouse.read(ITEMS).count()) == (2, 6)


def test_schema_refused_with_every_difference(spark, lakehouse):
    bad = spark.createDataFrame([(1, 2, "x")], "id string, extra long, part string")
    with pytest.raises(SchemaMismatch) as exc:
        lakehouse.write(bad, ITEMS, "append", run_id="bad")
    assert str(exc.value) == (
        "test.items: DataFrame does not match the table schema: missing column name (string); "
        "extra column extra (bigint); column id is string, expected bigint"
    )
    assert lakehouse.version(ITEMS) is None  # refused before anything was created or written
    assert schema_differences(ITEMS.schema, ITEMS.schema) == []


def test_staged_files_invisible_until_commit(spark, lakehouse):
    lakehouse.write(_df(spark, ROWS_1), ITEMS, "append", run_id="r1")
    staged = lakehouse.stage(_df(spark, ROWS_2), ITEMS, "append", "r2")
    assert staged.rows == 2 and os.path.isdir(staged.path)
    assert _rows(staged.dataframe()) == sorted(ROWS_2)
    assert lakehouse.read(ITEMS).count() == 4
    assert len(DeltaTable(lakehouse.path(ITEMS)).to_pyarrow_table()) == 4
    lakehouse.abort(staged)
    assert not os.path.exists(staged.path)
    assert lakehouse.version(ITEMS) == 1


def test_columns_reordered_to_table_order(spark, lakehouse):
    df = spark.createDataFrame([("x", "a", 1)], "part string, name string, id long")
    lakehouse.write(df, ITEMS, "append", run_id="r")
    assert lakehouse.read(ITEMS).columns == ["id", "name", "part"]
    assert _rows(lakehouse.read(ITEMS)) == [(1, "a", "x")]


def test_tables_are_queryable_by_name_in_sql(spark, lakehouse):
    lakehouse.write(_df(spark, ROWS_1), ITEMS, "append", run_id="r1")
    lakehouse.write(spark.createDataFrame([(1, "a")], FLAT.schema), FLAT, "append", run_id="r1")
    lakehouse.register_sql([ITEMS, FLAT])
    got = spark.sql("select part, count(*) as n, sum(id) as s from test.items group by part")
    assert sorted(map(tuple, got.collect()), key=lambda r: r[2]) == [
        ("x", 1, 1),
        ("y y", 1, 2),
        ("c:d/e", 1, 3),
        (None, 1, 4),
    ]
    # Each query plans against the latest snapshot: a later overwrite shows up without re-registering.
    lakehouse.write(_df(spark, ROWS_2), ITEMS, "overwrite", run_id="r2")
    assert sorted(r["id"] for r in spark.sql("select id from test.items").collect()) == [10, 11]
    assert spark.sql("select count(*) from test.flat").first()[0] == 1


def test_empty_table_reads_empty_with_schema(spark, lakehouse):
    df = lakehouse.read(ITEMS)
    assert (df.count(), df.schema.names) == (0, ["id", "name", "part"])
    with pytest.raises(ValueError, match="no table at"):
        lakehouse.read(ITEMS, version=3)


def test_delta_spark_engine_contract(spark, tmp_path):
    from jobs.session import delta_classes_loadable

    if not delta_classes_loadable(spark):
        pytest.skip(
            "Delta's Spark classes are not on this session's classpath (Maven Central is unreachable here, "
            "so io.delta:delta-spark jars cannot be fetched); runs where --packages or Databricks add them"
        )
    from jobs.tables import DeltaSparkLakehouse

    lh = DeltaSparkLakehouse(spark, str(tmp_path / "wh"))
    lh.write(_df(spark, ROWS_1), ITEMS, "append", run_id="r1", app_id="corpuslake.test", txn_version=1)
    again = lh.write(
        _df(spark, ROWS_1), ITEMS, "append", run_id="r1", app_id="corpuslake.test", txn_version=1
    )
    assert again.skipped
    assert _rows(lh.read(ITEMS)) == sorted(ROWS_1, key=lambda r: r)
    assert _delta_rs_rows(lh.path(ITEMS)) == sorted(ROWS_1, key=lambda r: r)
    assert pa is not None


def test_error_after_the_log_entry_landed_keeps_the_files(spark, lakehouse, monkeypatch):
    real = DeltaTable.create_write_transaction

    def lands_then_fails(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise OSError("connection reset after the commit was written")

    monkeypatch.setattr(DeltaTable, "create_write_transaction", lands_then_fails)
    with pytest.raises(OSError, match="connection reset"):
        lakehouse.write(_df(spark, ROWS_1), ITEMS, "append", run_id="r1")
    monkeypatch.undo()
    # The commit is in the log, so its files are table data: the failed write's abort must not remove them.
    assert _rows(lakehouse.read(ITEMS)) == sorted(ROWS_1, key=lambda r: r)
    assert _delta_rs_rows(lakehouse.path(ITEMS)) == sorted(ROWS_1, key=lambda r: r)
