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


# Estimators bounded to [-1, 1] (rank and sign statistics). product = mean(error · bpb) lies in
# [0, max bpb] since bpb >= 0 and error is in [0, 1]; sign is a mean of bpb differences, unbounded.
BOUNDED_ESTIMATORS = ("spearmanr", "sign_cdf", "sign_sign")

# Column ``aggregate_domains`` adds to the staged rows before validating (``weight_sums``): Σ weight over
# the row's (estimator, projection), which the suite expects to be 1.
WEIGHT_SUM = "_weight_sum"


def _domain_correlations_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    bounded = ", ".join(f"'{x}'" for x in BOUNDED_ESTIMATORS)
    exps = [
        e.ExpectCompoundColumnsToBeUnique(column_list=["domain", "estimator", "projection"]),
        e.ExpectColumnValuesToBeInSet(column="estimator", value_set=list(ESTIMATORS)),
        e.ExpectColumnValuesToBeInSet(column="projection", value_set=list(PROJECTIONS)),
        e.ExpectColumnValuesToBeBetween(column="weight", min_value=0.0, max_value=1.0 + 1e-9),
        e.ExpectColumnValuesToBeBetween(column="tau", min_value=0.0, strict_min=True),
        e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="tau", column_B="weight", or_equal=True),
        e.ExpectColumnValuesToBeBetween(column="n_docs", min_value=1),
        e.ExpectColumnValuesToBeBetween(column="n_models", min_value=2),
        e.ExpectColumnValuesToBeBetween(column="rank", min_value=1),
        e.ExpectColumnValuesToBeBetween(
            column="estimate",
            min_value=-1.0,
            max_value=1.0,
            row_condition=f"estimator IN ({bounded})",
            condition_parser="spark",
        ),
        e.ExpectColumnValuesToBeBetween(
            column="estimate", min_value=0.0, row_condition="estimator = 'product'", condition_parser="spark"
        ),
    ]
    if params.get("checked"):
        exps.append(
            e.ExpectColumnValuesToBeBetween(column=WEIGHT_SUM, min_value=1.0 - 1e-9, max_value=1.0 + 1e-9)
        )
    return exps


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


# Columns the aggregate_weights gate adds to the staged rows (``jobs.aggregate_weights.weights_check``):
# Σ weight per weights_id, signals per weights_id, and distinct proposal ids in the whole batch.
WEIGHT_SUM, GROUP_SIGNALS, N_PROPOSALS = "_weight_sum", "_group_signals", "_n_proposals"
RATER_METHODS = ("proposal", "fit")


def _rater_weights_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    exps = [
        e.ExpectCompoundColumnsToBeUnique(column_list=["weights_id", "signal"]),
        e.ExpectColumnValuesToBeBetween(column="weight", min_value=0.0, max_value=1.0 + 1e-9),
        e.ExpectColumnValuesToBeInSet(column="method", value_set=list(RATER_METHODS)),
        e.ExpectColumnValuesToBeBetween(column="heldout_spearman", min_value=-1.0, max_value=1.0),
    ]
    if params.get("checked"):
        exps.append(
            e.ExpectColumnValuesToBeBetween(column=WEIGHT_SUM, min_value=1.0 - 1e-9, max_value=1.0 + 1e-9)
        )
        if "signals" in params:
            exps.append(e.ExpectColumnValuesToBeInSet(column=GROUP_SIGNALS, value_set=[params["signals"]]))
        if "proposals" in params:
            exps.append(e.ExpectColumnValuesToBeInSet(column=N_PROPOSALS, value_set=[params["proposals"]]))
    return exps


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


# Columns the aggregate_docs gate adds to the staged rows (``jobs.aggregate_docs.doc_scores_check``); each
# holds the offending doc_id (or null): ``_missing_doc`` not in silver.documents at the version read,
# ``_bad_score`` a NaN or infinite score.
DOC_SCORES_CHECKS = ("_missing_doc", "_bad_score")


