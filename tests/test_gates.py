"""Gates: a failing suite publishes nothing and is audited; downstream stages refuse to start on it."""

from __future__ import annotations

import argparse
import json
import os

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructType

from jobs import audit
from jobs.gates import GateFailed, Output, publish, validate
from jobs.runtime import EXIT_GATE, EXIT_OK, run_job
from schemas import audit as audit_schemas
from schemas.base import TableSpec, col


def _suite(params):
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToBeUnique(column="id"),
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="id", min_value=0, max_value=params.get("max_id", 100)
        ),
    ]


GATED = TableSpec(
    name="test.gated",
    schema=StructType([col("id", LongType(), False, "id"), col("name", StringType(), False, "name")]),
    description="gated test table",
    suite=_suite,
)
ROWS_SCHEMA = "id long, name string"  # nullable, so bad rows reach the gate
GOOD = [(1, "a"), (2, "b"), (3, "c")]
BAD = [(1, "a"), (1, "b"), (500, None)]


def _run_dirs(lakehouse, spec):
    path = lakehouse.path(spec)
    return sorted(d for d in os.listdir(path) if d.startswith("run-")) if os.path.isdir(path) else []


def test_suite_runs_on_spark_dataframe(spark):
    ok = validate(spark.createDataFrame(GOOD, ROWS_SCHEMA), GATED, {})
    assert (ok.success, ok.evaluated, ok.unsuccessful, ok.observed_rows) == (True, 4, 0, 3)
    bad = validate(spark.createDataFrame(BAD, ROWS_SCHEMA), GATED, {})
    failed = {(e["expectation"], e["column"]): e for e in bad.expectations if not e["success"]}
    assert sorted(failed) == [
        ("expect_column_values_to_be_between", "id"),
        ("expect_column_values_to_be_unique", "id"),
        ("expect_column_values_to_not_be_null", "name"),
    ]
    assert failed[("expect_column_values_to_be_unique", "id")]["unexpected_count"] == 2
    assert failed[("expect_column_values_to_be_between", "id")]["examples"] == [500]
    assert failed[("expect_column_values_to_not_be_null", "name")]["unexpected_count"] == 1


def test_suite_gives_the_same_verdicts_cached_or_read_from_files(spark, tmp_path):
    # Same rows, same verdicts and counts, whether the suite caches the frame or reads staged Parquet.
    wide = spark.createDataFrame([(*r, "x" * 50) for r in BAD], ROWS_SCHEMA + ", text string")
    want = validate(spark.createDataFrame(BAD, ROWS_SCHEMA), GATED, {})
    wide.write.parquet(str(tmp_path / "staged"))
    for got in (
        validate(wide, GATED, {}),
        validate(spark.read.parquet(str(tmp_path / "staged")), GATED, {}, files=True),
    ):
        assert (got.success, got.observed_rows, got.expectations) == (False, 3, want.expectations)


def test_suite_leaves_no_cached_rows_behind_but_keeps_the_callers_cache(spark):
    """Great Expectations persists the frame it validates; validate unpersists it, passed or failed, unless
    the caller had cached it."""
    before = {r.id() for r in spark.sparkContext._jsc.getPersistentRDDs().values()}
    for rows in (GOOD, BAD):
        df = spark.createDataFrame(rows, ROWS_SCHEMA).filter("id is not null or id is null")
        validate(df, GATED, {})
        assert not df.storageLevel.useMemory and not df.storageLevel.useDisk
    assert {r.id() for r in spark.sparkContext._jsc.getPersistentRDDs().values()} == before
    mine = spark.createDataFrame(GOOD, ROWS_SCHEMA).persist()
    try:
        assert validate(mine, GATED, {}).success
        assert mine.storageLevel.useMemory
    finally:
        mine.unpersist()


def test_failed_gate_publishes_nothing_and_is_audited(spark, lakehouse):
    audit.ensure_tables(lakehouse)
    good_run = audit.start_run(lakehouse, "teststage", "good-run")
    commits = publish(lakehouse, good_run, [Output(GATED, spark.createDataFrame(GOOD, ROWS_SCHEMA))])
    assert commits["test.gated"].version == 1
    dirs_before = _run_dirs(lakehouse, GATED)

    bad_run = audit.start_run(lakehouse, "teststage", "bad-run")
    with pytest.raises(GateFailed) as exc:
        publish(lakehouse, bad_run, [Output(GATED, spark.createDataFrame(BAD, ROWS_SCHEMA))])
    # Nothing committed, staged files removed, previous version intact.
    assert lakehouse.version(GATED) == 1
    assert _run_dirs(lakehouse, GATED) == dirs_before
    assert sorted(tuple(r) for r in lakehouse.read(GATED).collect()) == GOOD

    text = str(exc.value)
    assert text.splitlines()[0] == (
        "gate FAILED: test.gated (suite test.gated.suite): 3 of 4 expectations failed on 3 staged rows"
    )
    assert "x expect_column_values_to_be_unique  column=id  unexpected=2  examples=[1, 1]" in text
    assert "x expect_column_values_to_be_between  column=id  unexpected=1" in text

    rows = (
        lakehouse.read(audit_schemas.EXPECTATIONS)
        .filter(F.col("table_name") == "test.gated")
        .orderBy("validated_at")
        .collect()
    )
    assert [
        (r["run_id"], r["success"], r["evaluated"], r["unsuccessful"], r["table_version"]) for r in rows
    ] == [
        ("good-run", True, 4, 0, 1),
        ("bad-run", False, 4, 3, None),
    ]
    results = json.loads(rows[1]["results_json"])
    assert sorted((e["expectation"], e["column"], e["success"]) for e in results) == [
        ("expect_column_values_to_be_between", "id", False),
        ("expect_column_values_to_be_unique", "id", False),
        ("expect_column_values_to_not_be_null", "id", True),
        ("expect_column_values_to_not_be_null", "name", False),
    ]

    # The latest gate of test.gated failed: a stage reading it refuses to start.
    with pytest.raises(audit.UpstreamNotPassed, match="test.gated: its latest gate failed .run bad-run"):
        audit.check_upstream(lakehouse, [GATED])


