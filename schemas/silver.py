"""Silver: cleaned, de-duplicated documents, and every dropped document with the rule that dropped it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructType,
    TimestampType,
)

from schemas.base import FORMATS, MESSAGES_TYPE, TableSpec, col

# Filter steps in the order the clean stage applies them.
STEPS = ("blocklist", "normalize", "language", "rules", "exact_dedup", "near_dedup", "decontamination", "pii")


def _documents_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    exps = [
        e.ExpectColumnValuesToBeUnique(column="doc_id"),
        e.ExpectColumnValuesToBeUnique(column="text_hash"),
        e.ExpectColumnValueLengthsToBeBetween(column="text", min_value=1),
        e.ExpectColumnValuesToBeBetween(column="lang_score", min_value=0.0, max_value=1.0),
        e.ExpectColumnValuesToBeBetween(column="n_bytes", min_value=1),
        e.ExpectColumnValuesToNotBeNull(column="format"),
        e.ExpectColumnValuesToBeInSet(column="format", value_set=list(FORMATS)),
    ]
    if "allowed_langs" in params:
        exps.append(e.ExpectColumnValuesToBeInSet(column="lang", value_set=list(params["allowed_langs"])))
    return exps


def _filtered_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    exps = [
        e.ExpectColumnValuesToBeUnique(column="doc_id"),
        e.ExpectColumnValuesToBeInSet(column="step", value_set=list(STEPS)),
    ]
    return exps


DOCUMENTS = TableSpec(
    name="silver.documents",
    schema=StructType(
        [
            col("doc_id", StringType(), False, "document id (from bronze)"),
            col("url", StringType(), True, "URL"),
            col("domain", StringType(), True, "registered domain"),
            col("source", StringType(), False, "input name"),
            col("lang", StringType(), False, "ISO 639-1 language (py3langid)"),
            col("lang_score", DoubleType(), False, "language probability"),
            col("text", StringType(), False, "normalized text, less the lines the c4_lines rule removed"),
            # Nullable like bronze's: rows written before chat records existed read as null (= text).
            col("format", StringType(), True, "text (a document) or chat (a record with messages)"),
            col(
                "messages",
                MESSAGES_TYPE,
                True,
                "a chat record's messages, each content normalized and PII-redacted; null for text",
            ),
            col("n_bytes", LongType(), False, "UTF-8 bytes of the normalized text"),
            col("n_bytes_raw", LongType(), False, "UTF-8 bytes of the text as ingested"),
            col("n_tokens_est", LongType(), False, "token estimate: ceil(n_bytes / 4)"),
            col("text_hash", StringType(), False, "sha256 of the lowercased, whitespace-collapsed text"),
            col("contamination", StringType(), True, "benchmark it overlaps (decontamination action 'flag')"),
            col("clean_run_id", StringType(), False, "clean run"),
            col("cleaned_at", TimestampType(), False, "when that run started (UTC)"),
        ]
    ),
    description="one row per kept, normalized, de-duplicated document",
    suite=_documents_suite,
)

FILTERED = TableSpec(
    name="silver.filtered",
    schema=StructType(
        [
            col("doc_id", StringType(), False, "document id"),
            col("url", StringType(), True, "URL"),
            col("domain", StringType(), True, "registered domain"),
            col("source", StringType(), False, "input name"),
            col("step", StringType(), False, "one of schemas.silver.STEPS"),
            col(
                "reason",
                StringType(),
                False,
                "the first rule that dropped it, e.g. gopher_quality:word_count",
            ),
            col("value", DoubleType(), True, "that rule's value for the document"),
            col("survivor_id", StringType(), True, "for duplicates: the kept document"),
            col("detail", StringType(), True, "more about the reason"),
            col("clean_run_id", StringType(), False, "clean run"),
            col("cleaned_at", TimestampType(), False, "when that run started (UTC)"),
        ]
    ),
    description="one row per dropped document with the rule that dropped it and the rule's value",
    suite=_filtered_suite,
)

# The dedup steps of schemas.silver.STEPS: what silver.dedup_index records for a duplicate.
DEDUP_STEPS = ("exact_dedup", "near_dedup")


def _dedup_index_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    exps = [
        e.ExpectColumnValuesToBeUnique(column="doc_id"),
        e.ExpectColumnValuesToBeUnique(column="order_key"),
        e.ExpectColumnValuesToBeInSet(column="step", value_set=list(DEDUP_STEPS)),
        e.ExpectColumnValuesToMatchRegex(column="order_key", regex=r"^[0-9]{20}[|]"),
    ]
    return exps


DEDUP_INDEX = TableSpec(
    name="silver.dedup_index",
    schema=StructType(
        [
            col("doc_id", StringType(), False, "document id"),
            col(
                "order_key",
                StringType(),
                False,
                "the survivor rule's sort key: ingest time (microseconds, 20 digits), '|', doc_id",
            ),
            col("text_hash", StringType(), False, "sha256 of the lowercased, whitespace-collapsed text"),
            col(
                "sig",
                ArrayType(IntegerType(), False),
                True,
                "MinHash signature (clean.near_dedup); null for exact duplicates and text without tokens",
            ),
            col("step", StringType(), True, "exact_dedup or near_dedup for a duplicate; null for a survivor"),
            col("survivor_id", StringType(), True, "for a duplicate: the document it duplicates"),
            col(
                "component",
                StringType(),
                True,
                "order_key of the survivor of its near-duplicate cluster (its own when alone); null for "
                "exact duplicates and with near dedup off",
            ),
            col("clean_run_id", StringType(), False, "clean run that planned the batch"),
            col("cleaned_at", TimestampType(), False, "when that run started (UTC)"),
        ]
    ),
    description="every document that reached the dedup steps, with what incremental cleans match against",
    suite=_dedup_index_suite,
)

TABLES = (DOCUMENTS, FILTERED, DEDUP_INDEX)
