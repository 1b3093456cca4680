"""Connected components of the verified near-duplicate pairs (near dedup's step 4), with DataFrame rounds.

A near-duplicate cluster is a connected component of the verified pairs, so A~B and B~C put A, B and C in
one cluster even when A and C differ more; the smallest id of a cluster survives (``jobs.methods.dedup``).

Also ``materialize``, how near dedup cuts a plan short (the component rounds, the verified edges, the
signatures): on the lake's storage when the caller gives a folder there.
"""

from __future__ import annotations

import logging
import uuid

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

logger = logging.getLogger(__name__)


def materialize(df: DataFrame, checkpoint_dir: str | None, name: str) -> DataFrame:
    """``df`` computed once, as a DataFrame whose plan starts from the computed rows.

    Iterative and many-times-read results need their plan cut: otherwise every round recomputes (and
    re-plans) all the rounds before it. ``localCheckpoint`` cuts it, but keeps the rows as blocks on the
    executors that computed them: an executor lost later takes its blocks with it and the job fails (the
    lineage that could rebuild them is gone). So:

    * with ``checkpoint_dir`` (the clean stage passes ``<warehouse>/_checkpoints/<run id>`` and removes it
      when the stage ends, success or failure), the rows are written as Parquet to a new folder under it and
      read back: files on the lake's storage outlive any executor. A plain Parquet write rather than
      ``DataFrame.checkpoint``: it needs no session-wide ``setCheckpointDir`` (the folder stays an argument,
      two stages in one session cannot redirect each other, and Spark Connect has no ``sparkContext``);
    * without one (unit tests, a notebook on one machine), ``localCheckpoint``: there executors are threads
      of the driver's JVM, so they cannot be lost without the driver.

    Args:
        df: the rows to compute.
        checkpoint_dir: a folder (path or URI Spark can write) for this run's intermediate results, or None.
        name: a short name for the folder, for whoever looks at it.
    """
    if checkpoint_dir is None:
        return df.localCheckpoint(eager=True)
    path = f"{checkpoint_dir.rstrip('/')}/{name}-{uuid.uuid4().hex[:12]}"
    df.write.mode("errorifexists").parquet(path)
    return df.sparkSession.read.schema(df.schema).parquet(path)


def _round(edges: DataFrame) -> DataFrame:
    """One large-star then small-star round: distinct ``[a, b]``, ``a < b`` → distinct ``[a, b, changed]``.

    Large-star links every neighbour larger than a node to the smallest of the node's closed
    neighbourhood; small-star links a node and all its smaller neighbours to the smallest of them.

    Each step is a ``groupBy`` per node (min, max) joined back onto the node's edges, never a window over the
    node: a hub (a template page near thousands of others, or a big cluster's minimum, which the rounds turn
    into the centre of a star) would put all its edges in one window partition, which one task must hold and
    which nothing can split. The aggregation is partial (a hub costs one row per map task before the
    shuffle), and the join back is a plain shuffle join, whose skewed partitions AQE splits over several tasks
    (``spark.sql.adaptive.skewJoin``, on with AQE: the hub's one aggregate row is copied to each). The round
    ends with a ``groupBy`` per edge, so edges never repeat between rounds.

    ``changed`` marks the edges of a node where a step rewired edges: large-star at a node with both smaller
    and larger neighbours, small-star at a node with two or more smaller neighbours. Either happens exactly
    when that step changes the edge set (a step that maps the set onto itself must leave every edge where
    it was), so a round without any is the "no step changes the graph" stop of Kiveris et al., decided
    without comparing edge sets.
    """
    nbrs = edges.select(F.col("a").alias("u"), F.col("b").alias("v")).unionByName(
        edges.select(F.col("b").alias("u"), F.col("a").alias("v"))
    )
    low = nbrs.groupBy("u").agg(F.min("v").alias("lo"))
    large = (
        nbrs.filter(F.col("v") > F.col("u"))
        .join(low, "u")
        .select(
            F.least("u", "lo").alias("a"), F.col("v").alias("b"), (F.col("lo") < F.col("u")).alias("changed")
        )
    )
    # A large-star edge can come from several nodes (twice the same (lo, v)): min and max do not mind, and the
    # repeats meet again in the final groupBy.
    by_b = large.groupBy("b").agg(
        F.min("a").alias("m"), F.max("a").alias("hi"), F.max("changed").alias("was_changed")
    )
    # Each distinct smaller neighbour yields one edge: the minimum links b, the others link themselves.
    small = (
        large.select("a", "b")
        .join(by_b, "b")
        .select(
            F.col("m").alias("a"),
            F.when(F.col("a") == F.col("m"), F.col("b")).otherwise(F.col("a")).alias("b"),
            (F.col("was_changed") | (F.col("m") < F.col("hi"))).alias("changed"),
        )
    )
    return small.groupBy("a", "b").agg(F.max("changed").alias("changed"))


def connected_components(
    edges: DataFrame, max_iterations: int = 50, checkpoint_dir: str | None = None
) -> DataFrame:
    """``edges [a, b]`` (undirected) → ``[doc_id, component]`` with ``component`` the smallest doc_id in it.

    Alternating large-star / small-star (Kiveris et al., "Connected Components in MapReduce and Beyond",
    SoCC 2014): each round rewires edges towards smaller ids while keeping connectivity, until the graph is
    a forest of stars centred on each component's minimum. That takes O(log² n) rounds in the worst case
    and a handful in practice, where min-label propagation needs as many rounds as the longest shortest
    path. Every step is an aggregation per node joined back to its edges, not a window over the node, so a
    hub's edges spread over tasks (see ``_round``). Every round is materialized (``materialize``) so the
    plan stays one round deep, and the loop stops after the first round that leaves the edges unchanged.

    Args:
        edges: undirected edges; duplicates, either orientation and self-loops are fine, and an edge with a
            null end is ignored.
        max_iterations: rounds allowed before giving up.
        checkpoint_dir: where the rounds are materialized (see ``materialize``); None: local checkpoints.

    Returns:
        One row per node that appears in an edge (a node with only a self-loop is its own component).

    Raises:
        RuntimeError: the edges still changed after ``max_iterations`` rounds.
    """
    current = (
        edges.select(F.least("a", "b").alias("a"), F.greatest("a", "b").alias("b"))
        .filter(F.col("a") < F.col("b"))
        .distinct()
    )
    for rounds in range(1, max_iterations + 1):
        current = materialize(_round(current), checkpoint_dir, f"components-{rounds}")
        # A scan of the materialized rows: no shuffle, no recomputation.
        if current.filter("changed").isEmpty():
            logger.info("connected_components: converged after %d rounds", rounds)
            break
        current = current.drop("changed")
    else:
        raise RuntimeError(f"connected_components did not converge in {max_iterations} rounds")

    # At the fixed point every edge is (component minimum, member). A node's own id is never below its
    # component's minimum, so min() also folds in self-loop nodes.
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
