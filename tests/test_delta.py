"""The table API's contract, on both engines: embedded (delta-rs) and delta-spark (Delta's own Spark classes).

``engine_lakehouse`` runs each contract test once per engine. Delta's jars come from ``make install``
(.cache/jars), so nothing here skips. Tables are checked with a reader of the other engine too: delta-rs
straight from the folder, and Delta's Spark reader.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable
from pyspark.sql.types import LongType, StringType, StructType

from jobs.tables import (
    CommitConflict,
    DeltaSparkLakehouse,
    EmbeddedLakehouse,
    SchemaMismatch,
    interval_hours,
    schema_differences,
)
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
    return sorted((tuple(r) for r in df.collect()), key=repr)


def _sorted(rows) -> list[tuple]:
    return sorted(rows, key=repr)


def _delta_rs_rows(path, version=None) -> list[tuple]:
    table = DeltaTable(path, version=version).to_pyarrow_table()
    return _sorted(tuple(r.values()) for r in table.select(["id", "name", "part"]).to_pylist())


def _spark_delta_rows(spark, path, version=None) -> list[tuple]:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return _rows(reader.load(path).select("id", "name", "part"))


def test_write_is_standard_delta(spark, engine_lakehouse):
    lh = engine_lakehouse
    r1 = lh.write(_df(spark, ROWS_1), ITEMS, "append", run_id="run-1")
    r2 = lh.write(_df(spark, ROWS_2), ITEMS, "append", run_id="run-2")
    path = lh.path(ITEMS)
    assert (r1.version, r2.version) == (1, 2)
    assert (r1.rows, r2.rows) == (4, 2)

    # The API, delta-rs straight from the folder and Delta's Spark reader see the same rows.
    expected = _df(spark, ROWS_1 + ROWS_2)
    assert_df_equality(lh.read(ITEMS), expected, ignore_row_order=True, ignore_nullable=True)
    assert _delta_rs_rows(path) == _sorted(ROWS_1 + ROWS_2)
    assert _spark_delta_rows(spark, path) == _sorted(ROWS_1 + ROWS_2)

    # One history entry per write, carrying the run id; creation is version 0.
    history = lh.history(ITEMS)
    writes = [(h["version"], h["run_id"], h["userMetadata"]) for h in history if h["operation"] == "WRITE"]
    assert writes == [(2, "run-2", "run-2"), (1, "run-1", "run-1")]
    assert [h["operation"] for h in history if h["version"] == 0] == ["CREATE TABLE"]
    assert all(isinstance(h["timestamp"], int) for h in history)

    # Time travel on every reader.
    assert _rows(lh.read(ITEMS, version=1)) == _sorted(ROWS_1)
    assert _delta_rs_rows(path, version=1) == _sorted(ROWS_1)
    assert _spark_delta_rows(spark, path, version=1) == _sorted(ROWS_1)
    assert lh.read(ITEMS, version=0).count() == 0
    with pytest.raises(ValueError, match="no version 7"):
        lh.read(ITEMS, version=7).collect()


def test_overwrite_and_overwrite_partition(spark, engine_lakehouse):
    lh = engine_lakehouse
    lh.write(_df(spark, ROWS_1), ITEMS, "append", run_id="r1")
    lh.write(_df(spark, ROWS_2), ITEMS, "overwrite-partition", run_id="r2")
    # Partition "x" replaced, "new" added, the others kept.
    expected = _sorted([(2, "b", "y y"), (3, "c", "c:d/e"), (4, "d", None), (10, "j", "x"), (11, "k", "new")])
    assert _rows(lh.read(ITEMS)) == expected
    assert _delta_rs_rows(lh.path(ITEMS)) == expected
    assert _spark_delta_rows(spark, lh.path(ITEMS)) == expected

    lh.write(_df(spark, [(7, "z", "y y")]), ITEMS, "overwrite", run_id="r3")
    assert _rows(lh.read(ITEMS)) == [(7, "z", "y y")]
    assert _delta_rs_rows(lh.path(ITEMS)) == [(7, "z", "y y")]
    # Overwritten files stay on disk for time travel but are never read by the current version.
    assert _rows(lh.read(ITEMS, version=2)) == expected

    with pytest.raises(ValueError, match="overwrite-partition needs a partitioned table"):
        lh.write(spark.createDataFrame([(1, "a")], FLAT.schema), FLAT, "overwrite-partition")
    with pytest.raises(ValueError, match="unknown write mode 'upsert'"):
        lh.write(_df(spark, ROWS_2), ITEMS, "upsert")


def test_retried_commit_adds_nothing(spark, engine_lakehouse):
    lh = engine_lakehouse
    first = lh.write(_df(spark, ROWS_1), ITEMS, "append", run_id="r", app_id="corpuslake.test", txn_version=5)
    again = lh.write(_df(spark, ROWS_1), ITEMS, "append", run_id="r", app_id="corpuslake.test", txn_version=5)
    assert (first.skipped, again.skipped, again.version) == (False, True, 1)
    assert lh.read(ITEMS).count() == 4
    assert DeltaTable(lh.path(ITEMS)).transaction_version("corpuslake.test") == 5
    # The skipped retry's staged files are gone: only the first run's folder is in the table.
    run_dirs = [d for d in os.listdir(lh.path(ITEMS)) if d.startswith("run-")]
    assert len(run_dirs) == 1
    with pytest.raises(CommitConflict, match="already committed run sequence 5, newer than 4"):
        lh.write(_df(spark, ROWS_2), ITEMS, "append", run_id="old", app_id="corpuslake.test", txn_version=4)
    nxt = lh.write(_df(spark, ROWS_2), ITEMS, "append", run_id="n", app_id="corpuslake.test", txn_version=6)
    assert (nxt.version, lh.read(ITEMS).count()) == (2, 6)


def test_schema_refused_with_every_difference(spark, engine_lakehouse):
    bad = spark.createDataFrame([(1, 2, "x")], "id string, extra long, part string")
    with pytest.raises(SchemaMismatch) as exc:
        engine_lakehouse.write(bad, ITEMS, "append", run_id="bad")
    assert str(exc.value) == (
        "test.items: DataFrame does not match the table schema: missing column name (string); "
        "extra column extra (bigint); column id is string, expected bigint"
    )
    assert engine_lakehouse.version(ITEMS) is None  # refused before anything was created or written
    assert schema_differences(ITEMS.schema, ITEMS.schema) == []


def test_staged_files_invisible_until_commit(spark, engine_lakehouse):
    lh = engine_lakehouse
    lh.write(_df(spark, ROWS_1), ITEMS, "append", run_id="r1")
    staged = lh.stage(_df(spark, ROWS_2), ITEMS, "append", "r2")
    assert staged.rows == 2 and os.path.isdir(staged.path)
    assert _rows(staged.dataframe()) == _sorted(ROWS_2)
    assert lh.read(ITEMS).count() == 4
    assert len(DeltaTable(lh.path(ITEMS)).to_pyarrow_table()) == 4
    assert _spark_delta_rows(spark, lh.path(ITEMS)) == _sorted(ROWS_1)
    lh.abort(staged)
    assert not os.path.exists(staged.path)
    assert lh.version(ITEMS) == 1


def test_columns_reordered_to_table_order(spark, engine_lakehouse):
    df = spark.createDataFrame([("x", "a", 1)], "part string, name string, id long")
    engine_lakehouse.write(df, ITEMS, "append", run_id="r")
    assert engine_lakehouse.read(ITEMS).columns == ["id", "name", "part"]
    assert _rows(engine_lakehouse.read(ITEMS)) == [(1, "a", "x")]


def test_sql_names_history_and_time_travel(spark, engine_lakehouse):
    lh = engine_lakehouse
    lh.write(_df(spark, ROWS_1), ITEMS, "append", run_id="r1")
    lh.write(spark.createDataFrame([(1, "a")], FLAT.schema), FLAT, "append", run_id="r1")
    lh.register_sql([ITEMS, FLAT])
    got = spark.sql("select part, count(*) as n, sum(id) as s from test.items group by part")
    assert sorted(map(tuple, got.collect()), key=lambda r: r[2]) == [
        ("x", 1, 1),
        ("y y", 1, 2),
        ("c:d/e", 1, 3),
        (None, 1, 4),
    ]
    time.sleep(1.1)  # TIMESTAMP AS OF resolves to whole commit timestamps
    between = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    time.sleep(1.1)
    # Each query plans against the latest snapshot: a later overwrite shows up without re-registering.
    lh.write(_df(spark, ROWS_2), ITEMS, "overwrite", run_id="r2")
    assert sorted(r["id"] for r in spark.sql("select id from test.items").collect()) == [10, 11]
    assert spark.sql("select count(*) from test.flat").first()[0] == 1

    # Delta's SQL on the same names, on both engines.
    history = spark.sql("DESCRIBE HISTORY test.items").select("version", "operation", "userMetadata")
    assert [tuple(r) for r in history.collect()] == [
        (2, "WRITE", "r2"),
        (1, "WRITE", "r1"),
        (0, "CREATE TABLE", None),
    ]
    v1 = spark.sql("select id from test.items VERSION AS OF 1").collect()
    assert sorted(r["id"] for r in v1) == [1, 2, 3, 4]
    t1 = spark.sql(f"select id from test.items TIMESTAMP AS OF '{between}'").collect()
    assert sorted(r["id"] for r in t1) == [1, 2, 3, 4]


def test_sql_source_without_delta_sql(spark, lakehouse):
    """Where Delta's jars are missing, the embedded engine's SQL source still reads the latest snapshot."""
    from jobs.sql_source import register_table

    lakehouse.write(_df(spark, ROWS_1), ITEMS, "append", run_id="r1")
    lakehouse.write(_df(spark, ROWS_2), ITEMS, "overwrite-partition", run_id="r2")
    name = register_table(spark, "test.items_src", lakehouse.path(ITEMS), ITEMS.schema, ITEMS.partition_by)
    got = spark.read.format(name).load()
    assert _rows(got) == _rows(lakehouse.read(ITEMS))


def test_empty_table_reads_empty_with_schema(spark, engine_lakehouse):
    df = engine_lakehouse.read(ITEMS)
    assert (df.count(), df.schema.names) == (0, ["id", "name", "part"])
    with pytest.raises(ValueError, match="no table at"):
        engine_lakehouse.read(ITEMS, version=3)


def test_error_after_the_log_entry_landed_keeps_the_files(spark, engine_lakehouse, monkeypatch):
    real = DeltaTable.create_write_transaction

    def lands_then_fails(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise OSError("connection reset after the commit was written")

    monkeypatch.setattr(DeltaTable, "create_write_transaction", lands_then_fails)
    with pytest.raises(OSError, match="connection reset"):
        engine_lakehouse.write(_df(spark, ROWS_1), ITEMS, "append", run_id="r1")
    monkeypatch.undo()
    # The commit is in the log, so its files are table data: the failed write's abort must not remove them.
    assert _rows(engine_lakehouse.read(ITEMS)) == _sorted(ROWS_1)
    assert _delta_rs_rows(engine_lakehouse.path(ITEMS)) == _sorted(ROWS_1)


# -- interop: one engine writes, the other reads and appends ------------------------------------------


@pytest.mark.parametrize(
    "first, second", [(EmbeddedLakehouse, DeltaSparkLakehouse), (DeltaSparkLakehouse, EmbeddedLakehouse)]
)
def test_interop_between_engines(spark, tmp_path, first, second):
    a, b = first(spark, str(tmp_path / "wh")), second(spark, str(tmp_path / "wh"))
    a.write(_df(spark, ROWS_1), ITEMS, "append", run_id="by-a", app_id="corpuslake.a", txn_version=1)
    assert _rows(b.read(ITEMS)) == _sorted(ROWS_1)
    b.write(_df(spark, ROWS_2), ITEMS, "append", run_id="by-b", app_id="corpuslake.b", txn_version=1)
    a.write(_df(spark, [(20, "t", "x")]), ITEMS, "overwrite-partition", run_id="by-a2")
    final = _sorted([(2, "b", "y y"), (3, "c", "c:d/e"), (4, "d", None), (11, "k", "new"), (20, "t", "x")])
    for lh in (a, b):
        assert _rows(lh.read(ITEMS)) == final
        assert _rows(lh.read(ITEMS, version=1)) == _sorted(ROWS_1)
        assert _rows(lh.read(ITEMS, version=2)) == _sorted(ROWS_1 + ROWS_2)
        writes = [(h["version"], h["run_id"]) for h in lh.history(ITEMS) if h["version"] > 0]
        assert writes == [(3, "by-a2"), (2, "by-b"), (1, "by-a")]
        # Each engine sees the other's idempotence marker: a retry of either adds nothing.
        assert lh.transaction_version(ITEMS, "corpuslake.b") == 1
    retry = a.write(_df(spark, ROWS_2), ITEMS, "append", run_id="by-b", app_id="corpuslake.b", txn_version=1)
    assert retry.skipped and b.read(ITEMS).count() == 5


# -- delta-spark specifics: one copy of the data, the copy path, MERGE --------------------------------


def test_delta_spark_commits_the_gated_files_without_a_copy(spark, tmp_path):
    lh = DeltaSparkLakehouse(spark, str(tmp_path / "wh"))
    lh.create_if_missing(ITEMS)
    assert lh.rs_writable(ITEMS)  # what delta-spark creates by default: reader 1, writer 2
    staged = lh.stage(_df(spark, ROWS_1), ITEMS, "append", "r1")
    written = sorted(f["path"] for f in staged.files)
    lh.commit(staged)
    live = sorted(
        os.path.relpath(u.removeprefix("file://"), lh.path(ITEMS))
        for u in DeltaTable(lh.path(ITEMS)).file_uris()
    )
    # The table's files are exactly the files Spark staged and the gate saw: nothing was written twice.
    assert live == written
    assert _spark_delta_rows(spark, lh.path(ITEMS)) == _sorted(ROWS_1)


def test_delta_spark_copies_into_a_table_delta_rs_must_not_write(spark, tmp_path):
    from delta.tables import DeltaTable as SparkDeltaTable

    lh = DeltaSparkLakehouse(spark, str(tmp_path / "wh"))
    # A user's table with deletion vectors (reader 3 / writer 7): only delta-spark may commit to it.
    SparkDeltaTable.create(spark).location(lh.path(ITEMS)).addColumns(ITEMS.schema).partitionedBy(
        "part"
    ).property("delta.enableDeletionVectors", "true").execute()
    assert not lh.rs_writable(ITEMS)
    r = lh.write(_df(spark, ROWS_1), ITEMS, "append", run_id="r1", app_id="corpuslake.test", txn_version=1)
    again = lh.write(
        _df(spark, ROWS_1), ITEMS, "append", run_id="r1", app_id="corpuslake.test", txn_version=1
    )
    lh.write(_df(spark, ROWS_2), ITEMS, "overwrite-partition", run_id="r2")
    assert (r.version, again.skipped) == (1, True)
    assert _rows(lh.read(ITEMS)) == _sorted([(2, "b", "y y"), (3, "c", "c:d/e"), (4, "d", None), *ROWS_2])
    assert [h["run_id"] for h in lh.history(ITEMS)][:2] == ["r2", "r1"]
    assert not [d for d in os.listdir(lh.path(ITEMS)) if d.startswith("run-")]  # staging removed


def test_merge_on_keys_never_duplicates(spark, engine_lakehouse):
    lh = engine_lakehouse
    lh.write(_df(spark, ROWS_1), ITEMS, "append", run_id="r1")
    staged = lh.stage(_df(spark, [(1, "a", "x"), (5, "e", "x")]), ITEMS, "append", "r2")
    lh.commit(staged, merge_on=["id"])
    ids = sorted(r["id"] for r in lh.read(ITEMS).collect())
    if lh.engine == "delta-spark":
        assert ids == [1, 2, 3, 4, 5]  # insert-only MERGE: key 1 was already there
        assert lh.history(ITEMS)[0]["operation"] == "MERGE"
        assert lh.history(ITEMS)[0]["run_id"] == "r2"
    else:
        assert ids == [1, 1, 2, 3, 4, 5]  # the embedded engine appends; its scoring gate checks the keys


# -- maintenance ----------------------------------------------------------------------------------------


def test_maintain_compacts_and_vacuums_only_what_no_version_needs(spark, engine_lakehouse):
    lh = engine_lakehouse
    for i in range(4):
        lh.write(
            _df(spark, [(100 + i, f"n{i}", "x"), (200 + i, f"m{i}", "y")]), ITEMS, "append", run_id=f"r{i}"
        )
    versions = {v: _rows(lh.read(ITEMS, version=v)) for v in range(0, 5)}
    # A killed run's staged file, older than any retention: no version names it.
    orphan_dir = os.path.join(lh.path(ITEMS), "run-killed-0000", "part=x")
    os.makedirs(orphan_dir)
    orphan = os.path.join(orphan_dir, "part-00000-orphan.snappy.parquet")
    lh.spark.createDataFrame([(999, "ghost")], "id long, name string").toPandas().to_parquet(orphan)
    old = time.time() - 40 * 24 * 3600
    os.utime(orphan, (old, old))
    files_before = len(DeltaTable(lh.path(ITEMS)).file_uris())

    result = lh.maintain(ITEMS)
    assert result.retain_hours == 720  # the log retention (30 days): every version in the log stays readable
    assert not os.path.exists(orphan)
    assert result.vacuumed_files == 1
    assert len(DeltaTable(lh.path(ITEMS)).file_uris()) < files_before  # compacted
    # OPTIMIZE commits a version, and VACUUM records its start and end as two more (both engines).
    assert result.version == lh.version(ITEMS) == 7
    for v, rows in versions.items():  # time travel inside the retention window still works
        assert _rows(lh.read(ITEMS, version=v)) == rows
    assert _rows(lh.read(ITEMS)) == versions[4]
    with pytest.raises(ValueError, match="would delete files that versions still in the log need"):
        lh.maintain(ITEMS, retain_hours=24)


def test_vacuum_lists_one_task_per_data_folder():
    from jobs.tables.delta_spark import listing_parallelism

    files = [("/t/part=x/a.parquet", 1), ("/t/part=x/b.parquet", 1), ("/t/part=y/c.parquet", 1)]
    assert listing_parallelism("10000", files) == 2
    assert listing_parallelism("1", files) == 1  # a user's lower setting stays
    assert listing_parallelism("10000", []) == 1


def test_interval_hours():
    assert interval_hours("interval 30 days") == 720
    assert interval_hours("interval 1 week") == 168
    assert interval_hours("12 hours") == 12
    with pytest.raises(ValueError, match="cannot read the interval"):
        interval_hours("forever")


def test_audit_rows_on_the_driver_equal_what_spark_reads(engine_lakehouse, spark):
    """``append_rows`` (one pyarrow-written file, no Spark job) and ``rows`` (delta-rs on the driver) give
    the rows Spark's reader of the table gives: maps as dicts, arrays, nulls and UTC timestamps."""
    from schemas import audit as audit_schemas

    lh = engine_lakehouse
    t0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    rows = [
        {
            "run_id": f"r{i}",
            "stage": "s",
            "seq": i,
            "status": "succeeded" if i else "running",
            "started_at": t0,
            "ended_at": t0 if i else None,
            "rows_in": None,
            "rows_out": 7 * i,
            "tables_read": {"bronze.documents": i} if i else None,
            "tables_written": {},
            "inputs": ["conf:abc", f"f{i}"] if i else None,
            "message": "m",
            "profile": None,
        }
        for i in range(3)
    ]
    lh.append_rows(audit_schemas.RUNS, rows[:2], "r0")
    lh.append_rows(audit_schemas.RUNS, rows[2:], "r2")
    assert lh.version(audit_schemas.RUNS) == 2
    got = sorted(lh.rows(audit_schemas.RUNS), key=lambda r: r["seq"])
    assert got == rows
    assert sorted(lh.rows(audit_schemas.RUNS, ["seq", "inputs"]), key=lambda r: r["seq"]) == [
        {"seq": r["seq"], "inputs": r["inputs"]} for r in rows
    ]
    via_spark = sorted(
        (r.asDict(recursive=True) for r in lh.read(audit_schemas.RUNS).collect()), key=lambda r: r["seq"]
    )
    tz = lambda v: v.astimezone(timezone.utc) if isinstance(v, datetime) else v  # noqa: E731 (Spark: local)
    assert [{k: tz(v) for k, v in r.items()} for r in via_spark] == rows
