"""aggregate_docs: score tables → gold.doc_scores, every document's score per selection strategy.

  betr       scores.similarity (``aggregate.betr.method``) → best position over the chosen benchmarks
             (``betr_labels``) → top ``positive_share`` are positives → the bigram classifier
             (``jobs.textclf``) trained on a seeded split, scored on the whole pool: score = P(include); the
             threshold keeping ``keep_token_share`` of the held-out tokens (``token_threshold``) is recorded
             in ``detail``.
  pplcorr    gold.domain_correlations (chosen estimator and projection): pages of domains with weight > 0
             against the rest → the same classifier → score = P(include).
  metarater  Q = Σ w_j norm_j under gold.rater_weights ``final`` (``jobs.methods.metarater``).
  rds        scores.similarity ``rds``: round-robin over the benchmarks (tasks), each taking its best
             unchosen document by max cosine; score = −(pick position), detail = task and round.
  random     a seeded hash of doc_id in [0, 1) (``select.seed``), the baseline.

A strategy whose inputs are missing (no similarity rows, no correlations, no final weights) is skipped with
the reason in the summary; the table is replaced with every strategy that could be computed. Each row
records the versions of the tables its strategy read.

No step sends the pool through one task: positions, positives, the threshold's running sums and the RDS+
task orders are exact ranks from ``jobs.ordered`` (range-partitioned), not windows per benchmark or over
the whole pool. The driver collects benchmark names, per-label counts, one row per threshold choice and,
for RDS+, at most tasks × ``RDS_EXACT_PICKS`` doc_ids, never the pool.

Run it:  corpuslake stage aggregate_docs --conf conf/local.yaml
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs import freshness
from jobs.config import Conf
from jobs.gates import Output, publish
from jobs.methods.betr import betr, betr_benchmarks
from jobs.methods.metarater import metarater_scores, signal_tables
from jobs.methods.pplcorr import page_scores
from jobs.methods.rds import rds_order
from jobs.methods.sampling import Unscorable, random_scores
from jobs.queries import table_versions
from jobs.runtime import JobContext, UsageError, job_parser, run_job
from schemas import gold, scores, silver

STAGE = "aggregate_docs"
READS = (silver.DOCUMENTS, scores.SIMILARITY)
# Read when present; a strategy that needs a missing one is skipped.
OPTIONAL_READS = (gold.DOMAIN_CORRELATIONS, gold.RATER_WEIGHTS, scores.PRRC, scores.QUALITY)
WATCH = freshness.Watch((*READS, *OPTIONAL_READS), ("aggregate", "select.seed"))


# ------------------------------------------------------------------------------------------------ gate


def doc_scores_check(docs: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """The gate's view of staged doc scores: ``gold.DOC_SCORES_CHECKS`` columns, each the offending doc_id
    (``_missing_doc``: not in ``docs``; ``_bad_score``: NaN or infinite)."""
    ids = docs.select("doc_id", F.lit(True).alias("_in_silver"))

    def check(staged: DataFrame) -> DataFrame:
        bad = F.isnan("score") | (F.abs("score") == F.lit(float("inf")))
        return (
            staged.join(ids, "doc_id", "left")
            .withColumn("_missing_doc", F.when(F.col("_in_silver").isNull(), F.col("doc_id")))
            .withColumn("_bad_score", F.when(bad, F.col("doc_id")))
            .drop("_in_silver")
        )

    return check


# ------------------------------------------------------------------------------------------------ stage


def preflight(conf: Conf) -> None:
    """Blind BETR holds the eval suite out, so it has to be named."""
    bc = conf.aggregate.betr
    if bc.mode == "blind" and not bc.eval_benchmarks:
        raise UsageError(
            f"{conf.source_file}: aggregate.betr.mode is blind but aggregate.betr.eval_benchmarks is not "
            "set; name the evaluation suite to hold out"
        )


@dataclass
class _Part:
    strategy: str
    rows: DataFrame  # [doc_id, score, detail]
    versions: str
    note: str


def _fmt_share(x: float) -> str:
    return f"{100 * x:.2f}%"


def aggregate_docs(ctx: JobContext) -> str:
    """The stage body: each computable strategy's scores → gate → replace gold.doc_scores."""
    conf, lh, run = ctx.conf, ctx.lakehouse, ctx.run
    if not lh.exists(silver.DOCUMENTS):
        raise UsageError("silver.documents does not exist yet; run clean first")
    for spec in OPTIONAL_READS:
        v = lh.version(spec)
        if v is not None:
            run.tables_read[spec.name] = v
    docs = lh.read(silver.DOCUMENTS).select(
        "doc_id", "domain", "text", F.col("n_tokens_est").alias("n_tokens")
    )
    ids = docs.select("doc_id")
    sim = lh.read(scores.SIMILARITY).join(ids, "doc_id", "left_semi")
    by_method = {r["method"] for r in sim.select("method").distinct().collect()}

    parts: list[_Part] = []
    skipped: list[tuple[str, str]] = []
    cached: list[DataFrame] = []
    try:
        # --- betr
        bc = conf.aggregate.betr
        if bc.method not in by_method:
            skipped.append(("betr", f"scores.similarity has no {bc.method!r} rows (run score_similarity)"))
        else:
            ranks = sim.filter(F.col("method") == bc.method)
            present = [r["benchmark"] for r in ranks.select("benchmark").distinct().collect()]
            chosen = betr_benchmarks(present, bc.mode, bc.eval_benchmarks)
            try:
                res = betr(
                    docs,
                    ranks.filter(F.col("benchmark").isin(chosen)),
                    positive_share=bc.positive_share,
                    heldout_share=bc.heldout_share,
                    keep_token_share=bc.keep_token_share,
                    clf=conf.aggregate.classifier,
                    hold=cached,
                )
            except Unscorable as exc:
                skipped.append(("betr", str(exc)))
            else:
                cached.append(res.scores)
                t = res.threshold
                detail = F.concat(
                    F.lit(f"threshold={t.threshold!r} kept="),
                    F.when(F.col("p_include") >= F.lit(t.threshold), "true").otherwise("false"),
                )
                parts.append(
                    _Part(
                        "betr",
                        res.scores.select(
                            "doc_id", F.col("p_include").alias("score"), detail.alias("detail")
                        ),
                        table_versions(lh, (silver.DOCUMENTS, scores.SIMILARITY)),
                        f"{bc.mode} ({', '.join(chosen)}; {bc.method} ranks): {res.n_scored:,} scored, "
                        f"{res.n_positive:,} positives, trained on {res.n_train:,}; threshold "
                        f"{t.threshold:.6g} keeps {_fmt_share(t.kept_share)} of the held-out tokens "
                        f"({t.kept_docs:,} of {res.n_heldout:,} docs; target "
                        f"{_fmt_share(bc.keep_token_share)}), "
                        f"{_fmt_share(res.pool_kept_share)} of the pool's",
                    )
                )

        # --- pplcorr
        if not lh.exists(gold.DOMAIN_CORRELATIONS):
            skipped.append(("pplcorr", "gold.domain_correlations does not exist (run aggregate_domains)"))
        else:
            corr = lh.read(gold.DOMAIN_CORRELATIONS).filter(F.col("chosen"))
            c = corr.agg(
                F.count("*").alias("n"),
                F.sum(F.when(F.col("weight") > 0, 1).otherwise(0)).alias("inc"),
                F.first("estimator").alias("est"),
                F.first("projection").alias("proj"),
            ).first()
            if not c["n"]:
                skipped.append(
                    ("pplcorr", "gold.domain_correlations has no chosen rows (run aggregate_domains)")
                )
            else:
                include = corr.filter(F.col("weight") > 0).select("domain")
                try:
                    scored = page_scores(docs, include, conf.aggregate.classifier, cached).persist()
                    cached.append(scored)
                    n_inc = scored.filter(F.col("label") == 1).count()
                except Unscorable as exc:
                    skipped.append(("pplcorr", str(exc)))
                else:
                    detail = F.concat(
                        F.lit(f"{c['est']}/{c['proj']} include_domain="),
                        F.when(F.col("label") == 1, "true").otherwise("false"),
                    )
                    parts.append(
                        _Part(
                            "pplcorr",
                            scored.select(
                                "doc_id", F.col("p_include").alias("score"), detail.alias("detail")
                            ),
                            table_versions(lh, (silver.DOCUMENTS, gold.DOMAIN_CORRELATIONS)),
                            f"{c['est']}/{c['proj']}: {c['inc']} of {c['n']} domains included, "
                            f"{n_inc:,} of their pages",
                        )
                    )

        # --- metarater
        final = {}
        if lh.exists(gold.RATER_WEIGHTS):
            w_rows = lh.read(gold.RATER_WEIGHTS).filter(F.col("weights_id") == "final").collect()
            final = {r["signal"]: float(r["weight"]) for r in w_rows}
        if not final:
            skipped.append(("metarater", "gold.rater_weights has no 'final' weights (run aggregate_weights)"))
        else:
            # The profile's signal order first: aggregate_weights sums Q in that order.
            order = [s for s in conf.aggregate.weights.signals if s in final]
            final = {s: final[s] for s in order + sorted(set(final) - set(order))}
            notes: list[str] = []
            desc = ", ".join(f"{s}={w:.3f}" for s, w in final.items())
            try:
                q = metarater_scores(lh, final, notes)
            except UsageError as exc:  # no document has every signal, or w* names an unknown one
                skipped.append(("metarater", str(exc)))
            else:
                read = [silver.DOCUMENTS, gold.RATER_WEIGHTS, *signal_tables(list(final))]
                parts.append(
                    _Part(
                        "metarater",
                        q.select("doc_id", "score", F.lit(f"Q: {desc}").alias("detail")),
                        table_versions(lh, read),
                        "; ".join([f"Q under w* ({desc})", *notes]),
                    )
                )

        # --- rds
        if "rds" not in by_method:
            skipped.append(("rds", "scores.similarity has no 'rds' rows (configure score.rds.encoder)"))
        else:
            order = rds_order(
                sim.filter(F.col("method") == "rds").select("doc_id", "benchmark", "max_cosine"), hold=cached
            )
            order = order.persist()
            cached.append(order)
            o = order.agg(F.countDistinct("benchmark").alias("t"), F.max("round").alias("r")).first()
            detail = F.concat(
                F.lit("task="), F.col("benchmark"), F.lit(" round="), F.col("round").cast("string")
            )
            parts.append(
                _Part(
                    "rds",
                    order.select(
                        "doc_id", (-F.col("pick")).cast("double").alias("score"), detail.alias("detail")
                    ),
                    table_versions(lh, (silver.DOCUMENTS, scores.SIMILARITY)),
                    f"round-robin over {o['t']} tasks, {o['r']} rounds",
                )
            )

        # --- random
        seed = conf.select.seed
        parts.append(
            _Part(
                "random",
                random_scores(docs, seed).withColumn("detail", F.lit(f"seed={seed}")),
                table_versions(lh, (silver.DOCUMENTS,)),
                f"seeded hash of doc_id (select.seed {seed})",
            )
        )

        meta = docs.select("doc_id", "domain", "n_tokens")
        out = None
        for p in parts:
            rows = p.rows.join(meta, "doc_id").select(
                "doc_id",
                F.lit(p.strategy).alias("strategy"),
                F.col("score").cast("double").alias("score"),
                "domain",
                F.col("n_tokens").cast("long").alias("n_tokens"),
                F.col("detail").cast("string").alias("detail"),
                F.lit(run.run_id).alias("run_id"),
                F.lit(run.started_at).alias("computed_at"),
                F.lit(p.versions).alias("table_versions"),
            )
            out = rows if out is None else out.unionByName(rows)
        out = out.persist()
        cached.append(out)
        counts = {
            r["strategy"]: r["n"] for r in out.groupBy("strategy").agg(F.count("*").alias("n")).collect()
        }
        n_rows = sum(counts.values())
        commits = publish(
            lh,
            run,
            [
                Output(
                    gold.DOC_SCORES,
                    out,
                    "overwrite",
                    {"expected_rows": n_rows, "checked": True},
                    check=doc_scores_check(docs),
                )
            ],
        )
    finally:
        for df in cached:
            df.unpersist()
    run.rows_out = n_rows
    c = commits[gold.DOC_SCORES.name]
    lines = [f"{STAGE} run {run.run_id}: read {json.dumps(run.tables_read, sort_keys=True)}"]
    for p in parts:
        lines.append(f"  {p.strategy}: {counts.get(p.strategy, 0):,} documents; {p.note}")
    for s, why in skipped:
        lines.append(f"  {s}: skipped, {why}")
    lines.append(f"  {n_rows:,} rows ({len(parts)} strategies) -> {gold.DOC_SCORES.name} v{c.version}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``corpuslake-aggregate-docs`` and ``spark-submit jobs/aggregate_docs.py``."""
    args = job_parser(STAGE, "Per-document scores for every selection strategy.").parse_args(argv)
    return run_job(STAGE, args, aggregate_docs, READS, preflight=preflight, watch=WATCH)


if __name__ == "__main__":
    sys.exit(main())