def _conf_file(tmp_path, lakehouse):
    from tests.conftest import write_conf

    return write_conf(tmp_path / "c.yaml", lakehouse.warehouse, [{"name": "s", "path": "unused/*"}])


def test_job_exit_codes_and_run_rows(spark, lakehouse, tmp_path, capsys):
    conf = _conf_file(tmp_path, lakehouse)

    def body(df_rows):
        def run(ctx):
            publish(ctx.lakehouse, ctx.run, [Output(GATED, ctx.spark.createDataFrame(df_rows, ROWS_SCHEMA))])
            return "published"

        return run

    args = argparse.Namespace(conf=str(conf), overrides=[], run_id=None, verbose=False)
    assert run_job("writer", args, body(BAD)) == EXIT_GATE
    err = capsys.readouterr().err
    assert "writer: gate failed, nothing was published" in err
    assert "x expect_column_values_to_not_be_null  column=name  unexpected=1" in err
    assert lakehouse.version(GATED) is None or lakehouse.read(GATED).count() == 0

    # A reader of test.gated refuses to start until the writer's gate passes.
    assert run_job("reader", args, lambda ctx: "read", reads=[GATED]) == EXIT_GATE
    assert "reader: refusing to start: test.gated: its latest gate failed" in capsys.readouterr().err
    assert run_job("writer", args, body(GOOD)) == EXIT_OK
    assert run_job("reader", args, lambda ctx: "read it", reads=[GATED]) == EXIT_OK
    assert capsys.readouterr().out.strip().splitlines()[-1] == "read it"

    runs = (
        lakehouse.read(audit_schemas.RUNS).filter(F.col("ended_at").isNotNull()).orderBy("ended_at").collect()
    )
    assert [(r["stage"], r["status"]) for r in runs] == [
        ("writer", "gate_failed"),
        ("reader", "refused"),
        ("writer", "succeeded"),
        ("reader", "succeeded"),
    ]
    assert runs[2]["tables_written"] == {"test.gated": 1}
    assert runs[3]["tables_read"] == {"test.gated": 1}


def test_unexpected_error_is_one_line_with_log(spark, lakehouse, tmp_path, capsys):
    conf = _conf_file(tmp_path, lakehouse)
    args = argparse.Namespace(conf=str(conf), overrides=[], run_id="boom-run", verbose=False)

    def body(ctx):
        raise ZeroDivisionError("division by zero")

    assert run_job("boom", args, body) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("boom: failed: ZeroDivisionError: division by zero (details: ")
    assert "Traceback" not in err
    log_path = err.rsplit("(details: ", 1)[1].rstrip(")")
    assert "Traceback" in open(log_path).read()
    last = (
        lakehouse.read(audit_schemas.RUNS)
        .filter(F.col("run_id") == "boom-run")
        .orderBy("ended_at")
        .collect()[-1]
    )
    assert last["status"] == "failed"


def test_targets_gate_fails_on_an_eval_example_or_its_text(spark, lakehouse):
    """The gate before a stage selects with benchmark targets (``jobs.targets``): none from the evaluation
    split, none whose normalized text the evaluation split also has; exact counts, audited either way."""
    from datetime import datetime, timezone

    from jobs.gates import check
    from jobs.methods.heldout import eval_overlap, target_examples
    from schemas import ref

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = [
        ("arc", "train", "1", "What melts ice?\nheat", None, "f", "r", now),
        ("arc", "dev", "2", "Which gas do plants take in?", None, "f", "r", now),
        ("arc", "test", "3", "what  MELTS ice? heat", None, "f", "r", now),  # arc 1, but for case and spaces
        ("qa", "test", "4", "Name a river.", None, "f", "r", now),
    ]
    bench = spark.createDataFrame(rows, ref.BENCHMARKS.schema)
    splits, params = ["train", "dev"], {"target_splits": ["train", "dev"], "eval_split": "test"}
    audit.ensure_tables(lakehouse)
    run = audit.start_run(lakehouse, "score_similarity", "targets-1")

    def gate(targets, against=bench):
        return check(
            lakehouse, run, targets.transform(eval_overlap(against, splits, "test")), ref.TARGETS, params
        )

    # Targets that took every split: the two test rows are refused, and so is arc 1 for its text.
    with pytest.raises(GateFailed) as exc:
        gate(bench.select("benchmark", "split", "example_id", "text"))
    failed = {
        (e["expectation"], e["column"]): e for e in exc.value.results[0].expectations if not e["success"]
    }
    assert {k: (e["unexpected_count"], sorted(e["examples"])) for k, e in failed.items()} == {
        ("expect_column_values_to_be_in_set", "split"): (2, ["test", "test"]),
        ("expect_column_values_to_not_be_in_set", "split"): (2, ["test", "test"]),
        ("expect_column_values_to_be_null", ref.EVAL_OVERLAP): (1, ["arc|test|3"]),
    }
    # The target splits' examples pass once arc 1 has no eval twin.
    ok = gate(target_examples(bench, splits), against=bench.filter("example_id != '3'"))
    assert (ok.success, ok.evaluated, ok.observed_rows) == (True, 7, 2)
    got = lakehouse.read(audit_schemas.EXPECTATIONS).filter("table_name = 'ref.targets'").collect()
    assert sorted((r["success"], r["unsuccessful"]) for r in got) == [(False, 3), (True, 0)]
