"""RDS+ (Ivison et al. 2025): round-robin over tasks, each taking its best unchosen document by max cosine.

The similarity itself (weighted-mean-pooled hidden states, cosine to each target example, max per task)
is ``scores.similarity`` method ``rds``, written by score_similarity; this module orders documents from it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ordered import ordered


def round_robin(
    lists: Sequence[np.ndarray], n_docs: int, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RDS+'s round-robin: tasks in order, each taking its best document not yet chosen, round after round.

    Sequential by nature (a task skips what earlier picks took), so it runs on the driver over integer
    arrays. Each task keeps a pointer into its list; skipping chosen documents scans ahead in growing
    numpy slices. Time O(Σ_t len(lists[t])) array steps in the worst case, with one Python step per
    pick; memory: the lists (T · N ints) and one flag per document.

    Args:
        lists: per task (in task order), document indices 0..n_docs-1 in preference order, best first.
        n_docs: the number of distinct document indices.
        limit: stop after this many picks (None: until every listed document is picked).

    Returns:
        ``(docs, tasks, rounds)``: pick k (0-based) took document ``docs[k]`` for task ``tasks[k]`` in
        round ``rounds[k]`` (1-based).
    """
    lists = [np.asarray(lst, dtype=np.int64) for lst in lists]
    chosen = np.zeros(n_docs, dtype=bool)
    listed = np.zeros(n_docs, dtype=bool)
    for lst in lists:
        listed[lst] = True
    total = int(listed.sum()) if limit is None else min(int(limit), int(listed.sum()))
    out_doc = np.empty(total, dtype=np.int64)
    out_task = np.empty(total, dtype=np.int32)
    out_round = np.empty(total, dtype=np.int32)
    ptr = [0] * len(lists)
    k, rnd = 0, 0
    while k < total:
        rnd += 1
        for t, lst in enumerate(lists):
            if k >= total:
                break
            p, n = ptr[t], len(lst)
            if p < n and chosen[lst[p]]:
                step = 16
                while p < n:
                    free = ~chosen[lst[p : p + step]]
                    if free.any():
                        p += int(free.argmax())
                        break
                    p += step
                    step = min(step * 2, 1 << 16)
            if p >= n:
                ptr[t] = n
                continue
            d = lst[p]
            chosen[d] = True
            ptr[t] = p + 1
            out_doc[k], out_task[k], out_round[k] = d, t, rnd
            k += 1
    return out_doc, out_task, out_round


RDS_ORDER_SCHEMA = "doc_id string, pick long, benchmark string, round int"
# Picks made by the exact round robin on the driver: it holds each task's first RDS_EXACT_PICKS documents
# (tasks × this many doc_ids, whatever the pool's size). Later documents follow in position-interleave order.
RDS_EXACT_PICKS = 100_000


def rds_order(
    similarity: DataFrame,
    limit: int | None = None,
    exact_picks: int = RDS_EXACT_PICKS,
    hold: list[DataFrame] | None = None,
) -> DataFrame:
    """RDS+ order of the documents: round-robin over tasks (benchmarks by name), each task's documents by
    max cosine (desc, ties by doc_id).

    The round robin is sequential (a task skips what earlier picks took), so its first ``exact_picks``
    picks run on the driver (``round_robin``) over each task's first ``exact_picks`` documents only: after
    k picks in all no task has passed more than k entries of its list, so those lists decide the first k
    picks exactly. The driver thus holds at most tasks × ``exact_picks`` doc_ids, never the pool; the
    per-task positions come from ``jobs.ordered`` (no window per task).

    Past ``exact_picks`` (only in pools larger than that) the order is the position interleave, computed
    in Spark: round r takes, task by task, each task's r-th document unless an earlier pick placed it, i.e.
    documents by min over tasks of (position − 1) · tasks + task index. It equals the round robin wherever
    the tasks' lists do not compete for the same documents; where they do, a task whose document was taken
    does not go deeper in that round. ``round`` is then the interleave round (the position).

    Args:
        similarity: ``[doc_id, benchmark, max_cosine]``, the ``rds`` rows.
        limit: stop after this many documents (None: every one).
        exact_picks: picks made by the exact round robin on the driver.
        hold: collects ``jobs.ordered``'s persisted intermediates (unpersist when done with the result).

    Returns:
        ``[doc_id, pick, benchmark, round]``: pick 1 first; the task that took it and the round.
    """
    spark = similarity.sparkSession
    tasks = sorted(r["benchmark"] for r in similarity.select("benchmark").distinct().collect())
    if not tasks:
        return spark.createDataFrame([], RDS_ORDER_SCHEMA)
    task_idx = F.create_map(*[F.lit(x) for i, b in enumerate(tasks) for x in (b, i)])
    pos = ordered(
        similarity.select(task_idx[F.col("benchmark")].alias("task"), "doc_id", "max_cosine"),
        ["task"],
        [F.desc("max_cosine"), F.asc("doc_id")],
        row_number="pos",
        hold=hold,
    ).select("task", "doc_id", "pos")
    n_docs = similarity.select("doc_id").distinct().count()
    total = n_docs if limit is None else min(int(limit), n_docs)
    exact = min(total, int(exact_picks))
    # Only the first `exact` entries of each task's list (tasks × exact rows) come to the driver.
    head = pos.filter(F.col("pos") <= exact).orderBy("task", "pos").toPandas()
    ids, doc = np.unique(head["doc_id"].to_numpy(dtype=object), return_inverse=True)
    task = head["task"].to_numpy(dtype=np.int64)
    bounds = np.searchsorted(task, np.arange(len(tasks) + 1))
    lists = [doc[bounds[t] : bounds[t + 1]] for t in range(len(tasks))]
    picked, by, rounds = round_robin(lists, len(ids), exact)
    first = spark.createDataFrame(
        pd.DataFrame(
            {
                "doc_id": ids[picked],
                "pick": np.arange(1, len(picked) + 1, dtype=np.int64),
                "benchmark": np.asarray(tasks, dtype=object)[by],
                "round": rounds.astype(np.int32),
            }
        ),
        RDS_ORDER_SCHEMA,
    )
    if total <= len(picked):
        return first
    n_tasks = len(tasks)
    slot = (F.col("pos") - 1) * F.lit(n_tasks) + F.col("task")
    rest = (
        pos.join(F.broadcast(first.select("doc_id")), "doc_id", "left_anti")
        .groupBy("doc_id")
        .agg(F.min(slot).alias("slot"))
    )
    tail = ordered(rest, [], [F.asc("slot"), F.asc("doc_id")], row_number="k", hold=hold)
    names = F.array(*[F.lit(b) for b in tasks])
    tail = tail.select(
        "doc_id",
        (F.col("k") + F.lit(len(picked))).alias("pick"),
        names[(F.col("slot") % n_tasks).cast("int")].alias("benchmark"),
        (F.floor(F.col("slot") / n_tasks) + 1).cast("int").alias("round"),
    ).filter(F.col("pick") <= F.lit(total))
    return first.unionByName(tail)
