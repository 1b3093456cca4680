"""aggregate_domains: perplexity correlations (Thrush et al. 2024) → gold.domain_correlations.

scores.perplexity + silver.documents + ref.model_scores → per domain, five estimates of how strongly
lower bits-per-byte goes with lower benchmark error across the perplexity pool, each projected to
sampling weights two ways (linear, l2) under tau = token share / keep_ratio. The numbers follow the
reference package (TristanThrush/perplexity-correlations) and DESIGN.md; the SQL that users may read is in
``jobs/sql/``:

  domain_bpb.sql        X[k, j]: token-weighted bpb per model and domain, documents scored by every model
  model_errors.sql      y[k]: mean (1 − accuracy) over the benchmark group
  domain_estimates.sql  spearmanr, sign_cdf, sign_sign, sign, product per domain (window functions)
  domain_tokens.sql     each domain's share of all tokens (the projection bound)
  domain_linear.sql     ranks and the linear projection
The l2 projection (a bisection on an offset) runs per estimator in a pandas UDF. Every estimator and
projection is written; ``chosen`` marks the profile's (``aggregate.domains.estimator``/``projection``).

Orientation: X (bpb) and y (error) enter the estimators as the reference package takes them, unflipped;
both fall as models get better, so a positive estimate (high rank, high weight) means lower bpb on the
domain goes with lower error, as DESIGN.md states. Ties among models go by model_id (see the SQL).

Run it:  corpuslake stage aggregate_domains --conf conf/local.yaml
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType

from jobs import freshness
from jobs.config import Conf
from jobs.gates import Output, publish
from jobs.queries import run_sql, table_versions
from jobs.runtime import JobContext, UsageError, job_parser, run_job
from schemas import gold, ref, scores, silver

STAGE = "aggregate_domains"
READS = (silver.DOCUMENTS, scores.PERPLEXITY, ref.MODEL_SCORES)
WATCH = freshness.Watch(READS, ("aggregate.domains", "score.perplexity.pool"))


# ------------------------------------------------------------------------------------------ transforms


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


# ------------------------------------------------------------------------------------------------ stage


def preflight(conf: Conf) -> None:
    """A pool of one model cannot correlate anything."""
    pool = conf.score.perplexity.pool
    if len(pool) == 1:
        raise UsageError(
            f"{conf.source_file}: score.perplexity.pool has one model ({pool[0].model_id}); perplexity "
            "correlations compare models: configure at least 2"
        )


def _models(ctx: JobContext, ppl: DataFrame, errors: dict[str, float], group: list[str]) -> list[str]:
    """The pool's models with both perplexities and benchmark scores (at least 2), model_id ascending."""
    scored = {r["model_id"] for r in ppl.select("model_id").distinct().collect()}
    pool = [m.model_id for m in ctx.conf.score.perplexity.pool] or sorted(scored)
    models = sorted(m for m in pool if m in scored and m in errors)
    if len(models) < 2:
        gaps = [
            f"{m}: {'no rows in scores.perplexity' if m not in scored else 'not scored on every benchmark'}"
            for m in pool
            if m not in models
        ]
        raise UsageError(
            f"perplexity correlations need at least 2 models with both perplexities (scores.perplexity) "
            f"and scores on every benchmark of {group} (ref.model_scores); found {len(models)}"
            + (f" ({', '.join(models)})" if models else "")
            + (f"; left out: {'; '.join(gaps)}" if gaps else "")
            + ". Run score_perplexity and load_refs (refs.model_scores) first."
        )
    return models