def _doc_scores_suite(params: Mapping[str, Any]) -> list:
    """Unique (doc_id, strategy), known strategies, tokens ≥ 0; with ``checked``: every doc in
    silver.documents and every score finite."""
    import great_expectations as gx

    e = gx.expectations
    exps = [
        e.ExpectCompoundColumnsToBeUnique(column_list=["doc_id", "strategy"]),
        e.ExpectColumnValuesToBeInSet(column="strategy", value_set=list(STRATEGIES)),
        e.ExpectColumnValuesToBeBetween(column="n_tokens", min_value=0),
    ]
    if params.get("checked"):
        exps += [e.ExpectColumnValuesToBeNull(column=c) for c in DOC_SCORES_CHECKS]
    return exps


DOC_SCORES = TableSpec(
    name="gold.doc_scores",
    schema=StructType(
        [
            col("doc_id", StringType(), False, "document id"),
            col("strategy", StringType(), False, "one of " + ", ".join(STRATEGIES)),
            col(
                "score",
                DoubleType(),
                False,
                "higher is selected first: betr/pplcorr P(include) of the page classifier, metarater Q "
                "under w*, rds −(round-robin pick position), random a seeded hash in [0, 1)",
            ),
            col("domain", StringType(), True, "registered domain (for per-domain caps)"),
            col("n_tokens", LongType(), False, "tokens counted against the budget (silver n_tokens_est)"),
            col(
                "detail",
                StringType(),
                True,
                "what the score is made of: betr 'threshold=<t> kept=<bool>' (p_include ≥ t keeps select's "
                "token budget's share of the pool's tokens), rds 'task=<benchmark> round=<r>'",
            ),
            *_run_cols("computed"),
        ]
    ),
    description="each document's composite score per selection strategy",
    partition_by=("strategy",),
    suite=_doc_scores_suite,
)


# Columns the select gate adds to the staged rows (see ``jobs.selection.selection_check``); each holds the
# offending doc_id (or null), so a failure prints which documents broke the rule.
SELECTION_CHECKS = ("_missing_doc", "_rank_gap", "_cum_mismatch", "_over_domain_cap")


def _selection_suite(params: Mapping[str, Any]) -> list:
    """Unique documents and ranks per strategy, cumulative tokens within the budget; with ``checked``:
    every doc in silver.documents at the read version, ranks 1..n, cum_tokens the running sum, domain caps."""
    import great_expectations as gx

    e = gx.expectations
    exps = [
        e.ExpectCompoundColumnsToBeUnique(column_list=["run_id", "strategy", "doc_id"]),
        e.ExpectCompoundColumnsToBeUnique(column_list=["run_id", "strategy", "rank"]),
        e.ExpectColumnValuesToBeBetween(column="rank", min_value=1),
        e.ExpectColumnValuesToBeBetween(column="tokens", min_value=0),
    ]
    if params.get("token_budget") is not None:
        exps.append(
            e.ExpectColumnValuesToBeBetween(
                column="cum_tokens", min_value=0, max_value=params["token_budget"]
            )
        )
    if params.get("checked"):
        exps += [e.ExpectColumnValuesToBeNull(column=c) for c in SELECTION_CHECKS]
    return exps


SELECTION = TableSpec(
    name="gold.selection",
    schema=StructType(
        [
            col("run_id", StringType(), False, "select run"),
            col("strategy", StringType(), False, "strategy the documents were picked by"),
            col("doc_id", StringType(), False, "document id"),
            col("rank", IntegerType(), False, "pick order, 1 first (score desc, doc_id asc)"),
            col("score", DoubleType(), False, "the strategy's score (blend: weighted percentile rank)"),
            col("domain", StringType(), True, "registered domain (null domains share one cap)"),
            col("tokens", LongType(), False, "the document's tokens (gold.doc_scores n_tokens)"),
            col("cum_tokens", LongType(), False, "tokens of ranks 1..rank (≤ the run's token budget)"),
            col("selected_at", TimestampType(), False, "when the select run started (UTC)"),
            col(
                "table_versions",
                StringType(),
                False,
                'JSON {"table": version}: silver.documents and gold.doc_scores as read, plus the tables '
                "the strategy's doc_scores rows record",
            ),
        ]
    ),
    description="documents picked per strategy under a token budget, one row per (run, strategy, doc)",
    partition_by=("strategy",),
    suite=_selection_suite,
)


