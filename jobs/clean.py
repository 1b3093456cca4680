"""Clean: bronze.documents → silver.documents + silver.filtered + scores.quality (Ziya2 and the web rules).

Steps, in order; a document leaves at the first one that drops it, recorded with that rule and its value:
  1. normalize        Unicode NFC, control/invisible characters, whitespace, stray HTML (empty → dropped)
  2. language         py3langid, labels mapped to ISO 639-1 (``udfs.lang``); under ``min_lang_score`` the
                      language is ``unknown``; dropped when it is a language not in ``clean.allowed_langs``
  3. rules            the ordered ``clean.rules`` (Gopher quality and repetition, C4, FineWeb), less the
                      checks that do not fit the document's language (``udfs.quality.applies``; the stage
                      warns at startup which it skips for which allowed language); after them, an ``unknown``
                      document is dropped (reason language:unknown) unless ``clean.unknown_lang`` is ``keep``
  4. exact_dedup      same hash of lowercased, whitespace-collapsed text; the smallest doc_id survives
  5. near_dedup       MinHash LSH, verified Jaccard ≥ threshold, connected components; smallest id survives
  6. decontamination  shares an n-gram (13 by default) with a ref.benchmarks example
Each run recomputes silver from all of bronze and replaces the three tables in one gated publish, so the
result is a pure function of bronze (and the profile); the gate checks bronze rows = kept + filtered.

Run it:  corpuslake stage clean --conf conf/local.yaml
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

from jobs import dedup
from jobs.config import Conf
from jobs.gates import Output, publish
from jobs.runtime import JobContext, job_parser, log, run_job
from schemas import bronze, ref, scores, silver
from udfs.lang import UNKNOWN
from udfs.minhash import tokens
from udfs.quality import SIGNALS, skipped_checks

STAGE = "clean"
READS = (bronze.DOCUMENTS, ref.BENCHMARKS)

ANALYSIS_FIELDS = [
    StructField("norm_text", StringType(), True),
    StructField("lang", StringType(), True),
    StructField("lang_score", DoubleType(), True),
    StructField("drop_step", StringType(), True),
    StructField("drop_reason", StringType(), True),
    StructField("drop_value", DoubleType(), True),
    StructField("drop_detail", StringType(), True),
    *[StructField(s.name, DoubleType(), True) for s in SIGNALS],
]


def language_warning(allowed_langs: list[str], rules: list[tuple[str, dict]]) -> str | None:
    """What the rules skip for which allowed language, as the startup warning says it; None if nothing.

    Args:
        allowed_langs: the languages the stage keeps.
        rules: ordered ``(rule, params)`` with defaults filled in (``CleanConf.rule_params()``).
    """
    groups: dict[tuple[str, ...], list[str]] = {}
    for lang in allowed_langs:
        if skipped := tuple(skipped_checks(rules, lang)):
            groups.setdefault(skipped, []).append(lang)
    if not groups:
        return None
    lines = ["clean: rule checks that assume English text are skipped for these allowed languages:"]
    for skipped, langs in groups.items():
        by_rule: dict[str, list[str]] = {}
        for reason in skipped:
            rule, check = reason.split(":", 1)
            by_rule.setdefault(rule, []).append(check)
        lines.append(f"  {', '.join(langs)}: " + "; ".join(f"{r} {', '.join(c)}" for r, c in by_rule.items()))
    return "\n".join(lines)


def preflight(conf: Conf) -> None:
    """Warns, before Spark starts, which rule checks the allowed languages skip."""
    if warning := language_warning(conf.clean.allowed_langs, conf.clean.rule_params()):
        log.warning(warning)


def analyze(
    allowed_langs: list[str],
    min_lang_score: float,
    rules: list[tuple[str, dict]],
    unknown_lang: str = "drop",
) -> Callable[[DataFrame], DataFrame]:
    """Steps 1–3 on executors: normalized text, language, quality signals and the first failing check.

    Args:
        allowed_langs: language labels to keep (``udfs.lang.LABELS``).
        min_lang_score: below this probability the language is ``unknown``.
        rules: ordered ``(rule, params)`` with defaults filled in (``CleanConf.rule_params()``); each document
            gets the checks that fit its language (``udfs.quality.applies``).
        unknown_lang: ``drop`` or ``keep`` a document of unknown language that the rules keep.
    """
    allowed = set(allowed_langs)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from udfs.lang import identify
        from udfs.normalize import normalize
        from udfs.quality import compute_signals, evaluate

        zero = {s.name: None for s in SIGNALS}
        for pdf in batches:
            out = []
            for text in pdf["text"]:
                norm = normalize(text)
                row = {
                    "norm_text": norm,
                    "lang": None,
                    "lang_score": None,
                    "drop_step": None,
                    "drop_reason": None,
                    "drop_value": None,
                    "drop_detail": None,
                    **zero,
                }
                if not norm:
                    row.update(
                        drop_step="normalize",
                        drop_reason="normalize:empty",
                        drop_value=0.0,
                        drop_detail="nothing visible left after normalization",
                    )
                    out.append(row)
                    continue
                guess, score = identify(norm)
                lang = guess if score >= min_lang_score else UNKNOWN
                row.update(lang=lang, lang_score=score)
                signals = compute_signals(norm, lang)
                row.update(signals)
                if lang != UNKNOWN and lang not in allowed:
                    row.update(
                        drop_step="language",
                        drop_reason=f"language:{lang}",
                        drop_value=score,
                        drop_detail=f"allowed languages: {sorted(allowed)}",
                    )
                elif (check := evaluate(signals, rules, lang)) is not None:
                    row.update(drop_step="rules", drop_reason=check.reason, drop_value=float(check.value))
                elif lang == UNKNOWN and unknown_lang == "drop":
                    # Junk (keyword stuffing, symbol soup) gets low confidence too; the rules explain it
                    # better, so an unknown language only drops what the rules kept.
                    row.update(
                        drop_step="language",
                        drop_reason=f"language:{UNKNOWN}",
                        drop_value=score,
                        drop_detail=f"best guess {guess} at {score:.3f} < min_lang_score {min_lang_score}",
                    )
                out.append(row)
            yield pd.concat(
                [pdf.reset_index(drop=True), pd.DataFrame(out, columns=[f.name for f in ANALYSIS_FIELDS])],
                axis=1,
            )

    def transform(df: DataFrame) -> DataFrame:
        schema = StructType([*df.schema.fields, *ANALYSIS_FIELDS])
        return df.mapInPandas(run, schema)

    return transform


def text_hash(col: str = "norm_text"):
    """sha256 of the lowercased, whitespace-collapsed text: the exact-duplicate key."""
    return F.sha2(F.lower(F.trim(F.regexp_replace(F.col(col), r"\s+", " "))), 256)


def contamination(benchmarks: DataFrame, ngram: int) -> Callable[[DataFrame], DataFrame]:
    """Step 6: documents sharing a word n-gram with a benchmark example.

    Returns ``[doc_id, benchmark, example_id, hits]`` for the documents that do.

    The benchmark n-grams are few (thousands of examples), so they are collected once and broadcast as a
    set of strings: exact matches, no hash collisions.
    """
    spark = benchmarks.sparkSession
    index: dict[str, tuple[str, str]] = {}
    for r in benchmarks.select("benchmark", "example_id", "text").collect():
        toks = tokens(r["text"])
        for i in range(max(0, len(toks) - ngram + 1)):
            index.setdefault(" ".join(toks[i : i + ngram]), (r["benchmark"], r["example_id"]))
    shared = spark.sparkContext.broadcast(index)
    out_schema = StructType(
        [
            StructField("doc_id", StringType()),
            StructField("benchmark", StringType()),
            StructField("example_id", StringType()),
            StructField("hits", LongType()),
        ]
    )

    arrow_schema = to_arrow_schema(out_schema)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        idx = shared.value
        for batch in batches:
            ids, bench, ex, hits = [], [], [], []
            for doc_id, text in zip(
                batch.column("doc_id").to_pylist(), batch.column("text").to_pylist(), strict=True
            ):
                toks = tokens(text)
                found = [
                    idx[g]
                    for g in (" ".join(toks[i : i + ngram]) for i in range(len(toks) - ngram + 1))
                    if g in idx
                ]
                if found:
                    ids.append(doc_id)
                    bench.append(found[0][0])
                    ex.append(found[0][1])
                    hits.append(len(found))
            yield pa.RecordBatch.from_pydict(
                {"doc_id": ids, "benchmark": bench, "example_id": ex, "hits": hits}, schema=arrow_schema
            )

    def transform(docs: DataFrame) -> DataFrame:
        if not index:
            return spark.createDataFrame([], out_schema)
        return docs.select("doc_id", "text").mapInArrow(run, out_schema)

    return transform


def _filtered_rows(df: DataFrame, step: str, reason, value, survivor=None, detail=None) -> DataFrame:
    return df.select(
        "doc_id",
        "url",
        "domain",
        "source",
        F.lit(step).alias("step"),
        reason.alias("reason"),
        value.cast("double").alias("value"),
        (survivor if survivor is not None else F.lit(None)).cast("string").alias("survivor_id"),
        (detail if detail is not None else F.lit(None)).cast("string").alias("detail"),
    )


def clean_documents(ctx: JobContext, docs: DataFrame, benchmarks: DataFrame):
    """Steps 1–6 as DataFrames: (kept, filtered, quality, skew_report, cached DataFrames to unpersist)."""
    c = ctx.conf.clean
    analyzed = docs.transform(analyze(c.allowed_langs, c.min_lang_score, c.rule_params(), c.unknown_lang))
    analyzed = analyzed.withColumn("text_hash", text_hash()).persist()
    cached = [analyzed]  # read by several steps; the caller unpersists them after publishing

    # Steps 1–3 were decided on the executors; their step name comes with the analysis.
    dropped = [
        analyzed.filter(F.col("drop_step").isNotNull()).select(
            "doc_id",
            "url",
            "domain",
            "source",
            F.col("drop_step").alias("step"),
            F.col("drop_reason").alias("reason"),
            F.col("drop_value").alias("value"),
            F.lit(None).cast("string").alias("survivor_id"),
            F.col("drop_detail").alias("detail"),
        )
    ]
    alive = analyzed.filter(F.col("drop_step").isNull())
    if c.exact_dedup:
        exact = alive.select("doc_id", "text_hash").transform(dedup.exact_duplicates("text_hash"))
        dropped.append(
            _filtered_rows(
                alive.join(exact, "doc_id"),
                "exact_dedup",
                F.lit("exact_duplicate"),
                F.lit(1.0),
                F.col("survivor_id"),
            )
        )
        alive = alive.join(exact.select("doc_id"), "doc_id", "left_anti")
    skew = None
    if c.near_dedup.enabled:
        n = c.near_dedup
        find_near = dedup.near_duplicates(
            n.num_perm, n.bands, n.rows, n.ngram, n.threshold, n.max_bucket, n.seed, n.verify
        )
        near, skew = find_near(alive.select("doc_id", F.col("norm_text").alias("text")))
        near = near.persist()
        cached.append(near)
        dropped.append(
            _filtered_rows(
                alive.join(near, "doc_id"),
                "near_dedup",
                F.lit("near_duplicate"),
                F.col("jaccard"),
                F.col("survivor_id"),
            )
        )
        alive = alive.join(near.select("doc_id"), "doc_id", "left_anti")
    flagged = None
    if c.decontamination.enabled:
        hits = (
            alive.select("doc_id", F.col("norm_text").alias("text"))
            .transform(contamination(benchmarks, c.decontamination.ngram))
            .persist()
        )
        cached.append(hits)
        if c.decontamination.action == "drop":
            dropped.append(
                _filtered_rows(
                    alive.join(hits, "doc_id"),
                    "decontamination",
                    F.concat(F.lit("contamination:"), F.col("benchmark")),
                    F.col("hits"),
                    detail=F.concat(
                        F.lit("shares a "),
                        F.lit(str(c.decontamination.ngram)),
                        F.lit("-gram with example "),
                        F.col("example_id"),
                    ),
                )
            )
            alive = alive.join(hits.select("doc_id"), "doc_id", "left_anti")
        else:
            flagged = hits.select("doc_id", F.col("benchmark").alias("contamination"))
    if flagged is not None:
        alive = alive.join(flagged, "doc_id", "left")
    else:
        alive = alive.withColumn("contamination", F.lit(None).cast("string"))

    run = ctx.run
    kept = alive.select(
        "doc_id",
        "url",
        "domain",
        "source",
        "lang",
        "lang_score",
        F.col("norm_text").alias("text"),
        F.length(F.encode("norm_text", "UTF-8")).cast("long").alias("n_bytes"),
        F.col("n_bytes").alias("n_bytes_raw"),
        F.ceil(F.length(F.encode("norm_text", "UTF-8")) / 4).cast("long").alias("n_tokens_est"),
        "text_hash",
        "contamination",
        F.lit(run.run_id).alias("clean_run_id"),
        F.lit(run.started_at).cast("timestamp").alias("cleaned_at"),
    )
    filtered = dropped[0]
    for d in dropped[1:]:
        filtered = filtered.unionByName(d)
    filtered = filtered.withColumn("clean_run_id", F.lit(run.run_id)).withColumn(
        "cleaned_at", F.lit(run.started_at).cast("timestamp")
    )
    kept_ids = kept.select("doc_id", F.lit(True).alias("kept"))
    quality = (
        analyzed.filter(F.col("drop_step").isNull() | (F.col("drop_step") != "normalize"))
        .select("doc_id", *[F.col(s.name) for s in SIGNALS])
        .join(kept_ids, "doc_id", "left")
        .select(
            "doc_id",
            *[s.name for s in SIGNALS],
            F.coalesce("kept", F.lit(False)).alias("kept"),
            F.lit(run.run_id).alias("clean_run_id"),
        )
    )
    return kept, filtered, quality, skew, cached


MAX_REASONS = 8  # reasons listed per step in the summary; the rest are counted on one line


def funnel_text(n_in: int, filtered_counts: list, n_kept: int, ran: set[str]) -> str:
    """The clean summary's funnel: every step in order, with what it dropped (zero included), by reason.

    Args:
        n_in: bronze documents read.
        filtered_counts: rows with ``step``, ``reason`` and ``n`` (drops per step and reason).
        n_kept: documents kept in silver.
        ran: the steps that dropped documents in this run; the others are shown as off.
    """
    lines = [f"  bronze documents read: {n_in:,}"]
    left = n_in
    for step in silver.STEPS:
        rows = sorted((r for r in filtered_counts if r["step"] == step), key=lambda r: (-r["n"], r["reason"]))
        total = sum(r["n"] for r in rows)
        if step not in ran and not rows:
            lines.append(f"  - {step:<16} {'off':>7}")
            continue
        left -= total
        lines.append(f"  - {step:<16} {total:>7,}  -> {left:,} left")
        for r in rows[:MAX_REASONS]:
            lines.append(f"      {r['reason']:<40} {r['n']:>7,}")
        if len(rows) > MAX_REASONS:
            rest = rows[MAX_REASONS:]
            more = f"… {len(rest)} more reasons"
            lines.append(f"      {more:<40} {sum(r['n'] for r in rest):>7,}")
    lines.append(f"  kept in silver.documents: {n_kept:,}")
    return "\n".join(lines)


def _kept_langs(c) -> list[str]:
    return [*c.allowed_langs, UNKNOWN] if c.unknown_lang == "keep" else list(c.allowed_langs)


def clean(ctx: JobContext) -> str:
    """The stage body: read bronze (and ref.benchmarks) → clean → gate → replace the silver tables."""
    lh, run = ctx.lakehouse, ctx.run
    docs = lh.read(bronze.DOCUMENTS).select("doc_id", "url", "domain", "source", "text", "n_bytes")
    benchmarks = lh.read(ref.BENCHMARKS)
    run.tables_read[ref.BENCHMARKS.name] = lh.version(ref.BENCHMARKS) or 0
    run.tables_read[bronze.DOCUMENTS.name] = lh.version(bronze.DOCUMENTS) or 0
    n_in = docs.count()
    kept, filtered, quality, skew, cached = clean_documents(ctx, docs, benchmarks)
    try:
        filtered = filtered.persist()
        counts = filtered.groupBy("step", "reason").agg(F.count("*").alias("n")).collect()
        n_filtered = sum(r["n"] for r in counts)
        n_kept = n_in - n_filtered
        # Signals exist for every document that survived normalization: the quality table's reconciliation.
        n_quality = n_in - sum(r["n"] for r in counts if r["step"] == "normalize")
        commits = publish(
            lh,
            run,
            [
                Output(
                    silver.DOCUMENTS,
                    kept,
                    "overwrite",
                    {"expected_rows": n_kept, "allowed_langs": _kept_langs(ctx.conf.clean)},
                ),
                Output(silver.FILTERED, filtered, "overwrite", {"expected_rows": n_filtered}),
                Output(scores.QUALITY, quality, "overwrite", {"expected_rows": n_quality}),
            ],
        )
        skewed = skew.count() if skew is not None else 0
    finally:
        for df in (*cached, filtered):
            df.unpersist()
    run.rows_in, run.rows_out = n_in, n_kept + n_filtered
    c = ctx.conf.clean
    ran = {"normalize", "language"} | ({"rules"} if c.rules else set())
    ran |= {"exact_dedup"} if c.exact_dedup else set()
    ran |= {"near_dedup"} if c.near_dedup.enabled else set()
    ran |= {"decontamination"} if c.decontamination.enabled and c.decontamination.action == "drop" else set()
    lines = [f"clean run {run.run_id}", funnel_text(n_in, counts, n_kept, ran)]
    if skewed:
        lines.append(
            f"  skew guard: {skewed} LSH buckets over max_bucket were linked as stars, not all pairs"
        )
    for spec in (silver.DOCUMENTS, silver.FILTERED, scores.QUALITY):
        lines.append(f"  {spec.name:<18} v{commits[spec.name].version}  {lh.path(spec)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``corpuslake-clean`` and ``spark-submit jobs/clean.py``."""
    args = job_parser(STAGE, "Clean bronze.documents into silver.documents and silver.filtered.").parse_args(
        argv
    )
    return run_job(STAGE, args, clean, reads=READS, preflight=preflight)


if __name__ == "__main__":
    raise SystemExit(main())
