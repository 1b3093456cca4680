"""Perplexity correlations (Thrush et al. 2024): domain weights from how bpb tracks benchmark error.

Per domain, five estimates of how strongly lower bits-per-byte goes with lower benchmark error across a pool
of LMs, each projected to sampling weights two ways (linear, l2) under tau = token share / keep_ratio
(keep_ratio: the share of the pool's tokens the corpus keeps, select's budget; aggregate_domains derives it);
then the page step: a classifier of include-domain pages vs the rest scores every document. The numbers follow
the reference package (TristanThrush/perplexity-correlations) and DESIGN.md; the SQL users may read is in
``jobs/sql/``:

  domain_bpb.sql        X[k, j]: token-weighted bpb per model and domain, documents scored by every model
  model_errors.sql      y[k]: mean (1 − accuracy) over the benchmark group
  domain_estimates.sql  spearmanr, sign_cdf, sign_sign, sign, product per domain (window functions)
  domain_tokens.sql     each domain's share of all tokens (the projection bound)
  domain_linear.sql     ranks and the linear projection
The l2 projection (a bisection on an offset) runs per estimator in a pandas UDF.

Orientation: X (bpb) and y (error) enter the estimators as the reference package takes them, unflipped;
both fall as models get better, so a positive estimate (high rank, high weight) means lower bpb on the
domain goes with lower error, as DESIGN.md states. Ties among models go by model_id (``estimates``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType

from jobs.methods import pageclf
from jobs.methods.sampling import Unscorable, class_sample
from jobs.queries import run_sql
from schemas import gold


def domain_bpb(perplexity: DataFrame, documents: DataFrame, pool: DataFrame, min_docs: int) -> DataFrame:
    """The bits-per-byte matrix X in long form (``jobs/sql/domain_bpb.sql``).

    Args:
        perplexity: scores.perplexity rows (doc_id, model_id, revision, nll_sum, n_bytes, scored_at).
        documents: silver.documents (doc_id, domain).
        pool: ``[model_id]``, the models to use; documents count only if every one of them that has
            perplexity rows scored them (score_perplexity already sampled at most
            ``score.perplexity.sample.per_domain`` documents per domain).
        min_docs: domains with fewer such documents are left out.

    Returns:
        ``[model_id, domain, bpb, n_docs, nll_sum, n_bytes]``, bpb = Σ nll_sum / (ln 2 · Σ n_bytes).
    """
    return run_sql(
        perplexity.sparkSession,
        "domain_bpb",
        {"perplexity": perplexity, "documents": documents, "pool": pool},
        min_docs=int(min_docs),
    )


def model_errors(model_scores: DataFrame, benchmarks: list[str]) -> DataFrame:
    """y[k] = mean over ``benchmarks`` of (1 − accuracy), for models scored on all of them
    (``jobs/sql/model_errors.sql``): ``[model_id, error, n_benchmarks]``."""
    spark = model_scores.sparkSession
    group = spark.createDataFrame([(b,) for b in benchmarks], "benchmark string")
    return run_sql(spark, "model_errors", {"model_scores": model_scores, "benchmark_group": group})


def domain_tokens(documents: DataFrame) -> DataFrame:
    """Each domain's tokens and share of all of silver.documents' tokens (``jobs/sql/domain_tokens.sql``):
    ``[domain, domain_tokens, token_share]``."""
    return run_sql(documents.sparkSession, "domain_tokens", {"documents": documents})


def estimates(bpb: DataFrame, errors: DataFrame) -> DataFrame:
    """The five estimators per domain (``jobs/sql/domain_estimates.sql``).

    Args:
        bpb: ``[model_id, domain, bpb]``, complete: a row for every (model of ``errors``, domain).
        errors: ``[model_id, error]``; models without bpb rows are ignored. At least two models.

    Returns:
        ``[domain, n_models, estimator, estimate]``, one row per domain and estimator.

    Ties: models with equal bpb on a domain, or equal error, take consecutive ranks in model_id order
    (spearmanr, sign_cdf). The reference ranks with ``np.argsort(np.argsort(x))``, whose default quicksort
    is not stable, so its order among ties is unspecified (numpy version, CPU, the order models are
    listed). A fixed order makes the estimates reproducible on every run, engine and partitioning, and
    equals the reference with a stable sort over models listed by model_id; it keeps the ranks a
    permutation of 1..N, as the closed forms 1 − 6 Σ d² / (N(N² − 1)) and rank / N assume (averaged ranks,
    as in scipy, would need another formula). Swapping two adjacent ranks moves spearmanr by at most
    12 / (N(N + 1)).
    """
    return run_sql(
        bpb.sparkSession,
        "domain_estimates",
        {"bpb": bpb.select("model_id", "domain", "bpb"), "errors": errors.select("model_id", "error")},
    )


def l2_weights(estimate: np.ndarray, tau: np.ndarray, atol: float = 1e-12, max_iter: int = 200) -> np.ndarray:
    """The l2 projection: clip(estimate + c, 0, tau) with the offset c where the weights sum to 1.

    c is found by the reference's bisection (bracket [−max estimate, max(tau − estimate)], stop at width
    ``atol``; ``max_iter`` ends it where the bracket's ends are a float spacing apart, which large ``sign``
    or ``product`` estimates reach before 1e-12). One exact step then solves Σ = 1 on the bisection's active
    set (domains strictly between 0 and tau, where the sum is linear in c): the bisection alone leaves
    Σ w off by up to (active domains) · atol, more than the gate's 1e-9 with tens of thousands of domains.
    The step moves c by no more than the bracket's width, so each weight stays within it of the bisection's.

    Args:
        estimate: D estimates.
        tau: D bounds, positive, Σ ≥ 1.
    """
    estimate = np.asarray(estimate, dtype=np.float64)
    tau = np.asarray(tau, dtype=np.float64)
    lo, hi = -np.max(estimate), np.max(tau - estimate)
    c = hi
    for _ in range(max_iter):
        if hi - lo <= atol:
            break
        c = (lo + hi) / 2
        if np.sum(np.clip(estimate + c, 0, tau)) > 1:
            hi = c
        else:
            lo = c
    v = estimate + c
    upper = v >= tau
    active = (v > 0) & ~upper
    if active.any():
        exact = (1 - np.sum(tau[upper]) - np.sum(estimate[active])) / np.count_nonzero(active)
        if lo - atol <= exact <= hi + atol:
            c = exact
    return np.clip(estimate + c, 0, tau)


_PROJECTED = StructType(
    [
        StructField("domain", StringType(), False),
        StructField("estimator", StringType(), False),
        StructField("projection", StringType(), False),
        StructField("estimate", DoubleType(), False),
        StructField("tau", DoubleType(), False),
        StructField("rank", IntegerType(), False),
        StructField("weight", DoubleType(), False),
    ]
)


def _with_l2(pdf: pd.DataFrame) -> pd.DataFrame:
    """One estimator's linear rows → its linear and l2 rows."""
    estimate, tau = pdf["estimate"].to_numpy(np.float64), pdf["tau"].to_numpy(np.float64)
    l2 = l2_weights(estimate, tau)
    n = len(pdf)

    def twice(col: str) -> np.ndarray:
        return np.tile(pdf[col].to_numpy(), 2)

    # Built from arrays (not pd.concat): Arrow then gets one chunk per column.
    return pd.DataFrame(
        {
            "domain": twice("domain"),
            "estimator": twice("estimator"),
            "projection": np.repeat(np.array(["linear", "l2"], dtype=object), n),
            "estimate": np.tile(estimate, 2),
            "tau": np.tile(tau, 2),
            "rank": twice("rank"),
            "weight": np.concatenate([pdf["weight"].to_numpy(np.float64), l2]),
        }
    )


