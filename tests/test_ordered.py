"""jobs.ordered: exact window columns from a range-partitioned sort, against Spark's own windows."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql import Window
from pyspark.sql import functions as F

from jobs.ordered import _offsets, ordered
from jobs.session import session_settings


def _frame(spark, n: int, seed: int):
    """Skewed groups (one holds most rows, one has a single row, one key is null), many tied scores."""
    rng = np.random.default_rng(seed)
    groups = rng.choice(["big", "mid", "small", None], size=n, p=[0.8, 0.15, 0.04, 0.01])
    groups[0] = "solo"
    rows = [
        (None if g is None else str(g), f"d{i:05d}", float(rng.integers(0, 40)) / 4, int(rng.integers(1, 90)))
        for i, g in enumerate(groups)
    ]
    return spark.createDataFrame(rows, "g string, doc_id string, score double, tokens long")


@pytest.mark.parametrize("by", [["g"], []])
def test_ordered_equals_spark_windows(spark, by):
    df = _frame(spark, 3000, seed=1)
    order = [F.desc("score"), F.asc("doc_id")]
    w = Window.partitionBy(*by).orderBy(*order)
    want = (
        df.withColumn("rn", F.row_number().over(w))
        .withColumn("rk", F.rank().over(Window.partitionBy(*by).orderBy(F.desc("score"))))
        .withColumn("cum", F.sum("tokens").over(w.rowsBetween(Window.unboundedPreceding, Window.currentRow)))
        .withColumn("n", F.count("*").over(Window.partitionBy(*by)))
        .toPandas()
        .sort_values("doc_id")
        .reset_index(drop=True)
    )
    # 8 range partitions (not coalesced) and 7-row Arrow batches: every run of a group crosses batches and
    # partitions.
    with session_settings(
        spark,
        {
            "spark.sql.shuffle.partitions": "8",
            "spark.sql.adaptive.coalescePartitions.enabled": "false",
            "spark.sql.execution.arrow.maxRecordsPerBatch": "7",
        },
    ):
        hold: list = []
        res = ordered(
            df,
            by,
            order,
            row_number="rn",
            rank="rk",
            ties=["score"],
            sums={"cum": "tokens"},
            count="n",
            hold=hold,
        )
        got = res.toPandas().sort_values("doc_id").reset_index(drop=True)
        parts = hold[0].select("_o_pid").distinct().count()
        for h in hold:
            h.unpersist()
        # Read again without the cache: the phase-1 rows come from the same partitions, so the same numbers.
        again = res.toPandas().sort_values("doc_id").reset_index(drop=True)
    assert parts == 8  # the big group was spread over every partition
    assert list(got.columns) == ["g", "doc_id", "score", "tokens", "rn", "rk", "cum", "n"]
    for c in ("rn", "rk", "cum", "n"):
        assert got[c].tolist() == want[c].tolist() == again[c].tolist(), c


def test_ordered_on_an_empty_frame(spark):
    df = spark.createDataFrame([], "g string, doc_id string, tokens long")
    assert ordered(df, ["g"], [F.asc("doc_id")], row_number="rn", sums={"c": "tokens"}).count() == 0


def test_offsets_carry_a_group_and_a_tie_across_partitions():
    # Partition 0: group a, ranks 1..3, the last tie group starting at local row 3; partition 1 is all of
    # group a, one tie group that continues partition 0's; partition 2 starts with a (tie 7) then b.
    def row(pid, fg, ft, lg, lt, rn, rk, s):
        return {
            "pid": pid,
            "first_g": (fg,),
            "first_t": (ft,),
            "last_g": (lg,),
            "last_t": (lt,),
            "last_rn": rn,
            "last_rk": rk,
            "last_s": [s],
        }

    rows = [
        row(2, "a", 7.0, "b", 1.0, 4, 2, 40),
        row(0, "a", 9.0, "a", 8.0, 4, 3, 10),
        row(1, "a", 8.0, "a", 8.0, 5, 1, 20),
    ]
    got = _offsets(rows, ["g"], ["score"], ["tokens"])
    assert got == [
        (0, "a", 0, 0, False, 0),
        (1, "a", 4, 10, True, 3),  # 4 rows and 10 tokens of a before it; its first tie group has rank 3
        (2, "a", 9, 30, False, 0),  # 9 rows of a before; score 7.0 starts a new tie group
    ]
