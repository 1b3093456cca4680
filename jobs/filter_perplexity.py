"""filter_perplexity: silver.documents + scores.perplexity → silver.filtered (``perplexity:<band>``).

Ziya2's automatic scoring: each document's perplexity under a reference LM (``filter.perplexity.model``, a
model of the perplexity pool, which score_perplexity scores on every document) puts it in a percentile
band of its scope (the pool, its domain or its language); documents outside the kept bands are recorded in
silver.filtered as ``perplexity:<band>`` (``jobs.methods.pplfilter``).

Where it sits. The reference scores exist only after score_perplexity, which runs after clean, so this is
a stage of its own right after score_perplexity, and its drops take effect where documents are chosen:
aggregate_docs leaves them out, so no strategy selects them (a select-time filter). silver.documents keeps
them: their text is clean and the scores already computed stay keyed to them; the funnel's last row
(``perplexity``) counts them. Ziya2 scores before its rule filters; here dedup and the rules run first, so
the reference LM scores fewer documents.

Reruns and incremental batches. The filter judges clean batches (silver.documents' ``clean_run_id``) it
has not judged yet. A judged batch is named in the commit info of the silver.filtered commit that holds its
drops (``corpuslake.filter_perplexity``, written with the rows) and in the succeeded run's audit.runs
inputs (``judged:<batch>``, for a batch without drops), so a rerun with nothing new writes nothing and a run
killed after its commit is not judged twice. The cut points are computed over every silver document with a
reference score, earlier batches included; earlier verdicts are never rewritten. A full clean (new batch
ids, silver.filtered replaced) is judged anew. Documents of a batch being judged that lack a reference
score stop the stage with one line (run score_perplexity first).

Run it:  corpuslake stage filter_perplexity --conf conf/local.yaml
"""

from __future__ import annotations

import json
import sys

from pyspark.sql import functions as F

from jobs import audit
from jobs.clean_batches import new_keys_check
from jobs.config import Conf
from jobs.gates import Output, publish
from jobs.methods.pplfilter import GLOBAL, Bands, banded, cut_points, perplexity, scope_col
from jobs.runtime import JobContext, UsageError, job_parser, run_job
from schemas import scores, silver

STAGE = "filter_perplexity"
READS = (silver.DOCUMENTS, scores.PERPLEXITY)
STEP = "perplexity"  # the step of its silver.filtered rows (schemas.silver.LATER_STEPS)
LEDGER_KEY = "corpuslake.filter_perplexity"
JUDGED_PREFIX = "judged:"


def preflight(conf: Conf) -> None:
    """The reference model must be a model of the perplexity pool."""
    pf = conf.filter.perplexity
    if not pf.enabled:
        return
    ids = [m.model_id for m in conf.score.perplexity.pool]
    if pf.model not in ids:
        raise UsageError(
            f"{conf.source_file}: filter.perplexity.model: {pf.model!r} is not a score.perplexity.pool model "
            f"(ids: {', '.join(ids) or 'none'}); the reference LM must be scored by score_perplexity"
        )


def bands_of(conf: Conf) -> Bands:
    """The ``filter.perplexity`` settings as plain bands."""
    pf = conf.filter.perplexity
    return Bands.keep_share(pf.keep_share) if pf.method == "keep_share" else Bands.buckets(pf.keep_bands)


def judged_batches(lakehouse) -> set[str]:
    """Clean batches already judged: named by silver.filtered commits or by succeeded runs' inputs."""
    out = {
        fp[len(JUDGED_PREFIX) :]
        for fp in audit.succeeded_inputs(lakehouse, STAGE)
        if fp.startswith(JUDGED_PREFIX)
    }
    if lakehouse.exists(silver.FILTERED):
        for _, _, value in lakehouse.commit_info(silver.FILTERED, LEDGER_KEY):
            out.update(json.loads(value))
    return out