def project(estimated: DataFrame) -> DataFrame:
    """Both projections of every estimator's estimates to domain weights.

    Args:
        estimated: ``[domain, estimator, estimate, tau]``; per estimator tau > 0 and Σ tau ≥ 1.

    Returns:
        ``[domain, estimator, projection, estimate, tau, rank, weight]``: rank 1 = highest estimate (ties by
        domain); linear weights from ``jobs/sql/domain_linear.sql``, l2 from ``l2_weights`` (a pandas UDF
        per estimator, which passes the linear rows through so the SQL runs once).
    """
    linear = run_sql(
        estimated.sparkSession,
        "domain_linear",
        {"estimates": estimated.select("domain", "estimator", "estimate", "tau")},
    )
    return linear.groupBy("estimator").applyInPandas(_with_l2, _PROJECTED)


def weight_sums(staged: DataFrame) -> DataFrame:
    """The gate's view of staged correlations: ``WEIGHT_SUM``, Σ weight over the row's estimator and
    projection."""
    w = Window.partitionBy("estimator", "projection")
    return staged.withColumn(gold.WEIGHT_SUM, F.sum("weight").over(w))


def page_scores(
    docs: DataFrame, include: DataFrame, clf: pageclf.Classifier, hold: list | None = None
) -> DataFrame:
    """The perplexity-correlation page step: pages of include-domains vs the rest, scored on the pool.

    Args:
        docs: the pool, ``[doc_id, domain, text]``.
        include: ``[domain]``, the domains with weight > 0 under the chosen estimator and projection.
        clf: the classifier (``max_docs_per_class`` pages per label, sampled by ``seed``; the fastText
            backend with the paper's wordNgrams 2).
        hold: collects ``jobs.ordered``'s persisted intermediates and the fitted model (unpersist them when
            done with the result).

    Returns:
        ``[doc_id, p_include, label]`` for every pool document (label 1: its domain is included).

    Raises:
        Unscorable: the training sample lacks one of the labels (every domain included, or none).
    """
    flagged = include.select("domain", F.lit(1).alias("label")).distinct()
    labeled = docs.join(F.broadcast(flagged), "domain", "left").withColumn(
        "label", F.coalesce(F.col("label"), F.lit(0))
    )
    train = class_sample(
        labeled.select("doc_id", "text", "label"), clf.max_docs_per_class, clf.seed, hold=hold
    )
    try:
        model = pageclf.fit(train, clf)
    except ValueError as exc:
        raise Unscorable(f"pages of included vs other domains: {exc}") from None
    if hold is not None:
        hold.append(model)  # a fastText model's file stays until the stage is done with the scores
    return model.score(labeled.select("doc_id", "text", "label")).select("doc_id", "p_include", "label")