# -- Meta-rater auxiliary tables (aggregate_weights) ---------------------------------------------------
# Columns the aggregate_weights gate adds to staged gold.rater_proposals rows.
SELECTED_PER_PROPOSAL, MISSING_DOC = "_selected", "_missing_doc"
PROXY_SOURCES = ("ngram", "train", "table")


def _rater_proposals_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    exps = [
        e.ExpectCompoundColumnsToBeUnique(column_list=["weights_id", "doc_id"]),
        e.ExpectCompoundColumnsToBeUnique(column_list=["weights_id", "rank"]),
        e.ExpectColumnValuesToBeBetween(column="rank", min_value=1),
        e.ExpectColumnValuesToBeBetween(column="q", min_value=-1e-9, max_value=5.0 + 1e-9),
        e.ExpectColumnValuesToBeBetween(column="n_tokens", min_value=0),
    ]
    if params.get("checked"):
        exps.append(e.ExpectColumnValuesToBeNull(column=MISSING_DOC))
        if "selected" in params:
            exps.append(
                e.ExpectColumnValuesToBeInSet(column=SELECTED_PER_PROPOSAL, value_set=[params["selected"]])
            )
    return exps


RATER_PROPOSALS = TableSpec(
    name="gold.rater_proposals",
    schema=StructType(
        [
            col("weights_id", StringType(), False, "proposal id (gold.rater_weights method 'proposal')"),
            col("doc_id", StringType(), False, "a document the proposal selects (top top_share by Q)"),
            col("rank", IntegerType(), False, "1 = highest Q under the proposal (ties by doc_id)"),
            col("q", DoubleType(), False, "Q = Σ_j w_j norm_j, 0-5"),
            col("n_tokens", LongType(), False, "the document's tokens (silver n_tokens_est)"),
            *_run_cols("proposed"),
        ]
    ),
    description="Meta-rater proxy manifest: each proposal's selected documents, to train a proxy model on",
    suite=_rater_proposals_suite,
)


def _proxy_results_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    return [
        e.ExpectColumnValuesToBeUnique(column="weights_id"),
        e.ExpectColumnValuesToBeInSet(column="source", value_set=list(PROXY_SOURCES)),
        # Finite: NaN sorts above every double in Spark, so the upper bound catches it too.
        e.ExpectColumnValuesToBeBetween(column="val_loss", min_value=-1e15, max_value=1e15),
        e.ExpectColumnValuesToBeBetween(column="train_tokens", min_value=0),
        e.ExpectColumnValuesToBeBetween(column="val_tokens", min_value=1),
    ]


PROXY_RESULTS = TableSpec(
    name="gold.proxy_results",
    schema=StructType(
        [
            col("weights_id", StringType(), False, "proposal id"),
            col("val_loss", DoubleType(), False, "validation loss of a proxy model trained on the selection"),
            col(
                "source",
                StringType(),
                False,
                "ngram (the local bigram LM stand-in), train (a small causal LM trained here) or table "
                "(runs elsewhere)",
            ),
            col("train_docs", LongType(), True, "ngram/train: documents the proxy LM was trained on"),
            col("train_tokens", LongType(), True, "ngram/train: tokens the proxy LM was trained on"),
            col("val_tokens", LongType(), True, "ngram/train: validation tokens the loss averages over"),
            col(
                "detail",
                StringType(),
                True,
                "ngram/train: the model and validation set (train: ends with 'key <hex>', the proposal's "
                "selection, model and dev set: a rerun reuses rows with the same key); table: the file read",
            ),
            *_run_cols("recorded"),
        ]
    ),
    description="Meta-rater proxy results: validation loss per proposed weight vector",
    suite=_proxy_results_suite,
)

# -- The selection-effect experiment (evaluate) ----------------------------------------------------------
EVAL_METRICS = ("answer_bpb", "mc_accuracy", "bpb")
HELDOUT_WEB = "web_heldout"  # the benchmark name of the held-out general web text


