"""BETR (Mizrahi et al. 2025): rank a sample of the pool against benchmark targets, distil into a page
classifier, score the whole pool.

  betr_sample      the seeded sample of the pool that score_similarity embeds and ranks (the paper ranks a
                   sample and distils it; ranks are within the sample)
  balanced_targets every benchmark's targets cut to the same count (the paper balances benchmarks, so that a
                   min rank over all targets weighs each benchmark alike)
  betr_benchmarks  which benchmarks rank: aware = the eval suite, blind = every other one
  betr_labels      each sampled document's score and the top share as positives: ``min_rank`` (the paper:
                   its best rank over the balanced targets of every chosen benchmark) or ``per_benchmark``
                   (its best position in each benchmark's own order)
  betr             the page classifier (``jobs.methods.pageclf``) trained on the sample's positives and
                   (optionally downsampled) negatives, scored on the whole pool; ``token_threshold`` picks
                   the P(include) threshold that keeps a token share of the pool (select's budget)

Positions, positives, the per-benchmark target cut and the threshold's running sums are exact ranks from
``jobs.ordered`` (range-partitioned), not windows per benchmark or over the whole pool.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.methods import pageclf
from jobs.methods.sampling import Unscorable, class_sample, unit_hash
from jobs.ordered import ordered
from jobs.runtime import UsageError


def betr_sample(docs: DataFrame, n_docs: int, sample_docs: int | None, seed: int) -> DataFrame:
    """The documents BETR embeds and ranks: a seeded hash sample of about ``sample_docs`` of the ``n_docs``
    pool documents (all of them when the pool is no larger, or ``sample_docs`` is None).

    A document is in the sample when the hash of its doc_id is below ``sample_docs / n_docs``: reruns keep the
    same documents, and a smaller sample is a subset of a larger one, so embeddings stored for a larger pool
    are reused when it grows.
    """
    if sample_docs is None or sample_docs >= n_docs:
        return docs
    return docs.filter(unit_hash(seed, "betr-sample") < F.lit(sample_docs / n_docs))


def balanced_targets(targets: DataFrame, seed: int, hold: list[DataFrame] | None = None) -> DataFrame:
    """``targets[doc_id, benchmark, …]`` with every benchmark cut to the smallest benchmark's count: the
    targets with the smallest seeded hash of their id (exact ranks from ``jobs.ordered``; the driver sees one
    count per benchmark)."""
    counts = [r["n"] for r in targets.groupBy("benchmark").agg(F.count("*").alias("n")).collect()]
    if len(set(counts)) <= 1:
        return targets
    keep = min(counts)
    ranked = ordered(
        targets.select("doc_id", "benchmark", unit_hash(seed, "betr-targets").alias("_h")),
        ["benchmark"],
        [F.asc("_h"), F.asc("doc_id")],
        row_number="_n",
        hold=hold,
    )
    chosen = ranked.filter(F.col("_n") <= keep).select("doc_id")
    return targets.join(chosen, "doc_id", "left_semi")


def betr_benchmarks(present: Sequence[str], mode: str, eval_benchmarks: Sequence[str] | None) -> list[str]:
    """The benchmarks BETR ranks against: aware = the eval suite (null: all), blind = every other one.

    Raises:
        UsageError: an eval benchmark has no similarity rows, or blind mode leaves no benchmark.
    """
    present = sorted(set(present))
    if eval_benchmarks is not None:
        unknown = sorted(set(eval_benchmarks) - set(present))
        if unknown:
            raise UsageError(
                f"aggregate.betr.eval_benchmarks: {unknown} have no rows in scores.similarity (it has "
                f"{present}); list benchmarks of ref.benchmarks that score_similarity scored"
            )
    if mode == "aware":
        return sorted(eval_benchmarks) if eval_benchmarks is not None else present
    if not eval_benchmarks:
        raise UsageError(
            "aggregate.betr.mode blind needs aggregate.betr.eval_benchmarks (the suite held out)"
        )
    others = [b for b in present if b not in eval_benchmarks]
    if not others:
        raise UsageError(
            f"aggregate.betr.mode blind: every benchmark in scores.similarity ({present}) is in "
            "eval_benchmarks, so none is left to rank against; add other benchmarks to ref.benchmarks"
        )
    return others


COMBINE = ("min_rank", "per_benchmark")


def betr_labels(
    similarity: DataFrame,
    positive_share: float,
    combine: str = "min_rank",
    hold: list[DataFrame] | None = None,
) -> DataFrame:
    """Each ranked document's score and the positives.

    ``min_rank`` (the paper): a document's score is its best rank over every target of the chosen
    benchmarks, that is the min over benchmarks of ``best_rank`` (each already the min over that benchmark's
    targets). The targets are balanced (``balanced_targets``: the same count per benchmark), so each
    benchmark puts the same number of documents at rank 1, 2, …. Documents ordered by (score, max cosine
    desc, doc_id).

    ``per_benchmark``: each benchmark orders the documents it ranked (best_rank, then max_cosine desc, then
    doc_id) into positions 1, 2, 3, …; a document's score is its best (smallest) position over the
    benchmarks. The top m documents are then the first ~m/B of every benchmark's order, whatever the
    benchmarks' numbers of targets (for targets that were not balanced).

    Positives: the first ⌈positive_share · ranked documents⌉ in that order; never a document that no target
    ranked (outside every top_k: null score, ordered last). The orders are exact row numbers from
    ``jobs.ordered``: no window per benchmark and none over the whole sample.

    Args:
        similarity: ``[doc_id, benchmark, best_rank, max_cosine]`` of the chosen benchmarks.
        positive_share: share of the ranked documents labelled 1.
        combine: ``min_rank`` or ``per_benchmark``.
        hold: collects ``jobs.ordered``'s persisted intermediates (unpersist when done).

    Returns:
        ``[doc_id, position, label]``, one row per ranked document; position = the score (null: ranked by
        no target).
    """
    if combine not in COMBINE:
        raise ValueError(f"combine must be one of {COMBINE}, got {combine!r}")
    sim = similarity.select("doc_id", "benchmark", "best_rank", "max_cosine")
    if combine == "per_benchmark":
        positioned = ordered(
            sim.filter(F.col("best_rank").isNotNull()),
            ["benchmark"],
            [F.asc("best_rank"), F.desc("max_cosine"), F.asc("doc_id")],
            row_number="position",
            hold=hold,
        )
        best = positioned.groupBy("doc_id").agg(F.min("position").cast("int").alias("position"))
        scored = sim.select("doc_id").distinct().join(best, "doc_id", "left").withColumn("_cos", F.lit(0.0))
    else:
        scored = sim.groupBy("doc_id").agg(
            F.min("best_rank").cast("int").alias("position"), F.max("max_cosine").alias("_cos")
        )
    ranked = ordered(
        scored,
        [],
        [F.asc_nulls_last("position"), F.desc("_cos"), F.asc("doc_id")],
        row_number="score_rank",
        count="n",
        hold=hold,
    )
    # The same double arithmetic as SQL's CEIL(:positive_share * n): share × n, then the ceiling.
    positive = F.col("position").isNotNull() & (
        F.col("score_rank") <= F.ceil(F.lit(float(positive_share)) * F.col("n"))
    )
    return ranked.select("doc_id", "position", positive.cast("int").alias("label"))


@dataclass(frozen=True)
class Threshold:
    """The include-probability threshold and what it keeps of the pool."""

    threshold: float
    kept_share: float
    kept_docs: int
    kept_tokens: int
    total_tokens: int


def token_threshold(scored: DataFrame, keep_share: float, hold: list[DataFrame] | None = None) -> Threshold:
    """The p_include threshold whose kept token share of ``scored[p_include, n_tokens]`` is closest to
    ``keep_share``.

    Documents with p_include ≥ threshold are kept. Candidate thresholds are the distinct p_include values
    (a threshold between two of them keeps the same documents); the one whose kept share of tokens is
    closest to ``keep_share`` wins, the higher threshold on a tie. So the kept share is off by at most
    half of the tokens of the documents at one p_include value. The running token sums over p descending
    come from ``jobs.ordered`` (exact; no window over the whole pool in one task), and the closest one is a
    distributed top-1.
    """
    by_p = scored.groupBy(F.col("p_include").alias("p")).agg(
        F.sum("n_tokens").alias("tokens"), F.count("*").alias("docs")
    )
    cum = ordered(by_p, [], [F.desc("p")], sums={"kept_tokens": "tokens", "kept_docs": "docs"}, hold=hold)
    total = by_p.agg(F.sum("tokens").alias("total_tokens"))
    share = F.col("kept_tokens") / F.when(F.col("total_tokens") != 0, F.col("total_tokens"))
    row = (
        cum.crossJoin(F.broadcast(total))
        .select(
            F.col("p").alias("threshold"),
            F.col("kept_tokens").cast("long").alias("kept_tokens"),
            F.col("kept_docs").cast("long").alias("kept_docs"),
            F.col("total_tokens").cast("long").alias("total_tokens"),
            share.alias("kept_share"),
        )
        .orderBy(F.asc_nulls_last(F.abs(F.col("kept_share") - F.lit(float(keep_share)))), F.desc("threshold"))
        .first()
    )
    if row is None or row["kept_share"] is None:
        raise Unscorable("the pool is empty or has no tokens; no threshold can be chosen")
    return Threshold(
        float(row["threshold"]),
        float(row["kept_share"]),
        int(row["kept_docs"]),
        int(row["kept_tokens"]),
        int(row["total_tokens"]),
    )


@dataclass
class BetrResult:
    """BETR's scores of the pool (persisted; the caller unpersists) and how they were made."""

    scores: DataFrame  # [doc_id, p_include, n_tokens]
    threshold: Threshold  # on the whole pool
    n_ranked: int  # sampled documents with similarity rows
    n_positive: int
    n_train: int  # training pages (positives + negatives)
    n_heldout: int
    heldout_kept: (
        tuple[int, int, int, int] | None
    )  # held-out (positives kept, positives, negatives kept, negatives)


