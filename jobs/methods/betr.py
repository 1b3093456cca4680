"""BETR (Mizrahi et al. 2025): benchmark targets' best ranks → positives → page classifier → threshold.

  betr_benchmarks  which benchmarks rank: aware = the eval suite, blind = every other one
  betr_labels      each document's best position over the benchmarks (each benchmark contributing
                   equally whatever its number of targets) and the top share as positives
  betr             the bigram classifier (``jobs.methods.pageclf``) trained on a seeded split of the labels,
                   scored on the whole pool; ``token_threshold`` picks the P(include) threshold that
                   keeps a token share of the held-out part

Positions, positives and the threshold's running sums are exact ranks from ``jobs.ordered``
(range-partitioned), not windows per benchmark or over the whole pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.methods import pageclf
from jobs.methods.sampling import Unscorable, class_sample, unit_hash
from jobs.ordered import ordered
from jobs.runtime import UsageError


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


def betr_labels(
    similarity: DataFrame, positive_share: float, hold: list[DataFrame] | None = None
) -> DataFrame:
    """Balanced best positions and positives.

    Balanced benchmarks. The paper balances the evaluation benchmarks to equal numbers of targets and
    scores a document by its best rank over all targets. Here ranks were already reduced to one best rank
    per (document, benchmark), and a benchmark with more targets puts more documents at small best ranks
    (each target has its own rank 1), so a plain min over benchmarks would favour it. Instead each benchmark
    orders the documents it ranked (best_rank, then max_cosine desc, then doc_id) into positions 1, 2, 3, …;
    a document's score is its best (smallest) position over the benchmarks. The top m documents by that
    score are then the first ~m/B of every benchmark's order: each benchmark contributes equally whatever
    its number of targets. Documents no benchmark ranked score worst (null position).

    Positives: the first ⌈positive_share · scored documents⌉ by (position, doc_id); never a document
    without a position. Both orders (positions within a benchmark, then the global one) are exact row
    numbers from ``jobs.ordered``: no window per benchmark and none over the whole pool.

    Args:
        similarity: ``[doc_id, benchmark, best_rank, max_cosine]`` of the chosen benchmarks.
        positive_share: share of the scored documents labelled 1.
        hold: collects ``jobs.ordered``'s persisted intermediates (unpersist when done).

    Returns:
        ``[doc_id, position, label]``, one row per scored document; position null = ranked by none.
    """
    sim = similarity.select("doc_id", "benchmark", "best_rank", "max_cosine")
    positioned = ordered(
        sim.filter(F.col("best_rank").isNotNull()),
        ["benchmark"],
        [F.asc("best_rank"), F.desc("max_cosine"), F.asc("doc_id")],
        row_number="position",
        hold=hold,
    )
    best = positioned.groupBy("doc_id").agg(F.min("position").cast("int").alias("position"))
    scored = sim.select("doc_id").distinct().join(best, "doc_id", "left")
    ranked = ordered(
        scored,
        [],
        [F.asc_nulls_last("position"), F.asc("doc_id")],
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
    """The include-probability threshold and what it keeps of the held-out sample."""

    threshold: float
    kept_share: float
    kept_docs: int
    kept_tokens: int
    total_tokens: int


def token_threshold(heldout: DataFrame, keep_share: float, hold: list[DataFrame] | None = None) -> Threshold:
    """The p_include threshold whose kept token share of ``heldout[doc_id, p_include, n_tokens]`` is
    closest to ``keep_share``.

    Documents with p_include ≥ threshold are kept. Candidate thresholds are the distinct p_include values
    (a threshold between two of them keeps the same documents); the one whose kept share of tokens is
    closest to ``keep_share`` wins, the higher threshold on a tie. So the kept share is off by at most
    half of the tokens of the documents at one p_include value. The running token sums over p descending
    come from ``jobs.ordered`` (exact; no window over the whole sample in one task), and the closest one
    is a distributed top-1.
    """
    by_p = heldout.groupBy(F.col("p_include").alias("p")).agg(
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
        raise Unscorable("the held-out sample is empty or has no tokens; no threshold can be chosen")
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
    threshold: Threshold
    pool_kept_share: float
    n_scored: int
    n_positive: int
    n_train: int
    n_heldout: int


def betr(
    docs: DataFrame,
    similarity: DataFrame,
    *,
    positive_share: float,
    heldout_share: float,
    keep_token_share: float,
    clf: pageclf.Classifier,
    hold: list[DataFrame] | None = None,
) -> BetrResult:
    """BETR from best ranks to a scored pool.

    Args:
        docs: the pool, ``[doc_id, text, n_tokens]`` (silver.documents).
        similarity: ``[doc_id, benchmark, best_rank, max_cosine]`` of the chosen benchmarks, pool docs only.
        positive_share: share of the scored documents labelled positive (``betr_labels``).
        heldout_share: share of the scored documents held out of training to pick the threshold.
        keep_token_share: share of the held-out tokens the threshold keeps.
        clf: the page classifier's settings, handed to ``jobs.methods.pageclf``; ``clf.seed`` also seeds the
            train/held-out split and the per-class sample (``clf.max_docs_per_class``).
        hold: collects ``jobs.ordered``'s persisted intermediates (unpersist when done with the result).

    Returns:
        P(include) for every pool document and the threshold chosen on the held-out sample: the documents
        with p_include ≥ threshold hold ``keep_token_share`` of the held-out tokens.

    Raises:
        Unscorable: no positives, a training split without both labels, or no held-out tokens.
    """
    labels = betr_labels(similarity, positive_share, hold).withColumn(
        "heldout", unit_hash(clf.seed, "betr-heldout") < F.lit(heldout_share)
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
        if n_pos == 0:
            raise Unscorable(
                "no document has a best rank in scores.similarity (every one is outside top_k); raise "
                "score.similarity.top_k"
            )
        if not c["train_pos"] or n - n_held - int(c["train_pos"]) <= 0:
            raise Unscorable(
                f"the training split ({n - n_held} of {n} scored documents) lacks positives or negatives; "
                "score more documents or change aggregate.betr.positive_share / heldout_share"
            )
        train = labels.filter(~F.col("heldout")).select("doc_id", "label").join(docs, "doc_id")
        train = class_sample(train, clf.max_docs_per_class, clf.seed, hold=hold)
        n_train = train.count()
        model = pageclf.train(train.select("doc_id", "text", "label"), clf.model())
        pool = pageclf.score(model, docs.select("doc_id", "text", "n_tokens"))
        pool = pool.select("doc_id", "p_include", "n_tokens").persist()
        try:
            heldout = pool.join(labels.filter(F.col("heldout")).select("doc_id"), "doc_id", "left_semi")
            t = token_threshold(heldout, keep_token_share, hold)
            kept = F.when(F.col("p_include") >= F.lit(t.threshold), F.col("n_tokens")).otherwise(0)
            agg = pool.agg(F.sum(kept).alias("k"), F.sum("n_tokens").alias("t")).first()
        except BaseException:
            pool.unpersist()
            raise
    finally:
        labels.unpersist()
    share = float(agg["k"]) / float(agg["t"]) if agg["t"] else 0.0
    return BetrResult(pool, t, share, n, n_pos, n_train, n_held)
