"""Score tables keyed by doc_id, so adding a signal never rewrites the text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark.sql.types import BooleanType, DoubleType, StringType, StructType

from schemas.base import TableSpec, col
from udfs.quality import SIGNALS


def _quality_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    exps = [e.ExpectColumnValuesToBeUnique(column="doc_id")]
    exps += [e.ExpectColumnValuesToBeBetween(column=s.name, min_value=s.lo, max_value=s.hi) for s in SIGNALS]
    return exps


QUALITY = TableSpec(
    name="scores.quality",
    schema=StructType(
        [col("doc_id", StringType(), False, "document id")]
        + [col(s.name, DoubleType(), False, s.description) for s in SIGNALS]
        + [
            col("kept", BooleanType(), False, "whether the document is in silver.documents"),
            col("clean_run_id", StringType(), False, "clean run that computed the signals"),
        ]
    ),
    description="heuristic quality signals per document (RedPajama-V2 names where they exist)",
    suite=_quality_suite,
)

TABLES = (QUALITY,)
