"""Gold tables: what the methods decide (domain weights, rater weights, document scores, selections).

Every gold table records the run that wrote it and, where a downstream step must be reproducible, the
versions of the tables it read (``table_versions``: JSON ``{"scores.perplexity": 7, ...}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark.sql.types import (
    BooleanType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructType,
    TimestampType,
)

from schemas.base import TableSpec, col

ESTIMATORS = ("spearmanr", "sign_cdf", "sign_sign", "sign", "product")
PROJECTIONS = ("linear", "l2")
STRATEGIES = ("betr", "pplcorr", "metarater", "rds", "random", "blend")


def _run_cols(verb: str) -> list:
    return [
        col("run_id", StringType(), False, f"run that {verb} the row"),
        col("computed_at", TimestampType(), False, "when that run started (UTC)"),
        col("table_versions", StringType(), False, 'JSON {"table": version} of every table the run read'),
    ]


def _domain_correlations_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    return [
        e.ExpectCompoundColumnsToBeUnique(column_list=["domain", "estimator", "projection"]),
        e.ExpectColumnValuesToBeInSet(column="estimator", value_set=list(ESTIMATORS)),
        e.ExpectColumnValuesToBeInSet(column="projection", value_set=list(PROJECTIONS)),
        e.ExpectColumnValuesToBeBetween(column="weight", min_value=0.0, max_value=1.0 + 1e-9),
        e.ExpectColumnValuesToBeBetween(column="tau", min_value=0.0, strict_min=True),
        e.ExpectColumnValuesToBeBetween(column="n_docs", min_value=1),
        e.ExpectColumnValuesToBeBetween(column="rank", min_value=1),
    ]


DOMAIN_CORRELATIONS = TableSpec(
    name="gold.domain_correlations",
    schema=StructType(
        [
            col("domain", StringType(), False, "registered domain"),
            col("estimator", StringType(), False, "one of " + ", ".join(ESTIMATORS)),
            col("projection", StringType(), False, "linear or l2"),
            col("benchmark_group", StringType(), False, "benchmarks whose mean error is y, ';'-separated"),
            col("estimate", DoubleType(), False, "high: lower bpb goes with lower benchmark error"),
            col("rank", IntegerType(), False, "1 = highest estimate among the domains (ties by domain)"),
            col("tau", DoubleType(), False, "projection bound: domain token share / keep_ratio"),
            col("weight", DoubleType(), False, "projected sampling weight (Σ over domains = 1)"),
            col("chosen", BooleanType(), False, "this estimator and projection are the profile's choice"),
            col("n_models", IntegerType(), False, "models N with bpb on the domain and a benchmark score"),
            col("n_docs", LongType(), False, "sampled documents of the domain scored by every model"),
            col("domain_tokens", LongType(), False, "the domain's tokens in silver.documents (n_tokens_est)"),
            col("token_share", DoubleType(), False, "domain_tokens / all tokens of silver.documents"),
            *_run_cols("computed"),
        ]
    ),
    description="perplexity correlations: per-domain estimates and projected weights",
    suite=_domain_correlations_suite,
)


def _rater_weights_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    return [
        e.ExpectCompoundColumnsToBeUnique(column_list=["weights_id", "signal"]),
        e.ExpectColumnValuesToBeBetween(column="weight", min_value=0.0, max_value=1.0 + 1e-9),
    ]


RATER_WEIGHTS = TableSpec(
    name="gold.rater_weights",
    schema=StructType(
        [
            col("weights_id", StringType(), False, "weight vector id (proposal id, or 'final' for w*)"),
            col("signal", StringType(), False, "signal name (a PRRC dimension or a scores.quality column)"),
            col("weight", DoubleType(), False, "w_j ≥ 0, Σ_j w_j = 1 per weights_id"),
            col("method", StringType(), False, "proposal (a Dirichlet(1) draw) or fit (w*)"),
            col("heldout_spearman", DoubleType(), True, "fit: Spearman of predicted vs held-out proxy loss"),
            col("n_proposals", IntegerType(), True, "fit: proxy results it was trained on"),
            col("n_candidates", IntegerType(), True, "fit: Dirichlet candidates scored"),
            col("n_best", IntegerType(), True, "fit: best candidates averaged into w*"),
            col("predicted_loss", DoubleType(), True, "fit: regressor's prediction at w*"),
            *_run_cols("wrote"),
        ]
    ),
    description="Meta-rater weight vectors: proposals and the fitted w*",
    suite=_rater_weights_suite,
)


def _doc_scores_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    return [
        e.ExpectCompoundColumnsToBeUnique(column_list=["doc_id", "strategy"]),
        e.ExpectColumnValuesToBeInSet(column="strategy", value_set=list(STRATEGIES)),
        e.ExpectColumnValuesToBeBetween(column="n_tokens", min_value=0),
    ]


DOC_SCORES = TableSpec(
    name="gold.doc_scores",
    schema=StructType(
        [
            col("doc_id", StringType(), False, "document id"),
            col("strategy", StringType(), False, "one of " + ", ".join(STRATEGIES)),
            col("score", DoubleType(), False, "composite score; higher is selected first"),
            col("domain", StringType(), True, "registered domain (for per-domain caps)"),
            col("n_tokens", LongType(), False, "tokens counted against the budget (silver n_tokens_est)"),
            col("detail", StringType(), True, "what the score is made of (e.g. RDS+ task and round)"),
            *_run_cols("computed"),
        ]
    ),
    description="each document's composite score per selection strategy",
    partition_by=("strategy",),
    suite=_doc_scores_suite,
)


def _selection_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    exps = [
        e.ExpectCompoundColumnsToBeUnique(column_list=["run_id", "strategy", "doc_id"]),
        e.ExpectColumnValuesToBeBetween(column="rank", min_value=1),
        e.ExpectColumnValuesToBeBetween(column="tokens", min_value=0),
    ]
    if params.get("token_budget") is not None:
        exps.append(
            e.ExpectColumnValuesToBeBetween(
                column="cum_tokens", min_value=0, max_value=params["token_budget"]
            )
        )
    return exps


SELECTION = TableSpec(
    name="gold.selection",
    schema=StructType(
        [
            col("run_id", StringType(), False, "select run"),
            col("strategy", StringType(), False, "strategy the documents were picked by"),
            col("doc_id", StringType(), False, "document id"),
            col("rank", IntegerType(), False, "pick order, 1 first (score desc, doc_id asc)"),
            col("score", DoubleType(), False, "the strategy's score"),
            col("domain", StringType(), True, "registered domain"),
            col("tokens", LongType(), False, "the document's tokens"),
            col("cum_tokens", LongType(), False, "tokens of ranks 1..rank"),
            col("selected_at", TimestampType(), False, "when the select run started (UTC)"),
            col("table_versions", StringType(), False, 'JSON {"table": version} of every table the run read'),
        ]
    ),
    description="documents picked per strategy under a token budget, one row per (run, strategy, doc)",
    partition_by=("strategy",),
    suite=_selection_suite,
)

TABLES = (DOMAIN_CORRELATIONS, RATER_WEIGHTS, DOC_SCORES, SELECTION)