def aggregate_domains(ctx: JobContext) -> str:
    """The stage body: bpb matrix and errors → estimates → projections → gate → replace the gold table."""
    spark, lh, run, dc = ctx.spark, ctx.lakehouse, ctx.run, ctx.conf.aggregate.domains
    versions = table_versions(lh, READS)
    # Read at the versions recorded in the gold rows, so the rows say exactly what they came from.
    at = json.loads(versions)
    ppl, docs, ms = (lh.read(s, at[s.name]) for s in (scores.PERPLEXITY, silver.DOCUMENTS, ref.MODEL_SCORES))

    present = sorted(r["benchmark"] for r in ms.select("benchmark").distinct().collect())
    if not present:
        raise UsageError(
            "ref.model_scores is empty: list the accuracy files under refs.model_scores and run load_refs"
        )
    group = sorted(dc.benchmarks) if dc.benchmarks else present
    unknown = [b for b in group if b not in present]
    if unknown:
        raise UsageError(
            f"aggregate.domains.benchmarks: {unknown} not in ref.model_scores (it has {present})"
        )
    errors = {r["model_id"]: r["error"] for r in model_errors(ms, group).collect()}
    models = _models(ctx, ppl, errors, group)
    others = [m.model_id for m in ctx.conf.score.perplexity.pool if m.model_id not in models]
    chosen = (F.col("estimator") == dc.estimator) & (F.col("projection") == dc.projection)

    pool = spark.createDataFrame([(m,) for m in models], "model_id string")
    y = spark.createDataFrame([(m, float(errors[m])) for m in models], "model_id string, error double")
    bpb = domain_bpb(ppl, docs, pool, dc.min_docs).persist()
    per_domain = bpb.groupBy("domain").agg(F.max("n_docs").alias("n_docs"))
    meta = per_domain.join(domain_tokens(docs), "domain").persist()
    cached = [bpb, meta]
    try:
        stats = meta.agg(F.count("*").alias("d"), F.sum("token_share").alias("share")).first()
        n_domains, share = stats["d"], stats["share"] or 0.0
        if n_domains == 0:
            best = domain_bpb(ppl, docs, pool, 1).agg(F.max("n_docs")).first()[0] or 0
            raise UsageError(
                f"no domain has {dc.min_docs} documents scored by all {len(models)} models "
                f"(aggregate.domains.min_docs); the best domain has {best}. Lower min_docs or score more "
                "documents per domain (score.perplexity.sample.per_domain)."
            )
        if share / dc.keep_ratio < 1:
            raise UsageError(
                f"the {n_domains} correlated domains hold {share:.2%} of silver.documents' tokens, so with "
                f"aggregate.domains.keep_ratio {dc.keep_ratio} their bounds tau = share / keep_ratio sum to "
                f"{share / dc.keep_ratio:.3f} < 1 and no weights within them sum to 1: set keep_ratio to at "
                f"most {math.floor(share * 1e4) / 1e4:.4f}, or lower min_docs to correlate more domains"
            )
        # Persisted: the projections and the gold rows both read it, and it is small (5 rows per domain).
        estimated = (
            estimates(bpb, y)
            .join(meta, "domain")
            .withColumn("tau", F.col("token_share") / F.lit(dc.keep_ratio))
            .persist()
        )
        cached.append(estimated)
        out = (
            project(estimated)
            .join(estimated.drop("estimate", "tau"), ["domain", "estimator"])
            .select(
                "domain",
                "estimator",
                "projection",
                F.lit(";".join(group)).alias("benchmark_group"),
                "estimate",
                F.col("rank").cast("int").alias("rank"),
                "tau",
                "weight",
                chosen.alias("chosen"),
                F.col("n_models").cast("int").alias("n_models"),
                F.col("n_docs").cast("long").alias("n_docs"),
                F.col("domain_tokens").cast("long").alias("domain_tokens"),
                "token_share",
                F.lit(run.run_id).alias("run_id"),
                F.lit(run.started_at).alias("computed_at"),
                F.lit(versions).alias("table_versions"),
            )
        )
        n_rows = n_domains * len(gold.ESTIMATORS) * len(gold.PROJECTIONS)
        commits = publish(
            lh,
            run,
            [
                Output(
                    gold.DOMAIN_CORRELATIONS,
                    out,
                    "overwrite",
                    {"expected_rows": n_rows, "checked": True},
                    check=weight_sums,
                )
            ],
        )
    finally:
        for df in cached:
            df.unpersist()
    run.rows_out = n_rows
    top = (
        lh.read(gold.DOMAIN_CORRELATIONS)
        .filter(F.col("chosen") & (F.col("weight") > 0))
        .orderBy(F.desc("weight"), "domain")
        .limit(5)
        .collect()
    )
    c = commits[gold.DOMAIN_CORRELATIONS.name]
    lines = [
        f"{STAGE} run {run.run_id}: read {versions}",
        f"  {len(models)} models ({', '.join(models)}) x {n_domains} domains with >= {dc.min_docs} documents "
        f"scored by all of them; y = mean error over {', '.join(group)}",
    ]
    if others:
        lines.append(f"  left out (no perplexities or no score on every benchmark): {', '.join(others)}")
    lines.append(
        f"  {n_rows} rows ({len(gold.ESTIMATORS)} estimators x {len(gold.PROJECTIONS)} projections) "
        f"-> {gold.DOMAIN_CORRELATIONS.name} v{c.version}"
    )
    lines.append(
        f"  top domains by weight ({dc.estimator}, {dc.projection}; keep_ratio {dc.keep_ratio}): "
        + ", ".join(f"{r['domain']} {r['weight']:.3f}" for r in top)
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``corpuslake-aggregate-domains`` and ``spark-submit jobs/aggregate_domains.py``."""
    args = job_parser(STAGE, "Perplexity correlations: per-domain estimates and weights.").parse_args(argv)
    return run_job(STAGE, args, aggregate_domains, READS, preflight=preflight, watch=WATCH)


if __name__ == "__main__":
    sys.exit(main())
