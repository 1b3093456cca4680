"""Intermediate shapes of the ingest stage (not tables): input splits and parsed reader rows."""

from __future__ import annotations

from pyspark.sql.types import LongType, MapType, StringType, StructType

from schemas.base import MESSAGES_TYPE, col

SPLIT_SCHEMA = StructType(
    [
        col("source", StringType(), False, "input name"),
        col("uri", StringType(), False, "file path or URI"),
        col("fmt", StringType(), False, "jsonl | parquet | warc"),
        col("start", LongType(), False, "first byte of the split"),
        col("end", LongType(), True, "byte after the split; null = to the end of the file"),
        col("text_field", StringType(), False, "input field holding the text (dotted path)"),
        col("url_field", StringType(), True, "input field holding the URL (dotted path)"),
        col("id_field", StringType(), True, "input field holding the source id (dotted path)"),
    ]
)

PARSED_SCHEMA = StructType(
    [
        col("kind", StringType(), False, "doc | reject | file (per-split summary)"),
        col("source", StringType(), False, "input name"),
        col("source_file", StringType(), False, "file path or URI"),
        col(
            "record_number",
            LongType(),
            True,
            "1-based record ordinal in the split (the driver makes it per file)",
        ),
        col("split_start", LongType(), False, "first byte of the split the row came from"),
        col(
            "byte_offset",
            LongType(),
            True,
            "record start: in the decompressed file, or for a WARC/ARC with one gzip member per record the "
            "member's start in the compressed file",
        ),
        col("doc_id", StringType(), True, "document id (docs)"),
        col("source_id", StringType(), True, "record id in the source (docs)"),
        col("url", StringType(), True, "URL (docs)"),
        col("domain", StringType(), True, "registered domain (docs)"),
        col("text", StringType(), True, "text (docs; of a chat record, its messages in the plain template)"),
        col("format", StringType(), True, "text | chat (docs)"),
        col("messages", MESSAGES_TYPE, True, "a chat record's messages (docs)"),
        col("n_bytes", LongType(), True, "UTF-8 bytes of text (docs)"),
        col("meta", StringType(), True, "JSON of unmapped fields (docs)"),
        col("reason", StringType(), True, "reject reason (rejects)"),
        col("detail", StringType(), True, "reject detail (rejects)"),
        col("snippet", StringType(), True, "truncated raw record (rejects)"),
        col("n_records", LongType(), True, "records the split produced (file rows)"),
        col("n_lines", LongType(), True, "JSONL lines that start in the split, blank ones too (file rows)"),
        col(
            "n_skipped",
            MapType(StringType(), LongType()),
            True,
            "record type -> records that hold no document, e.g. warcinfo, request, metadata (file rows)",
        ),
        col("n_mapped", LongType(), True, "records the field map was applied to (file rows)"),
        col(
            "field_misses",
            MapType(StringType(), LongType()),
            True,
            "mapped field path -> records it did not resolve in (file rows)",
        ),
    ]
)
