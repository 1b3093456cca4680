"""Bronze: raw records accepted by ingest, and the ones that could not be read, with the reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark.sql.types import LongType, StringType, StructType, TimestampType

from schemas.base import FORMATS, MESSAGES_TYPE, TableSpec, col

# Every reason a raw record can be refused. The sample corpus plants each one; tests check each one.
REJECT_REASONS: dict[str, str] = {
    "malformed_json": "the line is not valid JSON",
    "not_an_object": "valid JSON, but not an object (array, string, number, …)",
    "missing_text": "the mapped text field is absent or null",
    "empty_text": "the text is empty or whitespace only",
    "non_string_text": "the text field is not a string",
    "bad_field_type": "the id or url field is not a string or number",
    "malformed_messages": "a chat record's messages are not a non-empty list of {role, content} strings",
    "invalid_utf8": "the record's bytes are not valid UTF-8 (an HTML page: in no charset tried)",
    "too_large": "the record or its text is over the configured byte limit",
    "duplicate_doc_id": "another record (this batch or an earlier run) already has this doc_id",
    "unreadable_file": "the file (or its rest) could not be read or decompressed",
}

DOCUMENTS_SCHEMA = StructType(
    [
        col(
            "doc_id",
            StringType(),
            False,
            "128-bit hex hash of source + source id, or of normalized text + url",
        ),
        col("url", StringType(), True, "document URL as given by the source"),
        col(
            "domain",
            StringType(),
            True,
            "registered domain of the URL (public suffix list bundled, no network)",
        ),
        col("source", StringType(), False, "input name from the profile"),
        col("source_file", StringType(), False, "file the record came from"),
        col("source_id", StringType(), True, "record id in the source, when it has one"),
        col(
            "text",
            StringType(),
            False,
            "document text, as read (cleaning happens in the clean stage); of a chat record, its messages in "
            "the plain template (udfs.chat.render_plain)",
        ),
        # Nullable for the Parquet files written before chat records existed (they read as null = text);
        # the suite requires it on every new write.
        col("format", StringType(), True, "text (a document) or chat (a record with messages)"),
        col("messages", MESSAGES_TYPE, True, "a chat record's messages, as read; null for text"),
        col("n_bytes", LongType(), False, "UTF-8 bytes of text"),
        col("meta", StringType(), False, "JSON object of the input fields not mapped to a column"),
        col("ingest_run_id", StringType(), False, "run that ingested the record"),
        col("ingested_at", TimestampType(), False, "when that run started (UTC)"),
    ]
)

REJECTS_SCHEMA = StructType(
    [
        col("source", StringType(), False, "input name from the profile"),
        col("source_file", StringType(), False, "file the record came from"),
        col(
            "record_number", LongType(), True, "1-based record ordinal in the file (line, row or WARC record)"
        ),
        col("byte_offset", LongType(), True, "byte offset of the record in the (decompressed) file"),
        col("reason", StringType(), False, "one of schemas.bronze.REJECT_REASONS"),
        col("detail", StringType(), True, "what exactly was wrong"),
        col("snippet", StringType(), True, "start of the raw record, truncated"),
        col("doc_id", StringType(), True, "doc_id, for records that were read but refused (duplicates)"),
        col("ingest_run_id", StringType(), False, "run that read the record"),
        col("ingested_at", TimestampType(), False, "when that run started (UTC)"),
    ]
)


def _documents_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    exps = [
        e.ExpectColumnValuesToBeUnique(column="doc_id"),
        e.ExpectColumnValueLengthsToEqual(column="doc_id", value=32),
        e.ExpectColumnValuesToBeBetween(column="n_bytes", min_value=1, max_value=params.get("max_doc_bytes")),
        e.ExpectColumnValuesToNotBeNull(column="format"),
        e.ExpectColumnValuesToBeInSet(column="format", value_set=list(FORMATS)),
    ]
    if "run_id" in params:
        exps.append(e.ExpectColumnValuesToBeInSet(column="ingest_run_id", value_set=[params["run_id"]]))
    return exps


def _rejects_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    exps = [e.ExpectColumnValuesToBeInSet(column="reason", value_set=sorted(REJECT_REASONS))]
    return exps


DOCUMENTS = TableSpec(
    name="bronze.documents",
    schema=DOCUMENTS_SCHEMA,
    description="one row per accepted raw record",
    suite=_documents_suite,
)

REJECTS = TableSpec(
    name="bronze.rejects",
    schema=REJECTS_SCHEMA,
    description="one row per raw record that could not be read, with the reason and where it was",
    suite=_rejects_suite,
)

TABLES = (DOCUMENTS, REJECTS)
