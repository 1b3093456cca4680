"""The clean stage's steps as DataFrame transforms: analysis (steps 1–3), the survivor rule's order key,
decontamination (step 6), and ``clean_documents``, which chains them with the dedup steps (``jobs.dedup``)
over one batch of bronze rows. The stage (``jobs.clean``) reads the tables, gates and publishes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

from jobs import dedup
from jobs.config import CleanConf
from udfs.lang import UNKNOWN
from udfs.minhash import tokens
from udfs.quality import SIGNALS

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


def order_key(ts: str = "ingested_at", doc_id: str = "doc_id"):
    """The survivor rule as one sortable string: ingest time in microseconds (20 digits), ``|``, doc_id.

    The dedup steps compare these as ids, so the earliest-ingested document survives, ties broken by the
    smallest doc_id.
    """
    micros = F.lpad(F.unix_micros(F.col(ts)).cast("string"), 20, "0")
    return F.concat(micros, F.lit("|"), F.col(doc_id))


def key_doc_id(key):
    """The doc_id in an ``order_key`` column (what follows the 20 digits and the bar)."""
    return F.substring(key, 22, 1 << 30)


@F.pandas_udf(StringType())
def normalized(texts: pd.Series) -> pd.Series:
    """``udfs.normalize.normalize`` of each text, as step 1 computes ``norm_text``."""
    from udfs.normalize import normalize

    return pd.Series([normalize(t) if isinstance(t, str) else "" for t in texts], dtype=object)


@dataclass
class Earlier:
    """What a batch is de-duplicated against: earlier batches' silver.dedup_index rows, and where the texts
    of earlier documents come from when exact near-dup verification needs a few of them."""

    index: DataFrame
    texts: Callable[[DataFrame], DataFrame]


def earlier_texts(bronze_docs: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """``[doc_id = order_key]`` → ``[doc_id, text]``: those documents' bronze text, normalized again (step 1
    is deterministic); the join comes first, so only the asked documents are normalized."""

    def lookup(ids: DataFrame) -> DataFrame:
        wanted = ids.select(F.col("doc_id").alias("_key"), key_doc_id(F.col("doc_id")).alias("doc_id"))
        return (
            bronze_docs.select("doc_id", "text")
            .join(wanted, "doc_id")
            .select(F.col("_key").alias("doc_id"), normalized("text").alias("text"))
        )

    return lookup


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


def clean_documents(
    docs: DataFrame,
    benchmarks: DataFrame,
    c: CleanConf,
    run_id: str,
    cleaned_at: datetime,
    earlier: Earlier | None = None,
):
    """Steps 1–6 on a batch of bronze rows, as DataFrames.

    Args:
        docs: the batch (bronze columns doc_id, url, domain, source, text, n_bytes, ingested_at).
        benchmarks: ref.benchmarks for decontamination.
        c: the clean settings.
        run_id, cleaned_at: the batch's run and time, written in every row.
        earlier: earlier batches to de-duplicate against (None: the batch is all of bronze).

    Returns:
        ``(kept, filtered, quality, dedup_index, skew_report, cached DataFrames to unpersist)``.
    """
    analyzed = docs.transform(analyze(c.allowed_langs, c.min_lang_score, c.rule_params(), c.unknown_lang))
    analyzed = analyzed.withColumn("text_hash", text_hash()).withColumn("order_key", order_key()).persist()
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
    alive = reached = analyzed.filter(F.col("drop_step").isNull())
    # The dedup steps work on order keys (see ``order_key``), so "smallest id" is the survivor rule.
    as_key = F.col("order_key").alias("doc_id")
    exact = sigs = near = None
    if c.exact_dedup:
        old = None
        if earlier is not None:
            survivors = earlier.index.filter(F.coalesce(F.col("step"), F.lit("")) != "exact_dedup")
            old = survivors.select(as_key, "text_hash")
        exact = (
            alive.select(as_key, "text_hash")
            .transform(dedup.exact_duplicates("text_hash", old))
            .select(F.col("doc_id").alias("order_key"), F.col("survivor_id").alias("exact_of"))
            .persist()
        )
        cached.append(exact)
        dropped.append(
            _filtered_rows(
                alive.join(exact, "order_key"),
                "exact_dedup",
                F.lit("exact_duplicate"),
                F.lit(1.0),
                key_doc_id(F.col("exact_of")),
            )
        )
        alive = alive.join(exact.select("order_key"), "order_key", "left_anti")
    skew = None
    if c.near_dedup.enabled:
        n = c.near_dedup
        texts = alive.select(as_key, F.col("norm_text").alias("text"))
        # Persisted, not recomputed: the UDF is the expensive part, and the index stores the signatures.
        sigs = texts.transform(dedup.minhash_signatures(n.num_perm, n.ngram, n.seed)).persist()
        cached.append(sigs)
        link = dedup.link_near(n.bands, n.rows, n.threshold, n.max_bucket, n.verify, n.ngram)
        old = old_texts = None
        if earlier is not None:
            old = earlier.index.filter(F.col("component").isNotNull()).select(as_key, "sig", "component")
            old_texts = earlier.texts
        near, skew = link(sigs.filter(F.get("sig", 0) != dedup.EMPTY_SIG_VALUE), texts, old, old_texts)
        near = near.select(
            F.col("doc_id").alias("order_key"), F.col("survivor_id").alias("near_of"), "jaccard"
        ).persist()
        cached.append(near)
        dropped.append(
            _filtered_rows(
                alive.join(near, "order_key"),
                "near_dedup",
                F.lit("near_duplicate"),
                F.col("jaccard"),
                key_doc_id(F.col("near_of")),
            )
        )
        alive = alive.join(near.select("order_key"), "order_key", "left_anti")
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

    stamp = [F.lit(run_id).alias("clean_run_id"), F.lit(cleaned_at).cast("timestamp").alias("cleaned_at")]
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
        *stamp,
    )
    filtered = dropped[0]
    for d in dropped[1:]:
        filtered = filtered.unionByName(d)
    filtered = filtered.select("*", *stamp)
    kept_ids = kept.select("doc_id", F.lit(True).alias("kept"))
    quality = (
        analyzed.filter(F.col("drop_step").isNull() | (F.col("drop_step") != "normalize"))
        .select("doc_id", *[F.col(s.name) for s in SIGNALS])
        .join(kept_ids, "doc_id", "left")
        .select(
            "doc_id",
            *[s.name for s in SIGNALS],
            F.coalesce("kept", F.lit(False)).alias("kept"),
            F.lit(run_id).alias("clean_run_id"),
        )
    )
    index = dedup_index_rows(reached, exact, sigs, near, stamp)
    return kept, filtered, quality, index, skew, cached


def dedup_index_rows(reached: DataFrame, exact, sigs, near, stamp: list) -> DataFrame:
    """silver.dedup_index rows: every document that reached the dedup steps, with how they decided it."""
    rows = reached.select("doc_id", "order_key", "text_hash")
    null = F.lit(None).cast("string")
    rows = rows.join(exact, "order_key", "left") if exact is not None else rows.withColumn("exact_of", null)
    if sigs is not None:
        rows = rows.join(sigs.withColumnRenamed("doc_id", "order_key"), "order_key", "left")
        sig = F.when(F.get("sig", 0) != dedup.EMPTY_SIG_VALUE, F.col("sig"))
    else:
        sig = F.lit(None).cast("array<int>")
    if near is not None:
        rows = rows.join(near.select("order_key", "near_of"), "order_key", "left")
    else:
        rows = rows.withColumn("near_of", null)
    component = (
        F.when(F.col("exact_of").isNull(), F.coalesce("near_of", "order_key")) if sigs is not None else null
    )
    return rows.select(
        "doc_id",
        "order_key",
        "text_hash",
        sig.alias("sig"),
        F.when(F.col("exact_of").isNotNull(), F.lit("exact_dedup"))
        .when(F.col("near_of").isNotNull(), F.lit("near_dedup"))
        .alias("step"),
        key_doc_id(F.coalesce("exact_of", "near_of")).alias("survivor_id"),
        component.alias("component"),
        *stamp,
    )
