"""Exact ordered window functions that spread over tasks: row number, rank, running sums, per group.

``ROW_NUMBER() OVER (PARTITION BY g ORDER BY o)`` sends every row of a group to one task, and a window with
no PARTITION BY sends the whole table to one task. When the groups are few (strategies, benchmarks,
proposals) or there is no group, that task sorts the pool alone while the others idle. ``ordered`` gives the
same numbers in two phases instead:

  1. a global sort by ``(g, o)``: Spark range-partitions it over the shuffle partitions (sampled bounds, so
     the tasks hold about equal shares whatever the groups), and one pass per partition (``mapInPandas``)
     numbers the rows and sums the columns within each group's run of rows in that partition;
  2. each partition's first and last rows (one small row per partition) come to the driver, which walks the
     partitions in order and works out, for the group a partition starts with, the rows and sums of that
     group in the partitions before it; a broadcast join adds those offsets.

The results are exact: equal to the SQL window over the same order. Driver-side data is two rows per
partition, never the documents. The phase-1 output is read twice and its partition ids must not change
between the reads: it is a DataFrame over the RDD of one execution (``_pinned``: however a later query is
planned, it reuses that shuffle and its range bounds), persisted; pass a ``hold`` list and unpersist what it
collects once the result has been used.

The order must be total (end with a unique key such as doc_id) for row numbers and running sums to be
defined; ``rank`` (SQL ``RANK``: 1 + the rows of the group strictly before the row's tie group) only needs
the tie columns. Running sums are over integer columns (exact in any order).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.classic.dataframe import DataFrame
from pyspark.sql.types import BooleanType, IntegerType, LongType, StructField, StructType

_PID, _SEQ, _RN, _RK = "_o_pid", "_o_seq", "_o_rn", "_o_rk"


def _same(a, b) -> bool:
    """Null-safe equality of two values from a pandas row or a Spark Row (None and NaN are equal)."""
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return False
    return a == b


def _value(x):
    """A pandas cell as a plain Python value (NaN and pandas NA as None)."""
    if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)):
        return None
    return x.item() if isinstance(x, np.generic) else x


def _changed(pdf: pd.DataFrame, cols: Sequence[str], prev: tuple | None) -> np.ndarray:
    """Per row: does any of ``cols`` differ from the row before (``prev`` for the batch's first row)?"""
    out = np.zeros(len(pdf), dtype=bool)
    for c in cols:
        col = pdf[c]
        before = col.shift(1)
        same = (col == before) | (col.isna() & before.isna())
        out |= ~same.to_numpy(dtype=bool)
    first = tuple(_value(pdf[c].iloc[0]) for c in cols)
    out[0] = prev is None or not all(_same(a, b) for a, b in zip(first, prev, strict=True))
    return out


def _local_pass(by: list[str], ties: list[str], sums: list[str]):
    """Phase 1 on one partition: within each run of equal ``by`` values, row numbers, tie-group starts and
    inclusive running sums, continuing across the partition's Arrow batches."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from pyspark import TaskContext

        pid = TaskContext.get().partitionId()
        prev_g: tuple | None = None
        prev_t: tuple | None = None
        n, rank, seq = 0, 0, 0
        acc = dict.fromkeys(sums, 0)
        for pdf in batches:
            m = len(pdf)
            if m == 0:
                continue
            pdf = pdf.reset_index(drop=True)
            new_g = _changed(pdf, by, prev_g) if by else np.r_[prev_g is None, np.zeros(m - 1, dtype=bool)]
            new_t = new_g | (_changed(pdf, ties, prev_t) if ties else np.zeros(m, dtype=bool))
            gid = np.cumsum(new_g)  # 0: the run that continues from the previous batch
            carry = gid == 0
            rn = pd.Series(np.ones(m, dtype=np.int64)).groupby(gid).cumsum().to_numpy()
            rn = rn + np.where(carry, n, 0)
            starts = pd.Series(np.where(new_t, rn, np.nan)).ffill().to_numpy()
            rk = np.where(np.isnan(starts), rank, starts).astype(np.int64)
            out = pdf.assign(**{_PID: np.int32(pid), _SEQ: np.arange(seq, seq + m, dtype=np.int64)})
            out[_RN] = rn
            out[_RK] = rk
            for c in sums:
                s = pdf[c].fillna(0).astype(np.int64).groupby(gid).cumsum().to_numpy()
                s = s + np.where(carry, acc[c], 0)
                out[f"_o_s_{c}"] = s
                acc[c] = int(s[-1])
            prev_g = tuple(_value(pdf[c].iloc[-1]) for c in by) if by else ()
            prev_t = tuple(_value(pdf[c].iloc[-1]) for c in ties) if ties else ()
            n, rank, seq = int(rn[-1]), int(rk[-1]), seq + m
            yield out

    return run


def _offsets(rows: list, by: list[str], ties: list[str], sums: list[str]) -> list[tuple]:
    """Phase 2 on the driver: per partition, the offsets of the group it starts with.

    ``rows``: per non-empty partition (any order) its id, first row's group and tie values, and last row's
    group and tie values, local row number, local rank and local sums.

    Returns:
        ``(pid, *first group values, rows before, *sums before, tie continues, rank of that tie group)``.
    """
    out = []
    carry = None  # (group, n, sums, tie, rank start) at the end of the partitions walked so far
    for r in sorted(rows, key=lambda r: r["pid"]):
        fg, ft = tuple(r["first_g"] or ()), tuple(r["first_t"] or ())
        lg, lt = tuple(r["last_g"] or ()), tuple(r["last_t"] or ())
        cont = carry is not None and all(_same(a, b) for a, b in zip(carry[0], fg, strict=True))
        off_n = carry[1] if cont else 0
        off_s = list(carry[2]) if cont else [0] * len(sums)
        tie_cont = cont and all(_same(a, b) for a, b in zip(carry[3], ft, strict=True))
        tie_rank = carry[4] if tie_cont else 0
        out.append((r["pid"], *fg, off_n, *off_s, tie_cont, tie_rank))
        same_run = all(_same(a, b) for a, b in zip(fg, lg, strict=True))
        last_n, last_rk, last_s = r["last_rn"], r["last_rk"], list(r["last_s"] or ())
        if same_run and cont:
            new_rank = tie_rank if (last_rk == 1 and tie_cont) else off_n + last_rk
            carry = (lg, off_n + last_n, [a + b for a, b in zip(off_s, last_s, strict=True)], lt, new_rank)
        else:
            carry = (lg, last_n, last_s, lt, last_rk)
    return out


def _pinned(df: DataFrame) -> DataFrame:
    """``df`` over one fixed RDD, so every later plan that reads it reuses that RDD's lineage.

    The offsets are only right for the partitions phase 1 produced. Planned again (a cache that a later
    query does not match, a lost cached block), the sort would sample new range bounds and could cut the
    partitions elsewhere. A DataFrame over the RDD of one execution keeps its shuffle and its bounds: lost
    blocks are recomputed from that same lineage, the same rows in the same order.
    """
    spark = df.sparkSession
    jdf = spark._jsparkSession.createDataFrame(df._jdf.rdd(), df._jdf.schema())
    return DataFrame(jdf, spark)


def ordered(
    df: DataFrame,
    by: Sequence[str],
    order: Sequence[Column],
    *,
    row_number: str | None = None,
    rank: str | None = None,
    ties: Sequence[str] = (),
    sums: dict[str, str] | None = None,
    count: str | None = None,
    hold: list[DataFrame] | None = None,
) -> DataFrame:
    """Window columns over ``PARTITION BY by ORDER BY order``, computed without a task per group.

    Args:
        df: the rows.
        by: group columns (empty: one group, the whole frame).
        order: sort expressions within a group (``F.desc("score")``, ``F.asc("doc_id")``, …); total.
        row_number: output name of ROW_NUMBER (1, 2, … per group), a long.
        rank: output name of RANK over ``ties`` (1 + rows of the group before the row's tie group), a long.
        ties: columns whose equal values share a rank (a prefix of the order's columns).
        sums: output name → integer input column: the inclusive running sum per group, a long.
        count: output name of COUNT(*) per group, a long (for few groups: their counts are broadcast).
        hold: collects the persisted intermediate (unpersist it when done with the result).

    Returns:
        ``df``'s columns plus the requested ones (row order unspecified).
    """
    by, ties, sums = list(by), list(ties), dict(sums or {})
    if rank and not ties:
        raise ValueError("ordered: rank needs the tie columns")
    spark = df.sparkSession
    sum_cols = list(dict.fromkeys(sums.values()))
    fields = [
        StructField(_PID, IntegerType(), False),
        StructField(_SEQ, LongType(), False),
        StructField(_RN, LongType(), False),
        StructField(_RK, LongType(), False),
        *[StructField(f"_o_s_{c}", LongType(), False) for c in sum_cols],
    ]
    schema = StructType(df.schema.fields + fields)
    local = df.orderBy(*[F.asc(c) for c in by], *order).mapInPandas(_local_pass(by, ties, sum_cols), schema)
    local = _pinned(local).persist()
    if hold is not None:
        hold.append(local)

    def keys(cols: list[str]) -> Column:
        return F.struct(*[F.col(c) for c in cols]) if cols else F.lit(None)

    last = F.struct(
        keys(by).alias("g"),
        keys(ties).alias("t"),
        F.col(_RN).alias("rn"),
        F.col(_RK).alias("rk"),
        F.array(*[F.col(f"_o_s_{c}") for c in sum_cols]).alias("s")
        if sum_cols
        else F.lit(None).cast("array<long>").alias("s"),
    )
    summary = (
        local.groupBy(_PID)
        .agg(
            F.min_by(F.struct(keys(by).alias("g"), keys(ties).alias("t")), F.col(_SEQ)).alias("first"),
            F.max_by(last, F.col(_SEQ)).alias("last"),
        )
        .collect()
    )
    rows = [
        {
            "pid": r[_PID],
            "first_g": tuple(r["first"]["g"]) if by else (),
            "first_t": tuple(r["first"]["t"]) if ties else (),
            "last_g": tuple(r["last"]["g"]) if by else (),
            "last_t": tuple(r["last"]["t"]) if ties else (),
            "last_rn": r["last"]["rn"],
            "last_rk": r["last"]["rk"],
            "last_s": list(r["last"]["s"] or []),
        }
        for r in summary
    ]
    offs_schema = StructType(
        [
            StructField(_PID, IntegerType(), False),
            *[StructField(f"_o_f_{c}", df.schema[c].dataType, True) for c in by],
            StructField("_o_off_n", LongType(), False),
            *[StructField(f"_o_off_{c}", LongType(), False) for c in sum_cols],
            StructField("_o_tie_cont", BooleanType(), False),
            StructField("_o_tie_rank", LongType(), False),
        ]
    )
    offs = spark.createDataFrame(_offsets(rows, by, ties, sum_cols), offs_schema)
    out = local.join(F.broadcast(offs), _PID, "left")
    first = F.col("_o_off_n").isNotNull()
    for c in by:
        first = first & F.col(c).eqNullSafe(F.col(f"_o_f_{c}"))
    add_n = F.when(first, F.col("_o_off_n")).otherwise(F.lit(0))
    cols = [F.col(c) for c in df.columns]
    if row_number:
        cols.append((F.col(_RN) + add_n).alias(row_number))
    if rank:
        tie_first = first & F.col("_o_tie_cont") & (F.col(_RK) == 1)
        cols.append(F.when(tie_first, F.col("_o_tie_rank")).otherwise(F.col(_RK) + add_n).alias(rank))
    for name, c in sums.items():
        cols.append((F.col(f"_o_s_{c}") + F.when(first, F.col(f"_o_off_{c}")).otherwise(0)).alias(name))
    out = out.select(*cols)
    if count:  # per group, from the persisted rows; one row per group, broadcast back (groups are few)
        n = local.groupBy(*by).agg(F.count("*").alias(count)) if by else local.agg(F.count("*").alias(count))
        if by:
            renamed = n.select(*[F.col(c).alias(f"_o_c_{c}") for c in by], count)
            cond = [F.col(c).eqNullSafe(F.col(f"_o_c_{c}")) for c in by]
            out = out.join(F.broadcast(renamed), cond, "left").drop(*[f"_o_c_{c}" for c in by])
        else:
            out = out.crossJoin(F.broadcast(n))
    return out
