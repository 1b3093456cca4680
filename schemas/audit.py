"""Audit: one row per stage run event and one per validated suite, with the table versions involved."""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    LongType,
    MapType,
    StringType,
    StructType,
    TimestampType,
)

from schemas.base import TableSpec, col

RUN_STATUSES = ("running", "succeeded", "gate_failed", "failed", "refused", "abandoned")

RUNS = TableSpec(
    name="audit.runs",
    schema=StructType(
        [
            col("run_id", StringType(), False, "run id (given with --run-id, or generated)"),
            col("stage", StringType(), False, "stage name"),
            col("seq", LongType(), False, "run sequence number: the Delta txn version of the run's commits"),
            col(
                "status",
                StringType(),
                False,
                "running | succeeded | gate_failed | failed | refused | abandoned (killed; written by the "
                "next run of the stage, which the message names)",
            ),
            col("started_at", TimestampType(), False, "run start (UTC)"),
            col(
                "ended_at",
                TimestampType(),
                True,
                "run end (UTC); null while running; for abandoned, when a later run found it",
            ),
            col("rows_in", LongType(), True, "records or rows the stage read"),
            col("rows_out", LongType(), True, "rows the stage published, all tables together"),
            col("tables_read", MapType(StringType(), LongType()), True, "table -> version read"),
            col("tables_written", MapType(StringType(), LongType()), True, "table -> version committed"),
            col(
                "inputs",
                ArrayType(StringType()),
                True,
                "input file fingerprints (uri|size|mtime); conf:<sha> of the conf sections a recomputing "
                "stage uses, and same-as:<run> when it skipped a run with nothing new (jobs.freshness)",
            ),
            col("message", StringType(), True, "summary or error"),
            col("profile", StringType(), True, "conf profile name"),
        ]
    ),
    description="one row per stage run event (start, then end); the latest row of a run_id is its state",
)

EXPECTATIONS = TableSpec(
    name="audit.expectations",
    schema=StructType(
        [
            col("run_id", StringType(), False, "run that validated"),
            col("stage", StringType(), False, "stage name"),
            col("table_name", StringType(), False, "table whose staged data was validated"),
            col("suite", StringType(), False, "suite name"),
            col("success", BooleanType(), False, "whether every expectation passed"),
            col("evaluated", LongType(), False, "expectations evaluated"),
            col("unsuccessful", LongType(), False, "expectations failed"),
            col("observed_rows", LongType(), True, "rows in the staged data"),
            col("results_json", StringType(), False, "per-expectation results as JSON"),
            col("table_version", LongType(), True, "version committed after the gate passed; null if not"),
            col("validated_at", TimestampType(), False, "when (UTC)"),
        ]
    ),
    description="one row per validated suite",
)

TABLES = (RUNS, EXPECTATIONS)
