"""The clean stage's steps as DataFrame transforms: analysis (steps 1–3, ``udfs.analyze.Analyze`` on the
executors) and ``clean_documents``, which chains it with the dedup steps (``jobs.methods.dedup``) and
decontamination (``jobs.methods.decontam``) over one batch of bronze rows. The stage (``jobs.clean``) reads
the tables, gates and publishes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructType

from jobs.methods import dedup
from jobs.methods import pii as pii_step
from jobs.methods.decontam import contamination
from schemas.clean import ANALYSIS_FIELDS
from schemas.signals import SIGNALS
from udfs.analyze import Analyze
from udfs.quality_rules import LINE_RULES


def analyze(
    allowed_langs: list[str],
    min_lang_score: float,
    rules: list[tuple[str, dict]],
    unknown_lang: str = "drop",
    chat_rules: list[tuple[str, dict]] | tuple = (),
) -> Callable[[DataFrame], DataFrame]:
    """Steps 1–3 on executors: normalized text, language, quality signals and the first failing check.

    ``udfs.analyze.Analyze(allowed_langs, min_lang_score, rules, unknown_lang, chat_rules)`` (its docstring
    says what each argument does) runs on each Arrow batch and adds ``schemas.clean.ANALYSIS_FIELDS`` to each
    row (and normalizes a chat record's ``messages``).
    """
    step = Analyze(allowed_langs, min_lang_score, rules, unknown_lang, chat_rules)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            yield step(pdf)

    def transform(df: DataFrame) -> DataFrame:
        schema = StructType([*df.schema.fields, *ANALYSIS_FIELDS])
        return df.mapInPandas(run, schema)

    return transform


def rules_text(
    allowed_langs: list[str],
    min_lang_score: float,
    rules: list[tuple[str, dict]],
    unknown_lang: str = "drop",
    chat_rules: list[tuple[str, dict]] | tuple = (),
):
    """A column function from a bronze text and format to the text steps 1–3 leave (``norm_text``), or None
    when the rules remove no lines (normalizing is then enough): what incremental near dedup verifies
    earlier documents on."""
    if not any(name in LINE_RULES for name, _ in [*rules, *chat_rules]):
        return None
    step = Analyze(allowed_langs, min_lang_score, rules, unknown_lang, chat_rules)

    @F.pandas_udf(StringType())
    def text_of(texts: pd.Series, fmts: pd.Series) -> pd.Series:
        return pd.Series(
            [
                step.row(t, f)["norm_text"] if isinstance(t, str) else ""
                for t, f in zip(texts, fmts, strict=True)
            ],
            dtype=object,
        )

    return text_of


@dataclass(frozen=True)
class Steps:
    """What ``clean_documents`` runs, as plain transforms and values (``jobs.clean.steps`` builds them from
    the ``clean`` settings).

    Attributes:
        analyze: steps 1–3 (``analyze``).
        exact_dedup: whether step 4 runs.
        signatures: step 5's ``dedup.minhash_signatures``; None turns near dedup off.
        link: step 5's ``dedup.link_near``; set together with ``signatures``.
        decontam_ngram: step 6's n-gram length; None turns decontamination off.
        decontam_drop: drop contaminated documents (else flag them in silver's ``contamination``).
        blocklist: the first step, ``jobs.methods.blocklist.mark``; None turns it off.
        pii: the last step, ``jobs.methods.pii.redact`` over ``norm_text``; None turns it off.
    """

    analyze: Callable[[DataFrame], DataFrame]
    exact_dedup: bool = True
    signatures: Callable[[DataFrame], DataFrame] | None = None
    link: Callable[..., tuple[DataFrame, DataFrame]] | None = None
    decontam_ngram: int | None = None
    decontam_drop: bool = True
    blocklist: Callable[[DataFrame], DataFrame] | None = None
    pii: Callable[[DataFrame], DataFrame] | None = None


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
    steps: Steps,
    run_id: str,
    cleaned_at: datetime,
    earlier: dedup.Earlier | None = None,
):
    """The steps (blocklist, 1–6, PII) on a batch of bronze rows, as DataFrames.

    Args:
        docs: the batch (bronze columns doc_id, url, domain, source, text, n_bytes, ingested_at, format,
            messages; a chat record's messages come out normalized and PII-redacted like its text).
        benchmarks: ref.benchmarks for decontamination.
        steps: which steps run, with what.
        run_id, cleaned_at: the batch's run and time, written in every row.
        earlier: earlier batches to de-duplicate against (None: the batch is all of bronze).

    Returns:
        ``(kept, filtered, quality, dedup_index, skew_report, cached DataFrames to unpersist, pii)``;
        ``pii`` (scores.pii rows) is None with the PII step off.
    """
    cached = []  # read by several steps; the caller unpersists them after publishing
    blocked = None
    if steps.blocklist is not None:
        # Before any other work: a blocked page is not worth normalizing.
        marked = docs.transform(steps.blocklist).persist()
        cached.append(marked)
        reason, value, detail = F.col("block_reason"), F.col("block_value"), F.col("block_detail")
        blocked = _filtered_rows(marked.filter(reason.isNotNull()), "blocklist", reason, value, detail=detail)
        docs = marked.filter(reason.isNull()).drop("block_reason", "block_value", "block_detail")
    analyzed = docs.transform(steps.analyze).withColumn("text_hash", dedup.text_hash())
    analyzed = analyzed.withColumn("order_key", dedup.order_key()).persist()
    cached.append(analyzed)

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
    if blocked is not None:
        dropped.insert(0, blocked)
    alive = reached = analyzed.filter(F.col("drop_step").isNull())
    exact = sigs = near = None
    if steps.exact_dedup:
        exact = dedup.exact_step(alive, earlier).persist()
        cached.append(exact)
        dropped.append(
            _filtered_rows(
                alive.join(exact, "order_key"),
                "exact_dedup",
                F.lit("exact_duplicate"),
                F.lit(1.0),
                dedup.key_doc_id(F.col("exact_of")),
            )
        )
        alive = alive.join(exact.select("order_key"), "order_key", "left_anti")
    skew = None
    if steps.signatures is not None:
        sigs, near, skew = dedup.near_step(alive, steps.signatures, steps.link, earlier)
        cached.append(sigs)
        near = near.persist()
        cached.append(near)
        dropped.append(
            _filtered_rows(
                alive.join(near, "order_key"),
                "near_dedup",
                F.lit("near_duplicate"),
                F.col("jaccard"),
                dedup.key_doc_id(F.col("near_of")),
            )
        )
        alive = alive.join(near.select("order_key"), "order_key", "left_anti")
    flagged = None
    if steps.decontam_ngram is not None:
        hits = (
            alive.select("doc_id", F.col("norm_text").alias("text"))
            .transform(contamination(benchmarks, steps.decontam_ngram))
            .persist()
        )
        cached.append(hits)
        if steps.decontam_drop:
            dropped.append(
                _filtered_rows(
                    alive.join(hits, "doc_id"),
                    "decontamination",
                    F.concat(F.lit("contamination:"), F.col("benchmark")),
                    F.col("hits"),
                    detail=F.concat(
                        F.lit("shares a "),
                        F.lit(str(steps.decontam_ngram)),
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
    pii = None
    if steps.pii is not None:
        redacted = alive.transform(steps.pii).persist()  # norm_text redacted; read three times below
        cached.append(redacted)
        dropped.append(
            _filtered_rows(
                pii_step.drops(redacted),
                "pii",
                F.col("pii_drop_reason"),
                F.col("pii_drop_value"),
                detail=F.col("pii_drop_detail"),
            )
        )
        pii = redacted.transform(pii_step.score_rows(run_id))
        alive = pii_step.survivors(redacted)

    stamp = [F.lit(run_id).alias("clean_run_id"), F.lit(cleaned_at).cast("timestamp").alias("cleaned_at")]
    kept = alive.select(
        "doc_id",
        "url",
        "domain",
        "source",
        "lang",
        "lang_score",
        F.col("norm_text").alias("text"),
        "format",
        "messages",
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
    index = dedup.dedup_index_rows(reached, exact, sigs, near, stamp)
    return kept, filtered, quality, index, skew, cached, pii
