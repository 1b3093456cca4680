"""Benchmark decontamination (the clean stage's step 6): documents that share a word n-gram with an example
of ref.benchmarks.

The n-grams of every benchmark example are collected on the driver into one dictionary of strings
(``udfs.decontam.BenchmarkMatcher``), broadcast, and matched against each document on the executors: exact
matches, no hash collisions. What bounds that dictionary is ref.benchmarks, never the pool: one entry per
distinct n-gram of the examples, at most (words - n + 1) per example, so thousands of examples give some
hundreds of thousands of entries. Every Python worker holds a copy (some 200 bytes an entry), so past
``MAX_NGRAMS`` distinct n-grams the stage stops with a one-line usage error instead of exhausting memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import LongType, StringType, StructField, StructType

from jobs.runtime import UsageError
from udfs.decontam import BenchmarkMatcher

# About 400 MB per copy of the dictionary (driver and every Python worker) at the bound.
MAX_NGRAMS = 2_000_000

HITS_SCHEMA = StructType(
    [
        StructField("doc_id", StringType()),
        StructField("benchmark", StringType()),
        StructField("example_id", StringType()),
        StructField("hits", LongType()),
    ]
)


def benchmark_matcher(benchmarks: DataFrame, ngram: int, max_ngrams: int = MAX_NGRAMS) -> BenchmarkMatcher:
    """The n-gram dictionary of ``benchmarks [benchmark, example_id, text]``, built on the driver.

    Args:
        benchmarks: ref.benchmarks rows (a few thousand examples; see the module docstring).
        ngram: words per n-gram.
        max_ngrams: the most distinct n-grams collected.

    Raises:
        UsageError: the examples hold more than ``max_ngrams`` distinct n-grams.
    """
    matcher = BenchmarkMatcher(ngram)
    for r in benchmarks.select("benchmark", "example_id", "text").collect():
        matcher.add(r["benchmark"], r["example_id"], r["text"])
        if len(matcher.index) > max_ngrams:
            raise UsageError(
                f"decontamination: ref.benchmarks holds more than {max_ngrams:,} distinct {ngram}-grams, "
                "the most collected on the driver and broadcast to every task; load fewer benchmarks "
                "(refs.benchmarks) or set clean.decontamination.enabled: false"
            )
    return matcher


def contamination(benchmarks: DataFrame, ngram: int) -> Callable[[DataFrame], DataFrame]:
    """Step 6: documents sharing a word n-gram with a benchmark example.

    Returns ``[doc_id, benchmark, example_id, hits]`` for the documents that do (``BenchmarkMatcher.match``).

    Args:
        benchmarks: ref.benchmarks; its n-grams are collected when this is called (``benchmark_matcher``).
        ngram: words per n-gram.

    Raises:
        UsageError: past ``MAX_NGRAMS`` distinct benchmark n-grams.
    """
    spark = benchmarks.sparkSession
    index = benchmark_matcher(benchmarks, ngram).index
    shared = spark.sparkContext.broadcast(index)
    arrow_schema = to_arrow_schema(HITS_SCHEMA)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        matcher = BenchmarkMatcher(ngram, shared.value)
        for batch in batches:
            found = matcher.match(batch.column("doc_id").to_pylist(), batch.column("text").to_pylist())
            yield pa.RecordBatch.from_pydict(found, schema=arrow_schema)

    def transform(docs: DataFrame) -> DataFrame:
        if not index:
            return spark.createDataFrame([], HITS_SCHEMA)
        return docs.select("doc_id", "text").mapInArrow(run, HITS_SCHEMA)

    return transform
