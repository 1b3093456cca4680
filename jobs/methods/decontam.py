"""Benchmark decontamination (the clean stage's step 6) as BETR does it: word n-grams shared with an example
of ref.benchmarks are cut out of the document, with ``window`` characters around each, and the document
keeps what is left.

1. Targets. Each ref.benchmarks example is a target; its ``support`` passage (a reading-comprehension
   passage, a worked explanation) only when ``support`` is on: passages are often quoted legitimately
   (an encyclopedia article, a famous line), and cutting every page that quotes them loses good text.
2. N-gram length per benchmark: the 5th-percentile example length in words within [``min_ngram``,
   ``max_ngram``] (GPT-3's rule, 8–13; ``udfs.decontam.ngram_size``).
3. Matches. The n-grams of every example are collected on the driver into one dictionary of strings
   (``udfs.decontam.BenchmarkMatcher``), broadcast, and matched against each document on the executors:
   exact matches, no hash collisions, one row per match.
4. Common n-grams. An n-gram found in more than ``max_doc_freq`` documents of the pool (the documents this
   step sees: a full clean's whole pool, an incremental batch's new documents) is ignored: boilerplate
   and stock phrases are not contamination. The frequency is a ``groupBy`` over the matches, on the
   executors; only the match rows move, never the texts.
5. Verdicts (``udfs.decontam.Excise``), one per matched document, on the executors: ``excise`` cuts each
   match ± ``window`` characters (overlapping cuts merge into one span) and keeps the pieces; more than
   ``max_splits`` spans, or nothing left, drops the document. ``drop`` drops every matched document,
   ``flag`` keeps it and marks it.

What bounds the dictionary is ref.benchmarks, never the pool: one entry per distinct n-gram of the
examples, at most (words - n + 1) per example, so thousands of examples give some hundreds of thousands of
entries. Every Python worker holds a copy (some 200 bytes an entry), so past ``MAX_NGRAMS`` distinct
n-grams the stage stops with a one-line usage error instead of exhausting memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import (
    ArrayType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from jobs.runtime import UsageError
from udfs.decontam import BenchmarkMatcher, Excise, ngram_size, word_spans

# About 400 MB per copy of the dictionary (driver and every Python worker) at the bound.
MAX_NGRAMS = 2_000_000

MATCHES_SCHEMA = StructType(
    [
        StructField("doc_id", StringType()),
        StructField("gram", StringType()),
        StructField("start", IntegerType()),
        StructField("end", IntegerType()),
        StructField("benchmark", StringType()),
        StructField("example_id", StringType()),
    ]
)
SPAN = StructType(
    [
        StructField("start", IntegerType()),
        StructField("end", IntegerType()),
        StructField("benchmark", StringType()),
        StructField("example_id", StringType()),
        StructField("matches", IntegerType()),
        StructField("text", StringType()),
    ]
)
VERDICTS_SCHEMA = StructType(
    [
        StructField("doc_id", StringType()),
        StructField("verdict", StringType()),
        StructField("text", StringType()),
        StructField("benchmark", StringType()),
        StructField("example_id", StringType()),
        StructField("n_matches", LongType()),
        StructField("spans", ArrayType(SPAN)),
    ]
)


@dataclass(frozen=True)
class Settings:
    """How decontamination runs (``jobs.clean.steps`` fills it from ``clean.decontamination``).

    Attributes:
        action: ``excise`` (BETR), ``drop`` or ``flag``.
        min_ngram, max_ngram: the bounds of each benchmark's n-gram length.
        window: characters cut on each side of a match.
        max_splits: more excised spans than this drop the document.
        max_doc_freq: n-grams in more documents of the pool than this are ignored (None: none are).
        support: a benchmark example's support passage is a target too.
    """

    action: str = "excise"
    min_ngram: int = 8
    max_ngram: int = 13
    window: int = 200
    max_splits: int = 10
    max_doc_freq: int | None = 10_000
    support: bool = False


def target_text(text: str, support: str | None, with_support: bool) -> str:
    """An example's target text: ref.benchmarks' ``text`` less its ``support`` passage unless asked for.

    load_refs joins the fields one per line, the support among them, so the passage is cut out where it
    stands (its last occurrence: it comes after the question it supports).
    """
    if with_support or not support:
        return text
    at = text.rfind(support)
    return text if at < 0 else text[:at] + "\n" + text[at + len(support) :]


def benchmark_matcher(
    benchmarks: DataFrame, settings: Settings, max_ngrams: int = MAX_NGRAMS
) -> tuple[BenchmarkMatcher, dict[str, int]]:
    """The n-gram dictionary of ref.benchmarks, built on the driver, and each benchmark's n-gram length.

    Args:
        benchmarks: ref.benchmarks rows (a few thousand examples; see the module docstring). A table
            written before the ``support`` column counts as one without support passages.
        settings: the n-gram bounds and whether support passages are targets.
        max_ngrams: the most distinct n-grams collected.

    Raises:
        UsageError: the examples hold more than ``max_ngrams`` distinct n-grams.
    """
    support = F.col("support") if "support" in benchmarks.columns else F.lit(None).cast("string")
    rows = benchmarks.select("benchmark", "example_id", "text", support.alias("support")).collect()
    targets = [
        (r["benchmark"], r["example_id"], target_text(r["text"], r["support"], settings.support))
        for r in rows
    ]
    words: dict[str, list[int]] = {}
    for bench, _, text in targets:
        words.setdefault(bench, []).append(len(word_spans(text)))
    sizes = {b: ngram_size(w, settings.min_ngram, settings.max_ngram) for b, w in words.items()}
    matcher = BenchmarkMatcher()
    for bench, example_id, text in targets:
        matcher.add(bench, example_id, text, sizes[bench])
        if len(matcher.index) > max_ngrams:
            raise UsageError(
                f"decontamination: ref.benchmarks holds more than {max_ngrams:,} distinct n-grams, the most "
                "collected on the driver and broadcast to every task; load fewer benchmarks "
                "(refs.benchmarks) or set clean.decontamination.enabled: false"
            )
    return matcher, sizes


@dataclass
class Decontaminated:
    """What decontaminating a set of documents gives.

    Attributes:
        verdicts: one row per document with a match that counts (``VERDICTS_SCHEMA``): its verdict, its new
            text (``excised``), the first match's benchmark and example, and the spans cut.
        excisions: one row per span cut from an ``excised`` document: ``doc_id, span, start, end,
            benchmark, example_id, matches, text``.
        common: the n-grams ignored as too common, ``[gram, docs]`` (ref.benchmarks-bounded).
        sizes: the n-gram length of each benchmark.
        cached: DataFrames persisted here, for the caller to unpersist.
    """

    verdicts: DataFrame
    excisions: DataFrame
    common: DataFrame
    sizes: dict[str, int]
    cached: list[DataFrame] = field(default_factory=list)


def decontaminate(benchmarks: DataFrame, settings: Settings) -> Callable[[DataFrame], Decontaminated]:
    """Step 6 on documents ``[doc_id, text]``: matches, the pool's common n-grams, verdicts, excisions.

    The returned function gives several DataFrames (``Decontaminated``), so it is called on the documents
    rather than passed to ``DataFrame.transform``.

    Args:
        benchmarks: ref.benchmarks; its n-grams are collected when this is called (``benchmark_matcher``).
        settings: see ``Settings``.

    Raises:
        UsageError: past ``MAX_NGRAMS`` distinct benchmark n-grams.
    """
    spark = benchmarks.sparkSession
    matcher, sizes = benchmark_matcher(benchmarks, settings)
    shared = spark.sparkContext.broadcast((matcher.index, sorted(matcher.sizes)))
    matches_arrow, verdicts_arrow = to_arrow_schema(MATCHES_SCHEMA), to_arrow_schema(VERDICTS_SCHEMA)
    step = Excise(settings.action, settings.window, settings.max_splits)

    def find(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        local = BenchmarkMatcher(*shared.value)
        for batch in batches:
            found = local.matches(batch.column("doc_id").to_pylist(), batch.column("text").to_pylist())
            yield pa.RecordBatch.from_pydict(found, schema=matches_arrow)

    def judge(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            rows = []
            cols = (batch.column(c).to_pylist() for c in ("doc_id", "text", "hits"))
            for doc_id, text, hits in zip(*cols, strict=True):
                found = [(h["start"], h["end"], h["benchmark"], h["example_id"]) for h in hits]
                rows.append({"doc_id": doc_id, **step.verdict(text, found)})
            yield pa.RecordBatch.from_pylist(rows, schema=verdicts_arrow)

    def transform(docs: DataFrame) -> Decontaminated:
        docs = docs.select("doc_id", "text")
        if not matcher.index:
            empty = spark.createDataFrame([], VERDICTS_SCHEMA)
            return Decontaminated(
                empty, _excisions(empty), spark.createDataFrame([], "gram string, docs long"), sizes
            )
        # Read twice (the pool's frequencies, then the matches that count): persisted, one pass over texts.
        matches = docs.mapInArrow(find, MATCHES_SCHEMA).persist()
        if settings.max_doc_freq is not None:
            freq = matches.select("doc_id", "gram").distinct().groupBy("gram").agg(F.count("*").alias("docs"))
            common = freq.filter(F.col("docs") > settings.max_doc_freq)
            counted = matches.join(common.select("gram"), "gram", "left_anti")
        else:
            common = spark.createDataFrame([], "gram string, docs long")
            counted = matches
        hits = counted.groupBy("doc_id").agg(
            F.collect_list(F.struct("start", "end", "benchmark", "example_id")).alias("hits")
        )
        # Only matched documents meet their texts again: a few rows, which adaptive execution broadcasts.
        verdicts = docs.join(hits, "doc_id").mapInArrow(judge, VERDICTS_SCHEMA).persist()
        return Decontaminated(verdicts, _excisions(verdicts), common, sizes, [matches, verdicts])

    return transform


def _excisions(verdicts: DataFrame) -> DataFrame:
    spans = verdicts.filter(F.col("verdict") == "excised").select(
        "doc_id", F.posexplode("spans").alias("span", "s")
    )
    return spans.select(
        "doc_id",
        (F.col("span") + 1).alias("span"),
        *[F.col(f"s.{c}").alias(c) for c in ("start", "end", "benchmark", "example_id", "matches", "text")],
    )
