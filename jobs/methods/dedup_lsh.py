"""Near dedup's signature steps: MinHash signatures, LSH banding into candidate pairs with a skew guard,
and verification of the candidates (estimated from the signatures, or exact on the shingle sets).

The recipe these steps belong to, and how they chain, is ``jobs.methods.dedup``.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, LongType

from udfs.minhash import ShingleSet, minhash_udf

# A signature's values as Spark stores them (int32 bits of the uint32 MinHash); -1 only for empty text.
EMPTY_SIG_VALUE = -1
# About how many members of an LSH bucket one task pairs up (``bucket_pairs``): groups of ~10,000 pairs.
PAIR_BLOCK = 100


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


def bucket_pairs(
    max_bucket: int, pair_block: int = PAIR_BLOCK
) -> Callable[[DataFrame], tuple[DataFrame, DataFrame]]:
    """``[doc_id, band, bucket]`` → ``(pairs [a, b], skew_report [band, bucket, size, action])``.

    Buckets of 2..``max_bucket`` documents emit all their pairs; a larger one only ``(minimum, member)``
    (see ``lsh_candidates``).

    A bucket's pairs are not made in one task. Its n members are dealt by the hash of their id into
    k = ceil(n / ``pair_block``) blocks, and each pair of blocks (i ≤ j) is one group, which gets the members
    of blocks i and j (each member is copied k times) and emits the pairs across them (within the block when
    i = j). Every pair of the bucket comes from exactly one group, so the pairs are exactly those of one
    group per bucket, while a bucket of n members is k·(k+1)/2 groups of about ``pair_block``² pairs,
    which the shuffle spreads over tasks like any other key: the pair work of a bucket spreads in
    proportion to its pairs (``max_bucket = 1000`` and the default block: 55 groups of at most ~10,000
    pairs instead of one of 499,500). Buckets of at most ``pair_block`` members are one group, as before.

    Args:
        max_bucket: the largest bucket whose pairs are all emitted.
        pair_block: about how many members of a bucket one group pairs up (at least 1).
    """
    if pair_block < 1:
        raise ValueError(f"pair_block must be at least 1, got {pair_block}")

    def transform(keyed: DataFrame) -> tuple[DataFrame, DataFrame]:
        # Partial aggregation keeps this cheap even for a bucket of millions; singletons drop out here.
        stats = (
            keyed.groupBy("band", "bucket")
            .agg(F.count(F.lit(1)).alias("size"), F.min("doc_id").alias("root"))
            .filter(F.col("size") >= 2)
        )
        members = keyed.join(stats, ["band", "bucket"])

        blocks = F.ceil(F.col("size") / F.lit(pair_block)).cast("int")
        cells = (
            members.filter(F.col("size") <= max_bucket)
            .select(
                "band",
                "bucket",
                "doc_id",
                F.pmod(F.xxhash64("doc_id"), blocks).cast("int").alias("blk"),
                F.explode(F.sequence(F.lit(0), blocks - 1)).alias("other"),
            )
            .select(
                "band",
                "bucket",
                F.least("blk", "other").alias("lo"),
                F.greatest("blk", "other").alias("hi"),
                F.struct("blk", "doc_id").alias("m"),
            )
            .groupBy("band", "bucket", "lo", "hi")
            .agg(F.collect_set("m").alias("ms"))
        )

        def side(block: str):
            return F.transform(F.filter("ms", lambda m: m["blk"] == F.col(block)), lambda m: m["doc_id"])

        # Across two blocks every (x, y); within one block each pair once (y > x).
        partners = F.filter("ys", lambda y: (F.col("lo") < F.col("hi")) | (y > F.col("x")))
        small = (
            cells.select("lo", "hi", side("lo").alias("xs"), side("hi").alias("ys"))
            .select("lo", "hi", "ys", F.explode("xs").alias("x"))
            .select("x", F.explode(partners).alias("y"))
            .select(F.least("x", "y").alias("a"), F.greatest("x", "y").alias("b"))
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
    bands: int, rows: int, max_bucket: int, pair_block: int = PAIR_BLOCK
) -> Callable[[DataFrame], tuple[DataFrame, DataFrame]]:
    """``[doc_id, sig]`` → ``(pairs [a, b], skew_report [band, bucket, size, action])``.

    Band ``b`` of a signature is ``sig[b*rows : (b+1)*rows]``; its bucket is the 64-bit xxhash of that
    slice. Buckets of 2..``max_bucket`` documents emit all their pairs, made in groups of about
    ``pair_block``² pairs so that a big bucket's pairs spread over tasks (``bucket_pairs``). A larger bucket
    emits only
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
        pair_block: about how many members of a bucket one group pairs up (see ``bucket_pairs``).

    Returns:
        A function returning distinct ``pairs`` with ``a < b`` and one ``skew_report`` row per oversized
        bucket with ``action = 'star'``.
    """
    check_lsh(bands, rows, max_bucket)

    def transform(sigs: DataFrame) -> tuple[DataFrame, DataFrame]:
        return bucket_pairs(max_bucket, pair_block)(sigs.transform(band_keys(bands, rows)))

    return transform


def check_lsh(bands: int, rows: int, max_bucket: int) -> None:
    """Raises ValueError unless ``bands`` and ``rows`` are positive and ``max_bucket`` is at least 2."""
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
    shingle sets are compared exactly instead.

    Each document of a pair is shingled once, however many pairs it is in: the documents that occur in
    some pair get their shingle set as sorted 64-bit hashes (``udfs.minhash.ShingleSet``, one pandas UDF
    call per document), each pair end is joined with its document's set (one join: every set is computed
    in one place of the plan), the two ends of a pair meet in a ``groupBy`` of the pair, and the Jaccard
    is ``|A ∩ B| / (|A| + |B| - |A ∩ B|)`` in SQL (``array_intersect``, hash-based, on the executors).
    Texts are never joined to pairs, and no Python runs per pair. The hash sets give the Jaccard of the
    shingle sets themselves unless two distinct shingles share a 64-bit hash (below 1e-11 for two documents
    of 10,000 shingles; ``udfs.minhash.shingle_hashes64``).

    Args:
        threshold: minimum Jaccard similarity, in (0, 1].
        ngram: words per shingle, as for the signatures.
    """

    step = ShingleSet(ngram)

    @F.pandas_udf(ArrayType(LongType(), containsNull=False))
    def shingle_set(texts: pd.Series) -> pd.Series:
        return step(texts)

    def transform(pairs: DataFrame, docs: DataFrame) -> DataFrame:
        ends = pairs.select(F.col("a").alias("doc_id"), "a", "b").unionByName(
            pairs.select(F.col("b").alias("doc_id"), "a", "b")
        )
        sets = (
            docs.select("doc_id", "text")
            .join(ends.select("doc_id").distinct(), "doc_id", "left_semi")
            .select("doc_id", shingle_set("text").alias("shingles"))
        )
        both = ends.join(sets, "doc_id").groupBy("a", "b").agg(F.collect_list("shingles").alias("two"))
        x, y = F.get("two", 0), F.get("two", 1)
        common = F.size(F.array_intersect(x, y))
        union = F.size(x) + F.size(y) - common
        # Both sets empty counts as equal, as udfs.minhash.jaccard has it (near dedup drops such texts first).
        jac = F.when(union == 0, F.lit(1.0)).otherwise(common / union)
        return (
            both.filter(F.size("two") == 2)  # as an inner join: a pair with a document without text drops
            .select("a", "b", jac.cast("double").alias("jaccard"))
            .filter(F.col("jaccard") >= threshold)
        )

    return transform
