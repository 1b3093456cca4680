"""Exact and near-duplicate detection as DataFrame transforms (the clean stage's steps 4 and 5).

Near duplicates follow the usual MinHash LSH recipe, with every step a distributed DataFrame operation:

1. ``minhash_signatures``: a MinHash signature per document (pandas UDF, ``udfs.minhash``).
2. ``lsh_candidates``: split each signature into ``bands`` bands of ``rows`` values; documents that agree
   on a whole band land in the same bucket and become candidate pairs. A bucket's pairs are made in
   groups of about ``pair_block``² pairs, so a big bucket's pair work spreads over tasks (the pairs are
   exactly all pairs). A bucket larger than ``max_bucket`` (boilerplate, templated pages) is linked as a
   star to its smallest member instead of all n·(n-1)/2 pairs, and reported.
3. ``verify_pairs``: keep candidates whose estimated Jaccard (share of agreeing signature values) is at
   least ``threshold``; band collisions alone are not evidence. ``verify_pairs_exact`` compares the
   candidates' shingle sets instead, each document shingled once (``udfs.minhash.ShingleSet``).
4. ``connected_components``: near-duplicate clusters are the connected components of the verified pairs
   (so A~B and B~C put A, B and C in one cluster even when A and C differ more); the smallest id of a
   cluster survives. Its rounds aggregate per node (no window over a node, which a hub would skew).

What several steps read (the signatures, the verified edges, each component round) is materialized with
``dedup_components.materialize``: Parquet under ``checkpoint_dir`` on the lake's storage when one is given
(the clean stage gives ``<warehouse>/_checkpoints/<run id>``), which a lost executor does not take with it.

Steps 1–3 are ``jobs.methods.dedup_lsh``, step 4 ``jobs.methods.dedup_components``; this module chains
them (``near_duplicates``, ``link_near``), holds exact dedup (``exact_duplicates``), and the clean stage's
use of both on a batch (``exact_step``, ``near_step``, ``dedup_index_rows``).

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

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from jobs.methods.dedup_components import connected_components, materialize
from jobs.methods.dedup_lsh import (
    EMPTY_SIG_VALUE,
    PAIR_BLOCK,
    band_keys,
    bucket_pairs,
    check_lsh,
    minhash_signatures,
    verify_pairs,
    verify_pairs_exact,
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
    pair_block: int = PAIR_BLOCK,
    checkpoint_dir: str | None = None,
) -> Callable[[DataFrame], tuple[DataFrame, DataFrame]]:
    """``[doc_id, text]`` → ``(dups [doc_id, survivor_id, jaccard], skew_report)``.

    One ``dups`` row per document that is not its cluster's survivor; the survivor is the cluster's smallest
    doc_id and ``jaccard`` the best verified estimate among the document's own edges. Documents without any
    token are left out (their signatures would all agree); exact dedup is the place for those.

    The transform runs Spark jobs when called: signatures are computed once and materialized (the UDF is
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
        pair_block: about how many members of an LSH bucket one task pairs up (``bucket_pairs``).
        checkpoint_dir: a folder on the lake's storage for intermediate results, removed by the caller
            afterwards (``dedup_components.materialize``); None: local checkpoints (one machine).
    """
    if bands * rows > num_perm:
        raise ValueError(f"bands x rows = {bands * rows} is more than num_perm = {num_perm}")
    link = link_near(bands, rows, threshold, max_bucket, verify, ngram, pair_block, checkpoint_dir)

    def transform(docs: DataFrame) -> tuple[DataFrame, DataFrame]:
        sigs = docs.transform(minhash_signatures(num_perm, ngram, seed)).filter(
            F.get("sig", 0) != EMPTY_SIG_VALUE
        )
        return link(materialize(sigs, checkpoint_dir, "signatures"), docs)

    return transform


def link_near(
    bands: int,
    rows: int,
    threshold: float,
    max_bucket: int = 1000,
    verify: str = "exact",
    ngram: int = 5,
    pair_block: int = PAIR_BLOCK,
    checkpoint_dir: str | None = None,
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
        pair_block: about how many members of an LSH bucket one task pairs up (``bucket_pairs``).
        checkpoint_dir: where the verified edges and the component rounds are materialized (see
            ``near_duplicates``); None: local checkpoints.
    """
    if verify not in ("exact", "estimate"):
        raise ValueError(f"verify must be 'exact' or 'estimate', not {verify!r}")
    check_lsh(bands, rows, max_bucket)

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
        pairs, skew_report = bucket_pairs(max_bucket, pair_block)(keyed)
        pairs = pairs.filter(F.col("b").startswith(_NEW)).persist()
        if verify == "exact":
            asked = pairs.filter(F.col("a").startswith(_EARLIER)).select(_untag("a", "doc_id")).distinct()
            docs = texts.select(_tag(_NEW, "doc_id"), "text").unionByName(
                old_texts(asked).select(_tag(_EARLIER, "doc_id"), "text")
            )
            edges = verify_pairs_exact(threshold, ngram)(pairs, docs)
        else:
            edges = verify_pairs(threshold)(pairs, new_sigs.unionByName(old_sigs))
        edges = materialize(edges, checkpoint_dir, "edges")
        pairs.unpersist()
        # For the components an earlier document stands for its cluster's survivor, tagged as earlier.
        comp = old.select(_tag(_EARLIER, "doc_id"), F.concat(F.lit(_EARLIER), "component").alias("label"))
        graph = edges.join(comp.withColumnRenamed("doc_id", "a"), "a", "left").select(
            F.coalesce("label", "a").alias("a"), "b"
        )
        components = connected_components(graph, checkpoint_dir=checkpoint_dir).filter(
            F.col("doc_id").startswith(_NEW)
        )
        dups = (
            components.filter(F.col("doc_id") != F.col("component"))
            .join(_best(edges.filter(F.col("a").startswith(_NEW)), edges.select("b", "jaccard")), "doc_id")
            .select(_untag("doc_id", "doc_id"), _untag("component", "survivor_id"), "jaccard")
        )
        return dups, skew_report

    def _link(sigs: DataFrame, texts: DataFrame | None) -> tuple[DataFrame, DataFrame]:
        pairs, skew_report = bucket_pairs(max_bucket, pair_block)(sigs.transform(band_keys(bands, rows)))
        # Materialized: the component search reads the edges, and dups needs their scores.
        if verify == "exact":
            edges = verify_pairs_exact(threshold, ngram)(pairs, texts.select("doc_id", "text"))
        else:
            edges = verify_pairs(threshold)(pairs, sigs.select("doc_id", "sig"))
        edges = materialize(edges, checkpoint_dir, "edges")
        components = connected_components(edges.select("a", "b"), checkpoint_dir=checkpoint_dir)
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


# ------------------------------------------------------------------------------------- the clean stage


def text_hash(col: str = "norm_text"):
    """sha256 of the lowercased, whitespace-collapsed text: the exact-duplicate key."""
    return F.sha2(F.lower(F.trim(F.regexp_replace(F.col(col), r"\s+", " "))), 256)


def _as_key():
    # The dedup steps work on order keys (see ``order_key``), so "smallest id" is the survivor rule.
    return F.col("order_key").alias("doc_id")


def order_key(ts: str = "ingested_at", doc_id: str = "doc_id"):
    """The survivor rule as one sortable string: ingest time in microseconds (20 digits), ``|``, doc_id.

    The dedup steps compare these as ids, so the earliest-ingested document survives, ties broken by the
    smallest doc_id.
    """
    micros = F.lpad(F.unix_micros(F.col(ts)).cast("string"), 20, "0")
    return F.concat(micros, F.lit("|"), F.col(doc_id))


def key_doc_id(key):
    """The doc_id in an ``order_key`` column (what follows the 20 digits and the bar)."""
    return F.substring(key, 22, 1 << 30)


@F.pandas_udf(StringType())
def normalized(texts: pd.Series) -> pd.Series:
    """``udfs.normalize.normalize`` of each text, as step 1 computes ``norm_text``."""
    from udfs.normalize import normalize

    return pd.Series([normalize(t) if isinstance(t, str) else "" for t in texts], dtype=object)


@dataclass
class Earlier:
    """What a batch is de-duplicated against: earlier batches' silver.dedup_index rows, and where the texts
    of earlier documents come from when exact near-dup verification needs a few of them."""

    index: DataFrame
    texts: Callable[[DataFrame], DataFrame]


def earlier_texts(bronze_docs: DataFrame, text_of=None) -> Callable[[DataFrame], DataFrame]:
    """``[doc_id = order_key]`` → ``[doc_id, text]``: those documents' bronze text, normalized again (step 1
    is deterministic); the join comes first, so only the asked documents are normalized.

    Args:
        bronze_docs: bronze.documents.
        text_of: column function from the bronze text and format to the text the dedup steps saw
            (default ``normalized``; the clean stage passes one that also removes the lines its rules
            remove, which differ for chat records).
    """
    text_of = text_of or (lambda text, fmt: normalized(text))

    def lookup(ids: DataFrame) -> DataFrame:
        wanted = ids.select(F.col("doc_id").alias("_key"), key_doc_id(F.col("doc_id")).alias("doc_id"))
        return (
            bronze_docs.select("doc_id", "text", F.coalesce("format", F.lit("text")).alias("format"))
            .join(wanted, "doc_id")
            .select(F.col("_key").alias("doc_id"), text_of(F.col("text"), F.col("format")).alias("text"))
        )

    return lookup


def exact_step(alive: DataFrame, earlier: Earlier | None = None) -> DataFrame:
    """Step 4 on a batch: ``[order_key, exact_of]`` for each document whose text hash an earlier one has.

    Args:
        alive: the batch's documents that passed steps 1–3 (``order_key``, ``text_hash``).
        earlier: earlier batches; their exact-dedup survivors count as earlier documents.
    """
    old = None
    if earlier is not None:
        survivors = earlier.index.filter(F.coalesce(F.col("step"), F.lit("")) != "exact_dedup")
        old = survivors.select(_as_key(), "text_hash")
    return (
        alive.select(_as_key(), "text_hash")
        .transform(exact_duplicates("text_hash", old))
        .select(F.col("doc_id").alias("order_key"), F.col("survivor_id").alias("exact_of"))
    )


def near_step(
    alive: DataFrame,
    signatures: Callable[[DataFrame], DataFrame],
    link: Callable[..., tuple[DataFrame, DataFrame]],
    earlier: Earlier | None = None,
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Step 5 on a batch: ``(sigs, near [order_key, near_of, jaccard], skew_report)``.

    ``sigs`` comes back persisted, not recomputed: the UDF is the expensive part, and the index stores the
    signatures (the caller unpersists it).

    Args:
        alive: the batch's documents left after exact dedup (``order_key``, ``norm_text``).
        signatures: ``minhash_signatures(num_perm, ngram, seed)``.
        link: ``link_near(bands, rows, threshold, max_bucket, verify, ngram)``.
        earlier: earlier batches; their documents that reached near dedup take part as earlier documents.
    """
    texts = alive.select(_as_key(), F.col("norm_text").alias("text"))
    sigs = texts.transform(signatures).persist()
    old = old_texts = None
    if earlier is not None:
        old = earlier.index.filter(F.col("component").isNotNull()).select(_as_key(), "sig", "component")
        old_texts = earlier.texts
    near, skew = link(sigs.filter(F.get("sig", 0) != EMPTY_SIG_VALUE), texts, old, old_texts)
    near = near.select(F.col("doc_id").alias("order_key"), F.col("survivor_id").alias("near_of"), "jaccard")
    return sigs, near, skew


def dedup_index_rows(reached: DataFrame, exact, sigs, near, stamp: list) -> DataFrame:
    """silver.dedup_index rows: every document that reached the dedup steps, with how they decided it."""
    rows = reached.select("doc_id", "order_key", "text_hash")
    null = F.lit(None).cast("string")
    rows = rows.join(exact, "order_key", "left") if exact is not None else rows.withColumn("exact_of", null)
    if sigs is not None:
        rows = rows.join(sigs.withColumnRenamed("doc_id", "order_key"), "order_key", "left")
        sig = F.when(F.get("sig", 0) != EMPTY_SIG_VALUE, F.col("sig"))
    else:
        sig = F.lit(None).cast("array<int>")
    if near is not None:
        rows = rows.join(near.select("order_key", "near_of"), "order_key", "left")
    else:
        rows = rows.withColumn("near_of", null)
    component = (
        F.when(F.col("exact_of").isNull(), F.coalesce("near_of", "order_key")) if sigs is not None else null
    )
    return rows.select(
        "doc_id",
        "order_key",
        "text_hash",
        sig.alias("sig"),
        F.when(F.col("exact_of").isNotNull(), F.lit("exact_dedup"))
        .when(F.col("near_of").isNotNull(), F.lit("near_dedup"))
        .alias("step"),
        key_doc_id(F.coalesce("exact_of", "near_of")).alias("survivor_id"),
        component.alias("component"),
        *stamp,
    )