def filter_perplexity(ctx: JobContext) -> str:
    """The stage body: judge the batches not judged yet, append their drops to silver.filtered."""
    conf, lh, run = ctx.conf, ctx.lakehouse, ctx.run
    pf = conf.filter.perplexity
    head = f"{STAGE} run {run.run_id}"
    if not pf.enabled:
        return f"{head}: nothing new to judge: filter.perplexity is off (enabled: false); nothing written"
    for spec, stage in ((silver.DOCUMENTS, "clean"), (scores.PERPLEXITY, "score_perplexity")):
        if not lh.exists(spec):
            raise UsageError(f"{spec.name} does not exist yet; run {stage} first")
    (entry,) = [m for m in conf.score.perplexity.pool if m.model_id == pf.model]
    model = f"{entry.model_id}@{entry.revision}"
    v_docs, v_filtered = lh.version(silver.DOCUMENTS), lh.version(silver.FILTERED)
    run.tables_read[silver.DOCUMENTS.name] = v_docs or 0
    docs = lh.read(silver.DOCUMENTS, version=v_docs)
    # One row per clean batch: bounded by batches, never by documents.
    batches = sorted(r["clean_run_id"] for r in docs.select("clean_run_id").distinct().collect())
    todo = [b for b in batches if b not in judged_batches(lh)]
    if not todo:
        return f"{head}: nothing new: every batch of silver.documents v{v_docs} is judged; nothing written"

    ref = (
        lh.read(scores.PERPLEXITY)
        .filter((F.col("model_id") == entry.model_id) & (F.col("revision") == entry.revision))
        .select("doc_id", perplexity(F.col("nll_sum"), F.col("n_tokens")).alias("perplexity"))
    )
    run.tables_read[scores.PERPLEXITY.name] = lh.version(scores.PERPLEXITY) or 0
    pool = (
        docs.select("doc_id", "url", "domain", "source", "lang", "clean_run_id", "cleaned_at")
        .withColumn("scope", scope_col(pf.scope))
        .join(ref, "doc_id", "left")
        .persist()
    )
    cuts = None
    try:
        new = pool.filter(F.col("clean_run_id").isin(todo))
        counts = new.agg(F.count("*").alias("n"), F.count("perplexity").alias("scored")).first()
        if counts["scored"] < counts["n"]:
            raise UsageError(
                f"{STAGE}: {counts['n'] - counts['scored']:,} of the {counts['n']:,} documents to judge have "
                f"no score under {model} in scores.perplexity; run score_perplexity first (it scores "
                "filter.perplexity.model on every document)"
            )
        bands = bands_of(conf)
        cuts = (
            pool.filter(F.col("perplexity").isNotNull()).transform(cut_points(bands, pf.accuracy)).persist()
        )
        verdicts = new.transform(banded(cuts, bands))
        drops = verdicts.filter(~F.col("kept")).select(
            "doc_id",
            "url",
            "domain",
            "source",
            F.lit(STEP).alias("step"),
            F.concat(F.lit("perplexity:"), F.col("band")).alias("reason"),
            F.col("perplexity").alias("value"),
            F.lit(None).cast("string").alias("survivor_id"),
            F.format_string(
                "perplexity under %s in band %s of %s (%d documents): above %s, at most %s",
                F.lit(model),
                F.col("band"),
                F.when(F.col("scope") == GLOBAL, F.lit("the pool")).otherwise(F.col("scope")),
                F.col("docs"),
                F.coalesce(F.format_number("low", 4), F.lit("-")),
                F.coalesce(F.format_number("high", 4), F.lit("-")),
            ).alias("detail"),
            "clean_run_id",
            "cleaned_at",
        )
        by_band = {r["band"]: r["n"] for r in verdicts.groupBy("band").agg(F.count("*").alias("n")).collect()}
        n_drops = sum(n for b, n in by_band.items() if b not in bands.keep)
        n_scopes = cuts.count()
        lines = [
            f"{head}",
            f"  judged {counts['n']:,} documents of {len(todo)} clean batch(es) under {model}; "
            f"cut points over {pool.filter(F.col('perplexity').isNotNull()).count():,} scored silver "
            f"documents in {n_scopes:,} {pf.scope} scope(s)",
        ]
        for b in bands.names:
            what = "kept" if b in bands.keep else "dropped"
            lines.append(f"    {b:<8} {by_band.get(b, 0):>9,}  {what}")
        if n_drops:
            out = Output(
                silver.FILTERED,
                drops,
                "append",
                {"expected_rows": n_drops, "new_keys": True},
                check=new_keys_check(lh, [silver.FILTERED]),
                read_version=v_filtered,
                commit_info={LEDGER_KEY: json.dumps(todo)},
            )
            commits = publish(lh, run, [out], idempotent=False)
            lines.append(f"  silver.filtered    v{commits[silver.FILTERED.name].version}  +{n_drops:,} rows")
        else:
            lines.append("  nothing dropped; nothing written")
    finally:
        for df in (pool, cuts):
            if df is not None:
                df.unpersist()
    run.inputs.extend(JUDGED_PREFIX + b for b in todo)
    run.rows_in, run.rows_out = counts["n"], n_drops
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``corpuslake-filter-perplexity`` and ``spark-submit jobs/filter_perplexity.py``."""
    args = job_parser(STAGE, "Drop documents outside the kept perplexity bands (Ziya2).").parse_args(argv)
    return run_job(STAGE, args, filter_perplexity, READS, preflight=preflight)


if __name__ == "__main__":
    sys.exit(main())
