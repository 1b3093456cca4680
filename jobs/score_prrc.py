"""score_prrc: silver.documents → scores.prrc, Meta-rater's four PRRC ratings per document.

Four raters (``score.prrc.professionalism|readability|reasoning|cleanliness``), each a sequence
classifier with 6 classes (0–5) or a 1-output regressor, rate every document. A class rater's rating is
the expected class Σ k·p(k) (kept with the argmax class); long documents follow the raters'
``long_text`` policy. The four raters run in the same task so each text is read once; a rerun rates
only documents the table lacks for this exact rater set (ids and revisions, column ``raters``).

Run it:  corpuslake stage score_prrc --conf conf/local.yaml
"""

from __future__ import annotations

import sys

import pandas as pd
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, LongType, StringType, StructField, StructType

from jobs import freshness, scoring
from jobs.config import Conf
from jobs.runtime import JobContext, UsageError, job_parser, run_job
from schemas import scores, silver

STAGE = "score_prrc"
READS = (silver.DOCUMENTS,)
# Scoring is incremental by itself (only documents without scores), but finding that out costs a pass over
# silver per model: with silver, the score table and the models' settings as the last succeeded run left them,
# there is nothing to score, and ``corpuslake run`` skips the stage (``jobs.freshness``).
WATCH = freshness.Watch(READS, ("score.prrc", "gpu"))
DIMS = scores.PRRC_DIMENSIONS


def preflight(conf: Conf) -> None:
    """All four raters must be configured and be loadable sequence classifiers."""
    raters = conf.score.prrc.raters
    absent = [d for d in DIMS if d not in raters]
    if absent:
        raise UsageError(
            f"{conf.source_file}: score.prrc: no rater for {', '.join(absent)} "
            "(all four PRRC raters are needed)"
        )
    scoring.check_models([(f"score.prrc.{d}", raters[d], "classifier") for d in DIMS], conf.gpu)


def rater_set(specs: dict) -> str:
    """The ``raters`` column: ``dimension=id@revision`` for the four raters, in PRRC order."""
    return ";".join(f"{d}={specs[d].key}" for d in DIMS)


def _rate(specs: tuple, pdf: pd.DataFrame) -> pd.DataFrame:
    from udfs.models import get_runner

    cols = {}
    tokens = None
    for d, spec in zip(DIMS, specs, strict=True):
        res = get_runner(spec, "classifier", capacity=len(DIMS)).predict_batch(pdf["text"])
        cols[d] = res["expected"].to_numpy()
        cols[f"{d}_label"] = res["label"].to_numpy()
        tokens = res["n_tokens"].to_numpy() if tokens is None else tokens
    return pd.DataFrame({**cols, "n_tokens": tokens})


def ratings(specs: dict, profile=None):
    """Documents ``[doc_id, text]`` → ``[doc_id, <dim>, <dim>_label …, n_tokens]`` under the four raters."""
    fields = [StructField("doc_id", StringType(), False)]
    for d in DIMS:
        fields += [StructField(d, DoubleType(), False), StructField(f"{d}_label", IntegerType(), False)]
    fields.append(StructField("n_tokens", LongType(), False))
    return scoring.model_transform(
        tuple(specs[d] for d in DIMS),
        "classifier",
        StructType(fields),
        ["doc_id"],
        score=_rate,
        profile=profile,
    )


def score_prrc(ctx: JobContext) -> str:
    """The stage body: rate the documents this rater set has not rated yet."""
    conf = ctx.conf
    specs = {d: e.spec(f"score.prrc.{d}", conf.gpu) for d, e in conf.score.prrc.raters.items()}
    raters = rater_set(specs)
    docs = scoring.silver_docs(ctx)
    n_docs = docs.count()
    todo = docs.transform(scoring.missing(ctx.lakehouse, scores.PRRC, F.col("raters") == raters))
    rate = ratings(specs, scoring.gpu_profile(conf.gpu))

    def rows(part):
        return part.transform(rate).select(
            "doc_id",
            *[c for d in DIMS for c in (d, f"{d}_label")],
            F.lit(raters).alias("raters"),
            "n_tokens",
            F.lit(ctx.run.run_id).alias("run_id"),
            F.lit(ctx.run.started_at).alias("scored_at"),
        )

    result = scoring.score_and_publish(
        ctx, "prrc (4 raters)", todo, scores.PRRC, scores.PRRC_KEYS, rows, total=n_docs
    )
    return scoring.summary(STAGE, ctx.run.run_id, [result]) + f"\n  raters: {raters}"


def main(argv: list[str] | None = None) -> int:
    args = job_parser(STAGE, "Meta-rater PRRC ratings for every document.").parse_args(argv)
    return run_job(STAGE, args, score_prrc, READS, preflight=preflight, watch=WATCH)


if __name__ == "__main__":
    sys.exit(main())