def betr(
    docs: DataFrame,
    similarity: DataFrame,
    *,
    positive_share: float,
    keep_token_share: float,
    clf: pageclf.Classifier,
    combine: str = "min_rank",
    negatives_per_positive: float | None = None,
    heldout_share: float = 0.0,
    hold: list | None = None,
) -> BetrResult:
    """BETR from the ranked sample to a scored pool.

    Args:
        docs: the pool, ``[doc_id, text, n_tokens]`` (silver.documents).
        similarity: ``[doc_id, benchmark, best_rank, max_cosine]`` of the chosen benchmarks: the ranked
            sample (pool documents only).
        positive_share: share of the ranked documents labelled positive (``betr_labels``).
        keep_token_share: share of the pool's tokens the threshold keeps.
        clf: the page classifier's settings, handed to ``jobs.methods.pageclf``; ``clf.seed`` also seeds the
            held-out split and the per-class samples (``clf.max_docs_per_class``).
        combine: ``min_rank`` (the paper) or ``per_benchmark`` (``betr_labels``).
        negatives_per_positive: negatives kept for training per training positive, a seeded sample (None:
            every other ranked document, within ``clf.max_docs_per_class``).
        heldout_share: share of the ranked documents kept out of training; the result reports how many of
            their positives and negatives the pool threshold keeps (0: train on all of them).
        hold: collects persisted intermediates and the fitted model (unpersist when done with the result).

    Returns:
        P(include) for every pool document and the threshold that keeps ``keep_token_share`` of the pool's
        tokens.

    Raises:
        Unscorable: no positives, a training split without both labels, the classifier could not train, or
            no pool tokens.
    """
    hold = hold if hold is not None else []
    labels = betr_labels(similarity, positive_share, combine, hold).withColumn(
        "heldout", unit_hash(clf.seed, "betr-heldout") < F.lit(float(heldout_share))
    )
    labels = labels.persist()
    try:
        c = labels.agg(
            F.count("*").alias("n"),
            F.sum("label").alias("pos"),
            F.sum(F.col("heldout").cast("int")).alias("held"),
            F.sum(F.when(~F.col("heldout"), F.col("label"))).alias("train_pos"),
        ).first()
        n, n_pos, n_held = int(c["n"]), int(c["pos"] or 0), int(c["held"] or 0)
        train_pos = int(c["train_pos"] or 0)
        if n_pos == 0:
            raise Unscorable(
                "no document has a best rank in scores.similarity (every one is outside top_k); raise "
                "score.similarity.top_k"
            )
        if not train_pos or n - n_held - train_pos <= 0:
            raise Unscorable(
                f"the training split ({n - n_held} of {n} ranked documents) lacks positives or negatives; "
                "rank more documents (score.similarity.sample_docs) or change aggregate.betr.positive_share "
                "/ heldout_share"
            )
        train = labels.filter(~F.col("heldout")).select("doc_id", "label").join(docs, "doc_id")
        caps: dict[int, int | None] = {1: clf.max_docs_per_class, 0: clf.max_docs_per_class}
        if negatives_per_positive is not None:
            kept_pos = min(train_pos, clf.max_docs_per_class or train_pos)
            neg = max(1, math.ceil(negatives_per_positive * kept_pos))
            caps[0] = neg if clf.max_docs_per_class is None else min(neg, clf.max_docs_per_class)
        train = class_sample(train, caps, clf.seed, hold=hold).select("doc_id", "text", "label").persist()
        hold.append(train)
        n_train = train.count()
        try:
            model = pageclf.fit(train, clf)
        except ValueError as exc:
            raise Unscorable(f"the page classifier: {exc}") from None
        hold.append(model)
        pool = model.score(docs.select("doc_id", "text", "n_tokens")).select(
            "doc_id", "p_include", "n_tokens"
        )
        pool = pool.persist()
        try:
            t = token_threshold(pool, keep_token_share, hold)
            held = None
            if n_held:
                kept = (F.col("p_include") >= F.lit(t.threshold)).cast("int")
                h = (
                    pool.join(labels.filter(F.col("heldout")).select("doc_id", "label"), "doc_id")
                    .agg(
                        F.sum(F.when(F.col("label") == 1, kept)).alias("pk"),
                        F.sum("label").alias("p"),
                        F.sum(F.when(F.col("label") == 0, kept)).alias("nk"),
                        F.sum(1 - F.col("label")).alias("q"),
                    )
                    .first()
                )
                held = (int(h["pk"] or 0), int(h["p"] or 0), int(h["nk"] or 0), int(h["q"] or 0))
        except BaseException:
            pool.unpersist()
            raise
    finally:
        labels.unpersist()
    return BetrResult(pool, t, n, n_pos, n_train, n_held, held)
