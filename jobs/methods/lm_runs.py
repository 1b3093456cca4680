"""Small-LM training runs as Spark tasks: Meta-rater's proxy models and the evaluate stage's arms.

A *run* is one model: a set of documents (a proposal's selection, a strategy's selection at one seed),
cut to a token budget and trained on in one task (``udfs.lm_train``). The steps:

  stream_tokens   executors count each document's tokens under the shared tokenizer;
  budget_cut      per run, documents in a seeded order until the budget is reached (running sums from
                  ``jobs.ordered``: exact, and no run's documents go through one task to be counted);
  train_runs      the cut documents' texts go to one task per run (partitioned by run number), which
                  trains the model and returns its rows.

Nothing goes through the driver but the per-run token totals (one row per run). A task holds one run's
documents: the budget's worth of text (plus the held-out texts it is measured on), whatever the pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from jobs.ordered import ordered
from udfs.lm_train import LMSpec

TRAIN, HELDOUT = "train", "heldout"

# What one task gets per run: its training texts in stream order, its held-out texts by doc_id.
RunTask = Callable[[int, list[str], list[str]], list[tuple]]


def stream_tokens(spec: LMSpec) -> Callable[[DataFrame], DataFrame]:
    """``[doc_id, text]`` → ``[doc_id, lm_tokens]``: tokens each document adds to a training stream (its
    separator included), counted on executors."""
    schema = StructType(
        [StructField("doc_id", StringType(), False), StructField("lm_tokens", LongType(), False)]
    )

    def count(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from udfs.lm_train import stream_lengths

        for pdf in batches:
            yield pd.DataFrame(
                {"doc_id": pdf["doc_id"], "lm_tokens": stream_lengths(spec, pdf["text"].tolist())}
            )

    def transform(docs: DataFrame) -> DataFrame:
        return docs.select("doc_id", "text").mapInPandas(count, schema)

    return transform


def budget_cut(n_tokens: int, hold: list[DataFrame] | None = None) -> Callable[[DataFrame], DataFrame]:
    """``[run, doc_id, lm_tokens, order]`` → the rows whose tokens start within the run's first
    ``n_tokens`` (order asc, ties by doc_id): the documents a model with that budget trains on, the last
    one possibly cut. Adds ``start``, the tokens of the run before the document."""

    def transform(rows: DataFrame) -> DataFrame:
        cum = ordered(rows, ["run"], [F.asc("order"), F.asc("doc_id")], sums={"_cum": "lm_tokens"}, hold=hold)
        start = F.col("_cum") - F.col("lm_tokens")
        return cum.withColumn("start", start).filter(F.col("start") < F.lit(n_tokens)).drop("_cum")

    return transform


def train_runs(rows: DataFrame, n_runs: int, task: RunTask, schema: StructType, profile=None) -> DataFrame:
    """One task per run: ``task(run, train texts, held-out texts)`` → its rows (``schema``).

    Args:
        rows: ``[run, role, order, doc_id, text]``; run numbers 0..n_runs-1, role ``train`` (texts in
            order asc, ties by doc_id) or ``heldout`` (texts by doc_id).
        n_runs: how many runs (one partition, one task each).
        task: trains and measures one model (runs on an executor; pickled with what it closes over).
        schema: the rows ``task`` returns.
        profile: a stage-level resource profile (GPUs per task), or None.
    """
    keyed = rows.select("run", "role", "order", "doc_id", "text").rdd.map(
        lambda r: (int(r[0]), (r[1], r[2], r[3], r[4]))
    )
    # Run r goes to partition r: exactly one run per task (a hash of the key could put two in one).
    parts = keyed.partitionBy(n_runs, lambda k: k)
    if profile is not None:
        parts = parts.withResources(profile)

    def run_partition(items: Iterator[tuple]) -> Iterator[tuple]:
        runs: dict[int, dict[str, list]] = {}
        for run, (role, order, doc_id, text) in items:
            runs.setdefault(run, {TRAIN: [], HELDOUT: []})[role].append((order, doc_id, text))
        for run in sorted(runs):
            train = [t for _, _, t in sorted(runs[run][TRAIN], key=lambda x: (x[0], x[1]))]
            heldout = [t for _, _, t in sorted(runs[run][HELDOUT], key=lambda x: x[1])]
            yield from task(run, train, heldout)

    return rows.sparkSession.createDataFrame(parts.mapPartitions(run_partition), schema)
