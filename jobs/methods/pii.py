"""PII redaction (the clean stage's last step): count e-mail addresses, phone numbers and IP addresses in
each surviving document, mask them, drop the documents that hold too many, flag the rest.

``udfs.pii.Redactor`` does the work on the executors, one Arrow batch at a time (``mapInPandas``); nothing
here collects documents. The text of bronze.documents is never touched: the step rewrites the normalized text
that goes to silver.documents (and from there to the exports).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DoubleType, LongType, StringType, StructField, StructType

from schemas.pii import PII
from udfs.pii import COLUMNS, TYPES, Redactor, TypeRule

# Spark types of ``udfs.pii.COLUMNS``, added beside each row.
FIELDS = [
    *[StructField(f"pii_{t}", LongType(), False) for t in TYPES],
    StructField("pii_masked", LongType(), False),
    StructField("pii_flagged", ArrayType(StringType(), False), False),
    StructField("pii_drop_reason", StringType(), True),
    StructField("pii_drop_value", DoubleType(), True),
    StructField("pii_drop_detail", StringType(), True),
]
assert [f.name for f in FIELDS] == COLUMNS


def redact(
    rules: Mapping[str, TypeRule],
    max_total: int | None,
    phone_formats: tuple[str, ...] = ("nanp",),
    public_ips_only: bool = True,
    text_col: str = "text",
) -> Callable[[DataFrame], DataFrame]:
    """Rows with ``text_col`` redacted and the ``udfs.pii.COLUMNS`` beside them (see ``udfs.pii.Redactor``).

    Args:
        rules: what happens to each type (a type left out is not looked for).
        max_total: drop a document with more matches than this of the types not flagged (None: off).
        phone_formats: ``nanp`` and/or ``international``.
        public_ips_only: count only public IP addresses.
        text_col: the column to redact.
    """
    from udfs.pii import RegexDetector

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        # Built inside the task: the compiled patterns stay in the Python worker.
        step = Redactor(rules, max_total, RegexDetector(list(rules), phone_formats, public_ips_only))
        for pdf in batches:
            yield step(pdf, text_col)

    def transform(df: DataFrame) -> DataFrame:
        return df.mapInPandas(run, StructType([*df.schema.fields, *FIELDS]))

    return transform


def drops(df: DataFrame) -> DataFrame:
    """The redacted rows the step drops (``pii_drop_reason`` set)."""
    return df.filter(F.col("pii_drop_reason").isNotNull())


def survivors(df: DataFrame) -> DataFrame:
    """The redacted rows the step keeps, without the step's columns."""
    return df.filter(F.col("pii_drop_reason").isNull()).drop(*COLUMNS)


def score_rows(run_id: str, detector: str = "regex") -> Callable[[DataFrame], DataFrame]:
    """scores.pii rows (one per redacted document) from the redacted rows."""

    def transform(df: DataFrame) -> DataFrame:
        counts = [F.col(f"pii_{t}").alias(t) for t in TYPES]
        total = sum((F.col(f"pii_{t}") for t in TYPES), F.lit(0)).cast("long")
        return df.select(
            "doc_id",
            *counts,
            total.alias("total"),
            F.col("pii_masked").alias("masked"),
            F.col("pii_flagged").alias("flagged"),
            F.col("pii_drop_reason").isNotNull().alias("dropped"),
            F.lit(detector).alias("detector"),
            F.lit(run_id).alias("clean_run_id"),
        )

    return transform


def empty_scores(spark) -> DataFrame:
    """scores.pii with no rows (the step is off: the clean stage still commits the table, empty)."""
    return spark.createDataFrame([], PII.schema)
