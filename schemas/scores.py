"""Score tables keyed by doc_id, so adding a signal never rewrites the text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    StringType,
    StructType,
    TimestampType,
)

from schemas.base import TableSpec, col
from schemas.pii import PII
from schemas.signals import SIGNALS


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

# Columns a scoring gate adds to the staged rows before validating (see ``jobs.scoring.gate_view``):
# the doc_id when it is missing from silver.documents, and the key when the table already has it.
MISSING_DOC, ALREADY_SCORED = "_missing_doc", "_already_scored"


def _scoring_checks(params: Mapping[str, Any], keys: list[str]) -> list:
    """One row per key in the batch and in the table, and every doc_id in silver.documents."""
    import great_expectations as gx

    e = gx.expectations
    exps = [
        e.ExpectCompoundColumnsToBeUnique(column_list=keys)
        if len(keys) > 1
        else e.ExpectColumnValuesToBeUnique(column=keys[0])
    ]
    if params.get("checked"):
        exps += [
            e.ExpectColumnValuesToBeNull(column=MISSING_DOC),
            e.ExpectColumnValuesToBeNull(column=ALREADY_SCORED),
        ]
    return exps


def _run_cols() -> list:
    return [
        col("run_id", StringType(), False, "scoring run"),
        col("scored_at", TimestampType(), False, "when that run started (UTC)"),
    ]


PRRC_KEYS = ["doc_id", "raters"]


def _prrc_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    exps = _scoring_checks(params, PRRC_KEYS)
    for d in PRRC_DIMENSIONS:
        exps.append(e.ExpectColumnValuesToBeBetween(column=d, min_value=0.0, max_value=5.0))
        exps.append(e.ExpectColumnValuesToBeBetween(column=f"{d}_label", min_value=0, max_value=5))
    exps.append(e.ExpectColumnValuesToBeBetween(column="n_tokens", min_value=0))
    return exps


PRRC_DIMENSIONS = ("professionalism", "readability", "reasoning", "cleanliness")

PRRC = TableSpec(
    name="scores.prrc",
    schema=StructType(
        [col("doc_id", StringType(), False, "document id")]
        + [
            c
            for d in PRRC_DIMENSIONS
            for c in (
                col(d, DoubleType(), False, f"{d}: expected class Σ k·p(k), 0-5 (regressor: its output)"),
                col(f"{d}_label", IntegerType(), False, f"{d}: most likely class, 0-5"),
            )
        ]
        + [
            col("raters", StringType(), False, "the four raters as dimension=id@revision, ';'-separated"),
            col("n_tokens", LongType(), False, "tokens of the document under the raters' tokenizer"),
            *_run_cols(),
        ]
    ),
    description="Meta-rater PRRC ratings per document and rater set",
    suite=_prrc_suite,
)

PERPLEXITY_KEYS = ["doc_id", "model_id", "revision"]


def _perplexity_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    return _scoring_checks(params, PERPLEXITY_KEYS) + [
        # bpb > 0 and finite: NaN sorts above every double in Spark, so the upper bound catches it too.
        e.ExpectColumnValuesToBeBetween(column="bpb", min_value=0.0, strict_min=True, max_value=1e4),
        e.ExpectColumnValuesToBeBetween(column="nll_sum", min_value=0.0, max_value=1e15),
        e.ExpectColumnValuesToBeBetween(column="n_tokens", min_value=1),
        e.ExpectColumnValuesToBeBetween(column="n_bytes", min_value=1),
    ]


PERPLEXITY = TableSpec(
    name="scores.perplexity",
    schema=StructType(
        [
            col("doc_id", StringType(), False, "document id"),
            col("model_id", StringType(), False, "perplexity-pool model id"),
            col("revision", StringType(), False, "model revision"),
            col("n_tokens", LongType(), False, "tokens scored (the whole text, strided windows)"),
            col("n_bytes", LongType(), False, "UTF-8 bytes of the text"),
            col("nll_sum", DoubleType(), False, "summed negative log-likelihood, nats"),
            col("bpb", DoubleType(), False, "bits per byte = nll_sum / (ln 2 · n_bytes)"),
            *_run_cols(),
        ]
    ),
    description="per-document, per-model negative log-likelihood and bits-per-byte",
    partition_by=("model_id",),
    suite=_perplexity_suite,
)

EMBEDDING_KEYS = ["doc_id", "method", "model_id", "revision"]


def _embeddings_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    exps = _scoring_checks(params, EMBEDDING_KEYS)
    exps.append(e.ExpectColumnValuesToBeInSet(column="method", value_set=["betr", "rds"]))
    if "dim" in params:
        exps.append(e.ExpectColumnValuesToBeInSet(column="dim", value_set=[params["dim"]]))
    return exps


EMBEDDINGS = TableSpec(
    name="scores.embeddings",
    schema=StructType(
        [
            col("doc_id", StringType(), False, "document id"),
            col("method", StringType(), False, "betr (sentence embedder) or rds (RDS+ encoder)"),
            col("model_id", StringType(), False, "embedding model id"),
            col("revision", StringType(), False, "model revision"),
            col("dim", IntegerType(), False, "embedding size"),
            col("embedding", ArrayType(FloatType(), False), False, "L2-normalized document embedding"),
            col("n_tokens", LongType(), False, "tokens of the document under the model's tokenizer"),
            *_run_cols(),
        ]
    ),
    description="document embeddings (BETR embedder, RDS+ encoder), reusable for classifiers",
    partition_by=("method",),
    suite=_embeddings_suite,
)

SIMILARITY_KEYS = ["doc_id", "benchmark", "method", "model_id", "revision"]


def _similarity_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    exps = _scoring_checks(params, SIMILARITY_KEYS)
    # float32 embeddings: a cosine may overshoot ±1 by rounding.
    exps.append(
        e.ExpectColumnValuesToBeBetween(column="max_cosine", min_value=-1.0 - 1e-5, max_value=1.0 + 1e-5)
    )
    exps.append(e.ExpectColumnValuesToBeBetween(column="best_rank", min_value=1))
    return exps


SIMILARITY = TableSpec(
    name="scores.similarity",
    schema=StructType(
        [
            col("doc_id", StringType(), False, "document id"),
            col("benchmark", StringType(), False, "benchmark whose examples are the targets"),
            col("method", StringType(), False, "betr or rds"),
            col("model_id", StringType(), False, "embedding model id"),
            col("revision", StringType(), False, "model revision"),
            col(
                "best_rank",
                IntegerType(),
                True,
                "min over the benchmark's targets of the document's rank among the ranked documents "
                "(betr: the sample; 1 = most similar); null when outside every target's top_k",
            ),
            col("max_cosine", DoubleType(), False, "max cosine similarity to the benchmark's examples"),
            col("n_targets", IntegerType(), False, "examples of the benchmark used as targets"),
            col("pool_docs", LongType(), False, "documents ranked (betr: the embedded sample of the pool)"),
            *_run_cols(),
        ]
    ),
    description="per document and benchmark: best rank (BETR) and max cosine (BETR, RDS+)",
    partition_by=("method",),
    suite=_similarity_suite,
)

TABLES = (QUALITY, PII, PRRC, PERPLEXITY, EMBEDDINGS, SIMILARITY)