def _evaluation_suite(params: Mapping[str, Any]) -> list:
    """Unique (strategy, seed, benchmark, metric), known metrics, bpb > 0 and accuracy in [0, 1]; every
    model trained on the same tokens (``train_tokens``) and every arm on the same seeds (``seeds``)."""
    import great_expectations as gx

    e = gx.expectations
    exps = [
        e.ExpectCompoundColumnsToBeUnique(column_list=["strategy", "seed", "benchmark", "metric"]),
        e.ExpectColumnValuesToBeInSet(column="metric", value_set=list(EVAL_METRICS)),
        e.ExpectColumnValuesToBeBetween(
            column="value",
            min_value=0.0,
            strict_min=True,
            row_condition="metric <> 'mc_accuracy'",
            condition_parser="spark",
        ),
        e.ExpectColumnValuesToBeBetween(
            column="value",
            min_value=0.0,
            max_value=1.0,
            row_condition="metric = 'mc_accuracy'",
            condition_parser="spark",
        ),
        # Finite: NaN sorts above every double in Spark, so an upper bound catches it.
        e.ExpectColumnValuesToBeBetween(column="value", max_value=1e15),
        e.ExpectColumnValuesToBeBetween(column="n", min_value=1),
    ]
    if "train_tokens" in params:
        exps.append(e.ExpectColumnValuesToBeInSet(column="train_tokens", value_set=[params["train_tokens"]]))
    if "seeds" in params:
        exps.append(e.ExpectColumnDistinctValuesToEqualSet(column="seed", value_set=list(params["seeds"])))
        exps.append(e.ExpectColumnValuesToBeInSet(column="n_seeds", value_set=[len(params["seeds"])]))
    return exps


EVALUATION = TableSpec(
    name="gold.evaluation",
    schema=StructType(
        [
            col("strategy", StringType(), False, "the selection trained on (random: re-drawn per seed)"),
            col("seed", IntegerType(), False, "model init, data order and the random arm's draw"),
            col("benchmark", StringType(), False, f"a benchmark's evaluation split, or {HELDOUT_WEB}"),
            col(
                "metric",
                StringType(),
                False,
                "answer_bpb: bits per byte of the gold answer given the prompt; mc_accuracy: the gold "
                f"choice has the lowest NLL per byte; bpb: bits per byte of the {HELDOUT_WEB} documents",
            ),
            col("value", DoubleType(), False, "the metric of this strategy's model at this seed"),
            col("n", LongType(), False, "examples (held-out documents for bpb) the value is over"),
            col("diff_to_random", DoubleType(), True, "value − random's value at the same seed (paired)"),
            col("mean", DoubleType(), False, "mean of value over the seeds"),
            col("std", DoubleType(), False, "sample standard deviation of value over the seeds"),
            col("diff_mean", DoubleType(), True, "mean paired difference to random over the seeds"),
            col("diff_std", DoubleType(), True, "sample standard deviation of the paired differences"),
            col("diff_ci_low", DoubleType(), True, "t confidence interval of diff_mean, lower end"),
            col("diff_ci_high", DoubleType(), True, "t confidence interval of diff_mean, upper end"),
            col("n_seeds", IntegerType(), False, "seeds the summary columns are over"),
            col("train_tokens", LongType(), False, "tokens the model trained on (equal for every row)"),
            col("train_docs", LongType(), False, "documents those tokens came from"),
            col("final_train_loss", DoubleType(), False, "mean training loss over the last tenth of steps"),
            col("model", StringType(), False, "the model trained: architecture, size, context, schedule"),
            *_run_cols("trained"),
        ]
    ),
    description="small LMs trained on each strategy's selection at equal tokens, measured on held-out data",
    suite=_evaluation_suite,
)

TABLES = (
    DOMAIN_CORRELATIONS,
    RATER_WEIGHTS,
    DOC_SCORES,
    SELECTION,
    RATER_PROPOSALS,
    PROXY_RESULTS,
    EVALUATION,
)
