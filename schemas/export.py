"""The export's file contracts (not tables): the exported columns, the Parquet shard schema, and the
per-shard metadata the executors report back to the driver for the manifest."""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

# The exported columns, in this order in every JSON object and Parquet file.
EXPORT_COLS = ("doc_id", "strategy", "rank", "url", "domain", "source", "n_tokens", "text")
# A chat record's JSON object: its messages in place of the text (the messages format instruction-tuning
# loaders read). Parquet files have one schema: every row has text, and ``messages`` (null for text).
CHAT_COLS = (*EXPORT_COLS[:-1], "messages")
PARQUET_COLS = (*EXPORT_COLS, "messages")
EXPORT_ARROW = pa.schema(
    [
        pa.field("doc_id", pa.string(), False),
        pa.field("strategy", pa.string(), False),
        pa.field("rank", pa.int32(), False),
        pa.field("url", pa.string()),
        pa.field("domain", pa.string()),
        pa.field("source", pa.string()),
        pa.field("n_tokens", pa.int64(), False),
        pa.field("text", pa.string(), False),
        pa.field(
            "messages",
            pa.list_(
                pa.struct([pa.field("role", pa.string(), False), pa.field("content", pa.string(), False)])
            ),
        ),
    ]
)
SHARD_SCHEMA = StructType(
    [
        StructField("shard", IntegerType(), False),
        StructField("name", StringType(), False),
        StructField("docs", LongType(), False),
        StructField("bytes", LongType(), False),
        StructField("uncompressed_bytes", LongType(), False),
        StructField("sha256", StringType(), False),
        StructField("first_rank", IntegerType(), False),
        StructField("last_rank", IntegerType(), False),
    ]
)

# The tokenized export (``export.format: tokens``): what each executor reports per Megatron shard.
TOKEN_SHARD_SCHEMA = StructType(
    [
        StructField("shard", IntegerType(), False),
        StructField("name", StringType(), False, metadata={"description": "data prefix: <name>.bin/.idx"}),
        StructField("docs", LongType(), False),
        StructField("tokens", LongType(), False, metadata={"description": "EOS tokens included"}),
        StructField("bin_bytes", LongType(), False),
        StructField("bin_sha256", StringType(), False),
        StructField("idx_bytes", LongType(), False),
        StructField("idx_sha256", StringType(), False),
        StructField("first_rank", IntegerType(), False),
        StructField("last_rank", IntegerType(), False),
    ]
)
