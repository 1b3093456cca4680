"""scores.pii: what the clean stage's PII step found in each document, by type, and what it did."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark.sql.types import ArrayType, BooleanType, LongType, StringType, StructType

from schemas.base import TableSpec, col

TYPES = ("email", "phone", "ipv4", "ipv6")  # udfs.pii.TYPES


def _pii_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    exps = [e.ExpectColumnValuesToBeUnique(column="doc_id")]
    exps += [e.ExpectColumnValuesToBeBetween(column=c, min_value=0) for c in (*TYPES, "masked")]
    # A document is masked, dropped or left alone: a dropped one has nothing masked.
    exps.append(e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="total", column_B="masked", or_equal=True))
    if "detector" in params:
        exps.append(e.ExpectColumnValuesToBeInSet(column="detector", value_set=[params["detector"]]))
    return exps


PII = TableSpec(
    name="scores.pii",
    schema=StructType(
        [
            col("doc_id", StringType(), False, "document id"),
            *[col(t, LongType(), False, f"{t} matches after the false-positive guards") for t in TYPES],
            col("total", LongType(), False, "matches of every type"),
            col(
                "masked", LongType(), False, "matches replaced by their placeholder in silver.documents.text"
            ),
            col(
                "flagged",
                ArrayType(StringType(), False),
                False,
                "types whose action is flag and that the document holds (its text keeps them)",
            ),
            col("dropped", BooleanType(), False, "dropped by the PII step (silver.filtered has the reason)"),
            col("detector", StringType(), False, "the detector that found them (regex)"),
            col("clean_run_id", StringType(), False, "clean run"),
        ]
    ),
    description="per document that reached the PII step: PII matches by type, masked and flagged",
    suite=_pii_suite,
)
