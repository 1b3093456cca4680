"""Reference data: benchmark examples (targets and decontamination) and, later, per-model accuracies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark.sql.types import StringType, StructType, TimestampType

from schemas.base import TableSpec, col


def _benchmarks_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    exps = [
        e.ExpectCompoundColumnsToBeUnique(column_list=["benchmark", "split", "example_id"]),
        e.ExpectColumnValueLengthsToBeBetween(column="text", min_value=1),
    ]
    return exps


BENCHMARKS = TableSpec(
    name="ref.benchmarks",
    schema=StructType(
        [
            col("benchmark", StringType(), False, "benchmark name"),
            col("split", StringType(), False, "split (test, validation, …)"),
            col("example_id", StringType(), False, "example id within the benchmark"),
            col("text", StringType(), False, "one target text: question, choices, answer and support joined"),
            col("source_file", StringType(), False, "file the example came from"),
            col("load_run_id", StringType(), False, "load_refs run"),
            col("loaded_at", TimestampType(), False, "when (UTC)"),
        ]
    ),
    description="one row per benchmark example",
    suite=_benchmarks_suite,
)

TABLES = (BENCHMARKS,)
