"""Exact and near-duplicate detection as DataFrame transforms (the clean stage's steps 4 and 5).

Near duplicates follow the usual MinHash LSH recipe, with every step a distributed DataFrame operation:

1. ``minhash_signatures``: a MinHash signature per document (pandas UDF, ``udfs.minhash``).
2. ``lsh_candidates``: split each signature into ``bands`` bands of ``rows`` values; documents that agree
   on a whole band land in the same bucket and become candidate pairs. A bucket larger than
   ``max_bucket`` (boilerplate, templated pages) is linked as a star to its smallest member instead of
   all n·(n-1)/2 pairs, and reported.
3. ``verify_pairs``: keep candidates whose estimated Jaccard (share of agreeing signature values) is at
   least ``threshold``; band collisions alone are not evidence.
4. ``connected_components``: near-duplicate clusters are the connected components of the verified pairs
   (so A~B and B~C put A, B and C in one cluster even when A and C differ more); the smallest id of a
   cluster survives.

Ids are compared as strings: the clean stage passes ``order_key`` (ingest time, then doc_id) as the id, so the
earliest-ingested document survives, ties broken by the smallest doc_id.

Incremental batches (``exact_duplicates(old=…)``, ``link_near(…)(…, old=…)``): documents of earlier
batches come as the clean stage persisted them (silver.dedup_index: text hash, MinHash signature,
component), never re-hashed. Only pairs with a new document are formed; a new document that matches an
earlier one joins that document's component and its survivor. Earlier decisions are never rewritten, so a
new document that links two earlier components joins the one with the earliest survivor and does not merge
them (a full clean would).

Nothing here collects edges or documents to the driver, and no step is a cartesian product.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType

from udfs.minhash import minhash_udf

logger = logging.getLogger(__name__)

# A signature's values as Spark stores them (int32 bits of the uint32 MinHash); -1 only for empty text.
EMPTY_SIG_VALUE = -1


def minhash_signatures(num_perm: int, ngram: int, seed: int) -> Callable[[DataFrame], DataFrame]:
    """``[doc_id, text]`` → ``[doc_id, sig]`` with ``sig: array<int>`` of length ``num_perm``.

    MinHash values are ``uint32`` below ``2**31 - 1`` (see ``udfs.minhash``), so storing their int32 bits
    leaves them unchanged and non-negative; text without tokens gets all ``-1`` (``0xFFFFFFFF``). Only
    equality of values is ever used, so the signed reading does not matter.

    Args:
        num_perm: signature length.
        ngram: words per shingle.
        seed: permutation seed; signatures are comparable only under the same seed.
    """
    sig = minhash_udf(num_perm, ngram, seed)

    def transform(docs: DataFrame) -> DataFrame:
        return docs.select("doc_id", sig("text").alias("sig"))

    return transform


def band_keys(bands: int, rows: int) -> Callable[[DataFrame], DataFrame]:
    """``[doc_id, sig]`` → ``[doc_id, band, bucket]``: one row per band of each signature.

    Band ``b`` of a signature is ``sig[b*rows : (b+1)*rows]``; its bucket is the 64-bit xxhash of that
    slice. A signature shorter than ``bands * rows`` fails the query rather than silently using fewer bands.
    """
    need = bands * rows

    def transform(sigs: DataFrame) -> DataFrame:
        checked = F.when(F.size("sig") >= need, F.col("sig")).otherwise(
            F.raise_error(F.lit(f"lsh_candidates: a signature is shorter than bands x rows = {need}"))
        )
        keys = F.array(
            *[
                F.struct(
                    F.lit(b).alias("band"), F.xxhash64(F.slice("_sig", b * rows + 1, rows)).alias("bucket")
                )
                for b in range(bands)
            ]
        )
        return (
            sigs.filter(F.col("sig").isNotNull())
            .select("doc_id", checked.alias("_sig"))
            .select("doc_id", F.explode(keys).alias("k"))
            .select("doc_id", "k.band", "k.bucket")
        )

    return transform


def bucket_pairs(max_bucket: int) -> Callable[[DataFrame], tuple[DataFrame, DataFrame]]:
    """``[doc_id, band, bucket]`` → ``(pairs [a, b], skew_report [band, bucket, size, action])``.

    Buckets of 2..``max_bucket`` documents emit all their pairs; a larger one only ``(minimum, member)``
    (see ``lsh_candidates``).
    """

    def transform(keyed: DataFrame) -> tuple[DataFrame, DataFrame]:
        # Partial aggregation keeps this cheap even for a bucket of millions; singletons drop out here.
        stats = (
            keyed.groupBy("band", "bucket")
            .agg(F.count(F.lit(1)).alias("size"), F.min("doc_id").alias("root"))
            .filter(F.col("size") >= 2)
        )
        members = keyed.join(stats, ["band", "bucket"])

        small = (
            members.filter(F.col("size") <= max_bucket)
            .groupBy("band", "bucket")
            .agg(F.collect_set("doc_id").alias("ids"))
            .select(F.explode("ids").alias("a"), "ids")
            .select("a", F.explode(F.filter("ids", lambda y: y > F.col("a"))).alias("b"))
        )
        star = members.filter((F.col("size") > max_bucket) & (F.col("doc_id") != F.col("root"))).select(
            F.col("root").alias("a"), F.col("doc_id").alias("b")
        )
        pairs = small.unionByName(star).distinct()
        skew_report = stats.filter(F.col("size") > max_bucket).select(
            "band", "bucket", "size", F.lit("star").alias("action")
        )
        return pairs, skew_report

    return transform


def lsh_candidates(
    bands: int, rows: int, max_bucket: int
) -> Callable[[DataFrame], tuple[DataFrame, DataFrame]]:
    """``[doc_id, sig]`` → ``(pairs [a, b], skew_report [band, bucket, size, action])``.

    Band ``b`` of a signature is ``sig[b*rows : (b+1)*rows]``; its bucket is the 64-bit xxhash of that
    slice. Buckets of 2..``max_bucket`` documents emit all their pairs. A larger bucket emits only
    ``(bucket minimum, member)`` for each other member: n - 1 pairs instead of n·(n-1)/2, which still puts
    the whole bucket in one component if the members verify against the minimum. The price is recall
    inside such buckets (two members similar to each other but not to the minimum are not paired by
    this band), which is why each one is reported. Bucket sizes are counted before any ids are gathered,
    so an oversized bucket is never collected into one row.

    Args:
        bands: number of bands.
        rows: signature values per band; ``bands * rows`` must not exceed the signature length (a shorter
            signature fails the query rather than silently using fewer bands).
        max_bucket: the largest bucket whose pairs are all emitted (at least 2).

    Returns:
        A function returning distinct ``pairs`` with ``a < b`` and one ``skew_report`` row per oversized
        bucket with ``action = 'star'``.
    """
    _check_lsh(bands, rows, max_bucket)

    def transform(sigs: DataFrame) -> tuple[DataFrame, DataFrame]:
        return bucket_pairs(max_bucket)(sigs.transform(band_keys(bands, rows)))

    return transform


def _check_lsh(bands: int, rows: int, max_bucket: int) -> None:
    if bands < 1 or rows < 1:
        raise ValueError(f"bands and rows must be positive, got {bands} and {rows}")
    if max_bucket < 2:
        raise ValueError(f"max_bucket must be at least 2, got {max_bucket}")


def verify_pairs(threshold: float) -> Callable[[DataFrame, DataFrame], DataFrame]:
    """``(pairs [a, b], sigs [doc_id, sig])`` → ``[a, b, jaccard]`` for pairs at or above ``threshold``.

    The estimate is the share of positions where the two full signatures agree, computed with SQL
    higher-order functions on the executors (no Python round trip).

    Args:
        threshold: minimum estimated Jaccard similarity, in (0, 1].
    """

    def transform(pairs: DataFrame, sigs: DataFrame) -> DataFrame:
        side_a = sigs.select(F.col("doc_id").alias("a"), F.col("sig").alias("sig_a"))
        side_b = sigs.select(F.col("doc_id").alias("b"), F.col("sig").alias("sig_b"))
        agree = F.filter(F.zip_with("sig_a", "sig_b", lambda x, y: x == y), lambda same: same)
        estimate = (F.size(agree) / F.size("sig_a")).cast("double")
        return (
            pairs.join(side_a, "a")
            .join(side_b, "b")
            .select("a", "b", estimate.alias("jaccard"))
            .filter(F.col("jaccard") >= threshold)
        )

    return transform


def verify_pairs_exact(threshold: float, ngram: int) -> Callable[[DataFrame, DataFrame], DataFrame]:
    """``(pairs [a, b], docs [doc_id, text])`` → ``[a, b, jaccard]`` with the EXACT shingle-set Jaccard.

    The MinHash estimate has a standard error of about sqrt(J(1-J)/num_perm) (0.035 at J = 0.8 with 128
    permutations), so near the threshold it misses and admits pairs by chance. Candidates are few, so their
    texts are compared exactly instead.

    Args:
        threshold: minimum Jaccard similarity, in (0, 1].
        ngram: words per shingle, as for the signatures.
    """

    @F.pandas_udf(DoubleType())
    def exact(text_a: pd.Series, text_b: pd.Series) -> pd.Series:
        from udfs.minhash import jaccard

        return pd.Series([jaccard(x, y, ngram) for x, y in zip(text_a, text_b, strict=True)], dtype="float64")

    def transform(pairs: DataFrame, docs: DataFrame) -> DataFrame:
        side_a = docs.select(F.col("doc_id").alias("a"), F.col("text").alias("text_a"))
        side_b = docs.select(F.col("doc_id").alias("b"), F.col("text").alias("text_b"))
        return (
            pairs.join(side_a, "a")
            .join(side_b, "b")
            .select("a", "b", exact("text_a", "text_b").alias("jaccard"))
            .filter(F.col("jaccard") >= threshold)
        )

    return transform


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


def near_duplicates(
    num_perm: int = 128,
    bands: int = 16,
    rows: int = 8,
    ngram: int = 5,
    threshold: float = 0.8,
    max_bucket: int = 1000,
    seed: int = 42,
    verify: str = "exact",
) -> Callable[[DataFrame], tuple[DataFrame, DataFrame]]:
    """``[doc_id, text]`` → ``(dups [doc_id, survivor_id, jaccard], skew_report)``.

    One ``dups`` row per document that is not its cluster's survivor; the survivor is the cluster's smallest
    doc_id and ``jaccard`` the best verified estimate among the document's own edges. Documents without any
    token are left out (their signatures would all agree); exact dedup is the place for those.

    The transform runs Spark jobs when called: signatures are computed once and checkpointed (the UDF is
    the expensive part and three steps read them), and the component search iterates.

    Args:
        num_perm: MinHash signature length.
        bands: LSH bands.
        rows: signature values per band; ``bands * rows <= num_perm``. Pairs become candidates with
            probability ``1 - (1 - J**rows)**bands``, about 0.95 at J = 0.8 for 16 × 8.
        ngram: words per shingle.
        threshold: minimum estimated Jaccard for an edge.
        max_bucket: LSH buckets above this size are linked as stars (see ``lsh_candidates``).
        seed: MinHash permutation seed.
        verify: ``exact`` compares candidate texts' shingle sets (``verify_pairs_exact``); ``estimate`` uses
            the signatures only (cheaper, noisier near the threshold).
    """
    if bands * rows > num_perm:
        raise ValueError(f"bands x rows = {bands * rows} is more than num_perm = {num_perm}")
    link = link_near(bands, rows, threshold, max_bucket, verify, ngram)

    def transform(docs: DataFrame) -> tuple[DataFrame, DataFrame]:
        sigs = (
            docs.transform(minhash_signatures(num_perm, ngram, seed))
            .filter(F.get("sig", 0) != EMPTY_SIG_VALUE)
            .localCheckpoint()
        )
        return link(sigs, docs)

    return transform


def link_near(
    bands: int,
    rows: int,
    threshold: float,
    max_bucket: int = 1000,
    verify: str = "exact",
    ngram: int = 5,
) -> Callable[..., tuple[DataFrame, DataFrame]]:
    """Near-dedup steps 2–4 on signatures already computed, optionally against earlier batches.

    The returned function takes ``(sigs, texts=None, old=None, old_texts=None)``:

    * ``sigs [doc_id, sig]``: the new documents' signatures (documents without tokens left out);
    * ``texts [doc_id, text]``: their texts (``verify='exact'`` only);
    * ``old [doc_id, sig, component]``: documents of earlier batches that reached near dedup, with the id of
      their cluster's survivor (their own id when alone or the survivor); None for a first batch;
    * ``old_texts``: ``[doc_id] -> [doc_id, text]`` for the earlier documents of candidate pairs
      (``verify='exact'`` with ``old``); only those few texts are looked up.

    and returns ``(dups [doc_id, survivor_id, jaccard], skew_report)`` for the new documents. Candidate pairs
    are new–new and new–earlier only: earlier signatures are banded (not re-hashed) and kept only where a
    new document shares their bucket. For the components each earlier document stands for its cluster's
    survivor, labelled so that it sorts before every new document: a new cluster that touches an earlier
    one keeps the earlier survivor (the earliest one when it touches several, which are not merged), and a
    cluster of new documents only keeps its smallest id.

    Args:
        bands: LSH bands.
        rows: signature values per band.
        threshold: minimum Jaccard for an edge.
        max_bucket: LSH buckets above this size are linked as stars (see ``lsh_candidates``); with ``old``,
            a bucket's size counts the earlier members that share it.
        verify: ``exact`` or ``estimate`` (see ``near_duplicates``).
        ngram: words per shingle (``verify='exact'``).
    """
    if verify not in ("exact", "estimate"):
        raise ValueError(f"verify must be 'exact' or 'estimate', not {verify!r}")
    _check_lsh(bands, rows, max_bucket)

    def transform(
        sigs: DataFrame,
        texts: DataFrame | None = None,
        old: DataFrame | None = None,
        old_texts: Callable[[DataFrame], DataFrame] | None = None,
    ) -> tuple[DataFrame, DataFrame]:
        if old is None:
            return _link(sigs, texts)
        # Ids tagged by age: an earlier id sorts before every new one, so a pair (a < b) has a new
        # document exactly when b is new, and an oversized bucket's star root is an earlier document.
        new_sigs = sigs.select(_tag(_NEW, "doc_id"), "sig")
        old_sigs = old.filter(F.col("sig").isNotNull()).select(_tag(_EARLIER, "doc_id"), "sig")
        keyed = new_sigs.transform(band_keys(bands, rows))
        shared = keyed.select("band", "bucket").distinct()
        keyed = keyed.unionByName(
            old_sigs.transform(band_keys(bands, rows)).join(shared, ["band", "bucket"], "left_semi")
        )
        pairs, skew_report = bucket_pairs(max_bucket)(keyed)
        pairs = pairs.filter(F.col("b").startswith(_NEW)).persist()
        if verify == "exact":
            asked = pairs.filter(F.col("a").startswith(_EARLIER)).select(_untag("a", "doc_id")).distinct()
            docs = texts.select(_tag(_NEW, "doc_id"), "text").unionByName(
                old_texts(asked).select(_tag(_EARLIER, "doc_id"), "text")
            )
            edges = verify_pairs_exact(threshold, ngram)(pairs, docs)
        else:
            edges = verify_pairs(threshold)(pairs, new_sigs.unionByName(old_sigs))
        edges = edges.localCheckpoint()
        pairs.unpersist()
        # For the components an earlier document stands for its cluster's survivor, tagged as earlier.
        comp = old.select(_tag(_EARLIER, "doc_id"), F.concat(F.lit(_EARLIER), "component").alias("label"))
        graph = edges.join(comp.withColumnRenamed("doc_id", "a"), "a", "left").select(
            F.coalesce("label", "a").alias("a"), "b"
        )
        components = connected_components(graph).filter(F.col("doc_id").startswith(_NEW))
        dups = (
            components.filter(F.col("doc_id") != F.col("component"))
            .join(_best(edges.filter(F.col("a").startswith(_NEW)), edges.select("b", "jaccard")), "doc_id")
            .select(_untag("doc_id", "doc_id"), _untag("component", "survivor_id"), "jaccard")
        )
        return dups, skew_report

    def _link(sigs: DataFrame, texts: DataFrame | None) -> tuple[DataFrame, DataFrame]:
        pairs, skew_report = bucket_pairs(max_bucket)(sigs.transform(band_keys(bands, rows)))
        # Checkpointed: the component search reads the edges every round, and dups needs their scores.
        if verify == "exact":
            edges = verify_pairs_exact(threshold, ngram)(pairs, texts.select("doc_id", "text"))
        else:
            edges = verify_pairs(threshold)(pairs, sigs.select("doc_id", "sig"))
        edges = edges.localCheckpoint()
        components = connected_components(edges.select("a", "b"))
        dups = (
            components.filter(F.col("doc_id") != F.col("component"))
            .join(_best(edges, edges.select("b", "jaccard")), "doc_id")
            .select("doc_id", F.col("component").alias("survivor_id"), "jaccard")
        )
        return dups, skew_report

    return transform


_EARLIER, _NEW = "0|", "1|"


def _tag(tag: str, col: str):
    return F.concat(F.lit(tag), F.col(col)).alias("doc_id")


def _untag(col: str, alias: str):
    return F.substring(F.col(col), len(_NEW) + 1, 1 << 30).alias(alias)


def _best(a_side: DataFrame, b_side: DataFrame) -> DataFrame:
    """``[doc_id, jaccard]``: each document's best verified edge (as ``a`` or as ``b``)."""
    return (
        a_side.select(F.col("a").alias("doc_id"), "jaccard")
        .unionByName(b_side.select(F.col("b").alias("doc_id"), "jaccard"))
        .groupBy("doc_id")
        .agg(F.max("jaccard").alias("jaccard"))
    )


