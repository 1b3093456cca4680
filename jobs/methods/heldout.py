"""Held-out targets: the benchmark examples that select data, and the evaluation split kept apart from them.

  target_examples  ref.benchmarks rows of ``refs.target_splits``: BETR's targets, RDS+'s queries and the
                   Meta-rater proxy's validation texts all come from here, never from ``refs.eval_split``
  eval_overlap     a check column: the evaluation example whose normalized text a target example also has

Texts are compared by the exact-duplicate key of the clean stage (``jobs.methods.dedup.text_hash``: sha256
of the lowercased, whitespace-collapsed text), across benchmarks: the same question filed under another
benchmark's test split leaks as much as under its own. Benchmark example sets are small (thousands to tens
of thousands of rows), and nothing here reaches the driver.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.methods.dedup import text_hash
from schemas.ref import EVAL_OVERLAP

TARGET_COLUMNS = ("benchmark", "split", "example_id", "text")


def target_examples(benchmarks: DataFrame, target_splits: Sequence[str]) -> DataFrame:
    """The examples that select data: ref.benchmarks rows of the target splits.

    Args:
        benchmarks: ref.benchmarks (``[benchmark, split, example_id, text, …]``).
        target_splits: the splits targets come from (``refs.target_splits``).

    Returns:
        ``[benchmark, split, example_id, text]`` of the target splits.
    """
    return benchmarks.filter(F.col("split").isin(list(target_splits))).select(*TARGET_COLUMNS)


def eval_overlap(
    benchmarks: DataFrame, target_splits: Sequence[str] | None, eval_split: str
) -> Callable[[DataFrame], DataFrame]:
    """Adds ``EVAL_OVERLAP`` to examples: on a row of a target split whose normalized text an example of
    ``eval_split`` in ``benchmarks`` also has, the smallest such example's ``benchmark|split|example_id``;
    null elsewhere (rows of the evaluation split itself and of splits no method uses are not targets).

    Args:
        benchmarks: where the evaluation split's examples are read (ref.benchmarks, or its staged rows).
        target_splits: the target splits (None: every split but the evaluation split).
        eval_split: the held-out split (``refs.eval_split``).

    Returns:
        A transform of ``[…, split, text, …]`` that keeps every row and column and adds ``EVAL_OVERLAP``.
    """
    key = F.concat_ws("|", "benchmark", "split", "example_id")
    evals = (
        benchmarks.filter(F.col("split") == eval_split)
        .select(text_hash("text").alias("_text_hash"), key.alias("_eval_key"))
        .groupBy("_text_hash")
        .agg(F.min("_eval_key").alias("_eval_key"))
    )
    is_target = F.col("split") != F.lit(eval_split)
    if target_splits is not None:
        is_target = is_target & F.col("split").isin(list(target_splits))

    def add(examples: DataFrame) -> DataFrame:
        hashed = examples.withColumn("_text_hash", text_hash("text"))
        joined = hashed.join(evals, "_text_hash", "left")
        return joined.select(*examples.columns, F.when(is_target, F.col("_eval_key")).alias(EVAL_OVERLAP))

    return add
