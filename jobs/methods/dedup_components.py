"""Connected components of the verified near-duplicate pairs (near dedup's step 4), with DataFrame rounds.

A near-duplicate cluster is a connected component of the verified pairs, so A~B and B~C put A, B and C in
one cluster even when A and C differ more; the smallest id of a cluster survives (``jobs.methods.dedup``).
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

logger = logging.getLogger(__name__)

_WHOLE = (Window.unboundedPreceding, Window.unboundedFollowing)


def _round(edges: DataFrame) -> DataFrame:
    """One large-star then small-star round: ``[a, b]`` with ``a < b`` → ``[a, b, changed]``.

    Large-star links every neighbour larger than a node to the smallest of the node's closed
    neighbourhood; small-star links a node and all its smaller neighbours to the smallest of them. Each
    step is one window (one shuffle): sorted by neighbour, the first row holds the minimum and ``lag``
    drops repeated edges, so rows may repeat across rounds but never multiply.

    ``changed`` marks the rows of a node where a step rewired edges: large-star at a node with both smaller
    and larger neighbours, small-star at a node with two or more smaller neighbours. Either happens exactly
    when that step changes the edge set (a step that maps the set onto itself must leave every edge where
    it was), so a round without any is the "no step changes the graph" stop of Kiveris et al., decided
    without comparing edge sets.
    """
    nbrs = edges.select(F.col("a").alias("u"), F.col("b").alias("v")).unionByName(
        edges.select(F.col("b").alias("u"), F.col("a").alias("v"))
    )
    by_u = Window.partitionBy("u").orderBy("v")
    large = (
        nbrs.select("u", "v", F.first("v").over(by_u).alias("lo"), F.lag("v").over(by_u).alias("prev"))
        .filter((F.col("v") > F.col("u")) & ~F.col("prev").eqNullSafe(F.col("v")))
        .select(
            F.least("u", "lo").alias("a"), F.col("v").alias("b"), (F.col("lo") < F.col("u")).alias("changed")
        )
    )
    by_b = Window.partitionBy("b").orderBy("a")
    small = large.select(
        "a",
        "b",
        F.first("a").over(by_b).alias("m"),
        F.lag("a").over(by_b).alias("prev"),
        (
            F.max("changed").over(by_b.rowsBetween(*_WHOLE))
            | (F.first("a").over(by_b) < F.max("a").over(by_b.rowsBetween(*_WHOLE)))
        ).alias("changed"),
    ).filter(~F.col("prev").eqNullSafe(F.col("a")))
    # Each distinct smaller neighbour yields one edge: the minimum's row links b, the others link themselves.
    return small.select(
        "m",
        F.when(F.col("a") == F.col("m"), F.col("b")).otherwise(F.col("a")).alias("b"),
        "changed",
    ).withColumnRenamed("m", "a")


def connected_components(edges: DataFrame, max_iterations: int = 50) -> DataFrame:
    """``edges [a, b]`` (undirected) → ``[doc_id, component]`` with ``component`` the smallest doc_id in it.

    Alternating large-star / small-star (Kiveris et al., "Connected Components in MapReduce and Beyond",
    SoCC 2014): each round rewires edges towards smaller ids while keeping connectivity, until the graph is
    a forest of stars centred on each component's minimum. That takes O(log² n) rounds in the worst case
    and a handful in practice, where min-label propagation needs as many rounds as the longest shortest
    path. Every round is materialized with ``localCheckpoint`` so the plan stays one round deep, and the
    loop stops after the first round that leaves the edges unchanged.

    Args:
        edges: undirected edges; duplicates, either orientation and self-loops are fine, and an edge with a
            null end is ignored.
        max_iterations: rounds allowed before giving up.

    Returns:
        One row per node that appears in an edge (a node with only a self-loop is its own component).

    Raises:
        RuntimeError: the edges still changed after ``max_iterations`` rounds.
    """
    current = edges.select(F.least("a", "b").alias("a"), F.greatest("a", "b").alias("b")).filter(
        F.col("a") < F.col("b")
    )
    for rounds in range(1, max_iterations + 1):
        current = _round(current).localCheckpoint()
        # A scan of the checkpointed rows: no shuffle, no recomputation.
        if current.filter("changed").isEmpty():
            logger.info("connected_components: converged after %d rounds", rounds)
            break
        current = current.drop("changed")
    else:
        raise RuntimeError(f"connected_components did not converge in {max_iterations} rounds")

    # At the fixed point every edge is (component minimum, member). A node's own id is never below its
    # component's minimum, so min() also folds in self-loop nodes and repeated edges.
    self_loops = edges.filter(F.col("a") == F.col("b")).select(
        F.col("a").alias("doc_id"), F.col("a").alias("c")
    )
    return (
        current.select(F.col("b").alias("doc_id"), F.col("a").alias("c"))
        .unionByName(current.select(F.col("a").alias("doc_id"), F.col("a").alias("c")))
        .unionByName(self_loops)
        .groupBy("doc_id")
        .agg(F.min("c").alias("component"))
    )
