"""aggregate_domains: perplexity correlations (Thrush et al. 2024) → gold.domain_correlations.

scores.perplexity + silver.documents + ref.model_scores → per domain, five estimates of how strongly
lower bits-per-byte goes with lower benchmark error across the perplexity pool, each projected to
sampling weights two ways (linear, l2) under tau = token share / keep_ratio, keep_ratio = select's token
budget over silver.documents' tokens (the share the corpus keeps). The method, its SQL and the
notes on orientation and ties are ``jobs.methods.pplcorr``. Every estimator and projection is written;
``chosen`` marks the profile's (``aggregate.domains.estimator``/``projection``).

Run it:  corpuslake stage aggregate_domains --conf conf/local.yaml
"""

from __future__ import annotations

import json
import math
import sys

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs import freshness
from jobs.config import Conf
from jobs.gates import Output, publish
from jobs.methods.pick import budget_share
from jobs.methods.pplcorr import domain_bpb, domain_tokens, estimates, model_errors, project, weight_sums
from jobs.queries import table_versions
from jobs.runtime import JobContext, UsageError, job_parser, run_job
from schemas import gold, ref, scores, silver

STAGE = "aggregate_domains"
READS = (silver.DOCUMENTS, scores.PERPLEXITY, ref.MODEL_SCORES)
# select.token_budget: keep_ratio is the budget's share of the pool's tokens.
WATCH = freshness.Watch(READS, ("aggregate.domains", "score.perplexity.pool", "select.token_budget"))


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
        # tau_j = token share / keep_ratio assumes keep_ratio is the share of the pool's tokens the corpus
        # keeps: that is select's budget over silver's tokens (a stated keep_ratio must agree with it).
        pool_tokens = int(docs.agg(F.sum("n_tokens_est")).first()[0] or 0)
        budget = ctx.conf.select.token_budget
        keep_ratio = budget_share(budget, pool_tokens, dc.keep_ratio, "aggregate.domains.keep_ratio")
        if n_domains == 0:
            best = domain_bpb(ppl, docs, pool, 1).agg(F.max("n_docs")).first()[0] or 0
            raise UsageError(
                f"no domain has {dc.min_docs} documents scored by all {len(models)} models "
                f"(aggregate.domains.min_docs); the best domain has {best}. Lower min_docs or score more "
                "documents per domain (score.perplexity.sample.per_domain)."
            )
        if share / keep_ratio < 1:
            raise UsageError(
                f"the {n_domains} correlated domains hold {share:.2%} of silver.documents' tokens, so with "
                f"keep_ratio {keep_ratio:.4f} (select.token_budget {budget:,} / {pool_tokens:,} pool tokens) "
                f"their bounds tau = share / keep_ratio sum to {share / keep_ratio:.3f} < 1 and no weights "
                f"within them sum to 1: lower select.token_budget to at most "
                f"{math.floor(share * pool_tokens):,}, or lower min_docs to correlate more domains"
            )
        # Persisted: the projections and the gold rows both read it, and it is small (5 rows per domain).
        estimated = (
            estimates(bpb, y)
            .join(meta, "domain")
            .withColumn("tau", F.col("token_share") / F.lit(keep_ratio))
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
        f"  top domains by weight ({dc.estimator}, {dc.projection}; keep_ratio {keep_ratio:.4f} = "
        f"select.token_budget / pool tokens): " + ", ".join(f"{r['domain']} {r['weight']:.3f}" for r in top)
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``corpuslake-aggregate-domains`` and ``spark-submit jobs/aggregate_domains.py``."""
    args = job_parser(STAGE, "Perplexity correlations: per-domain estimates and weights.").parse_args(argv)
    return run_job(STAGE, args, aggregate_domains, READS, preflight=preflight, watch=WATCH)


if __name__ == "__main__":
    sys.exit(main())
