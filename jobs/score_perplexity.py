"""score_perplexity: silver.documents → scores.perplexity, one row per (document, pool model).

Every causal LM of ``score.perplexity.pool`` scores the whole text of each scheduled document with
strided windows (``udfs.models.PerplexityRunner``): n_tokens, UTF-8 n_bytes, nll_sum in nats and
bpb = nll_sum / (ln 2 · n_bytes). Each text starts after the tokenizer's BOS (else its EOS) token, so
every token, and with it every byte counted in n_bytes, is scored. The correlation stage only needs a
sample per domain, so ``score.perplexity.sample.per_domain`` limits each domain to K documents chosen by
a seeded hash.
A rerun scores only the (document, model id, revision) pairs the table lacks.

Run it:  corpuslake stage score_perplexity --conf conf/local.yaml
         spark-submit jobs/score_perplexity.py --conf conf/local.yaml
"""

from __future__ import annotations

import sys

from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

from jobs import freshness, scoring
from jobs.config import Conf
from jobs.runtime import JobContext, UsageError, job_parser, run_job
from schemas import scores, silver

STAGE = "score_perplexity"
READS = (silver.DOCUMENTS,)
# Scoring is incremental by itself (only documents without scores), but finding that out costs a pass over
# silver per model: with silver, the score table and the models' settings as the last succeeded run left them,
# there is nothing to score, and ``corpuslake run`` skips the stage (``jobs.freshness``).
WATCH = freshness.Watch(READS, ("score.perplexity", "gpu"))

SCORE_FIELDS = [
    StructField("n_tokens", LongType(), False),
    StructField("n_bytes", LongType(), False),
    StructField("nll_sum", DoubleType(), False),
    StructField("bpb", DoubleType(), False),
]


def preflight(conf: Conf) -> None:
    """Every pool model must be a loadable causal LM; an empty pool is a conf error."""
    pool = conf.score.perplexity.pool
    if not pool:
        raise UsageError(f"{conf.source_file}: score.perplexity.pool: no models configured")
    scoring.check_models(
        [(f"score.perplexity.pool[{i}]", m, "causal_lm") for i, m in enumerate(pool)], conf.gpu
    )


def perplexities(spec, profile=None):
    """Documents ``[doc_id, text]`` → ``[doc_id, n_tokens, n_bytes, nll_sum, bpb]`` under one model."""
    schema = StructType([StructField("doc_id", StringType(), False), *SCORE_FIELDS])
    return scoring.model_transform(spec, "causal_lm", schema, ["doc_id"], profile=profile)


def score_perplexity(ctx: JobContext) -> str:
    """The stage body: for each pool model, score the sampled documents it has not scored yet."""
    conf = ctx.conf
    pc = conf.score.perplexity
    hold: list = []
    try:
        return _score_pool(ctx, pc, hold)
    finally:
        for df in hold:
            df.unpersist()


def _score_pool(ctx: JobContext, pc, hold: list) -> str:
    conf = ctx.conf
    sample = scoring.stratified_sample(pc.sample.per_domain, pc.sample.seed, hold)
    docs = scoring.silver_docs(ctx).transform(sample)
    profile = scoring.gpu_profile(conf.gpu)
    n_docs = docs.count()
    results = []
    for i, entry in enumerate(pc.pool):
        spec = entry.spec(f"score.perplexity.pool[{i}]", conf.gpu)
        done = (F.col("model_id") == spec.id) & (F.col("revision") == spec.revision)
        todo = docs.transform(scoring.missing(ctx.lakehouse, scores.PERPLEXITY, done))
        score = perplexities(spec, profile)

        def rows(part, spec=spec, score=score):
            return part.transform(score).select(
                "doc_id",
                F.lit(spec.id).alias("model_id"),
                F.lit(spec.revision).alias("revision"),
                *[f.name for f in SCORE_FIELDS],
                F.lit(ctx.run.run_id).alias("run_id"),
                F.lit(ctx.run.started_at).alias("scored_at"),
            )

        results.append(
            scoring.score_and_publish(
                ctx, spec.key, todo, scores.PERPLEXITY, scores.PERPLEXITY_KEYS, rows, total=n_docs
            )
        )
    return scoring.summary(STAGE, ctx.run.run_id, results)


def main(argv: list[str] | None = None) -> int:
    args = job_parser(
        STAGE, "Per-document bits-per-byte under every model of the perplexity pool."
    ).parse_args(argv)
    return run_job(STAGE, args, score_perplexity, READS, preflight=preflight, watch=WATCH)


if __name__ == "__main__":
    sys.exit(main())