def exact_duplicates(
    key_col: str = "text_hash", old: DataFrame | None = None
) -> Callable[[DataFrame], DataFrame]:
    """``[doc_id, <key_col>]`` → ``[doc_id, survivor_id]`` for every document that is not its key's survivor.

    The survivor is the smallest doc_id with the same key, so the result does not depend on partitioning.
    A min per key then a join, rather than a window: the aggregation is partial (a key shared by millions
    of boilerplate pages costs one row per partition) and AQE can split the skewed join. Null keys are
    never duplicates.

    Args:
        key_col: the column that defines sameness (a hash of normalized text).
        old: ``[doc_id, <key_col>]`` of the survivors of earlier batches (one per key): a new document with
            an earlier survivor's key is its duplicate, whatever the ids; earlier documents are not returned.
    """

    def transform(docs: DataFrame) -> DataFrame:
        keyed = docs.select("doc_id", key_col).filter(
            F.col(key_col).isNotNull() & F.col("doc_id").isNotNull()
        )
        if old is None:
            survivors = keyed.groupBy(key_col).agg(F.min("doc_id").alias("survivor_id"))
        else:
            earlier = old.select("doc_id", key_col).join(
                keyed.select(key_col).distinct(), key_col, "left_semi"
            )
            ranked = earlier.select(key_col, F.struct(F.lit(0).alias("n"), "doc_id").alias("r")).unionByName(
                keyed.select(key_col, F.struct(F.lit(1).alias("n"), "doc_id").alias("r"))
            )
            survivors = ranked.groupBy(key_col).agg(F.min("r").getField("doc_id").alias("survivor_id"))
        return (
            keyed.join(survivors, key_col)
            .filter(F.col("doc_id") != F.col("survivor_id"))
            .select("doc_id", "survivor_id")
        )

    return transform
