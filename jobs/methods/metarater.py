"""Meta-rater (Zhuang et al. 2025): rating signals combined with weights learned from proxy runs.

signals    each document's PRRC ratings (scores.prrc) and quality signals (scores.quality),
           normalized over the pool to [0, 5] (``jobs/sql/normalize_signals.sql``);
           Q(x) = Σ_j w_j · norm_j(x), summed in signal order.
propose    K Dirichlet(1) weight vectors p000…, seeded; each one's selection is the top share of
           documents by Q (ties by doc_id), from a per-proposal cut and an exact rank of the documents
           above it (``proposal_tops``), not from a K × N table ranked in a window per proposal.
proxy      a validation loss per proposal: ``jobs.methods.metarater_proxy``.
fit        a LightGBM regressor weights → val_loss, its held-out Spearman from k-fold predictions;
           Dirichlet(1) candidates are scored and w* = the mean of the best lowest predicted.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from functools import reduce

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StringType, StructField, StructType

from jobs.ordered import ordered
from jobs.queries import run_sql
from jobs.runtime import UsageError
from schemas import scores, silver
from schemas.base import TableSpec
from udfs.quality import SIGNALS

log = logging.getLogger(__name__)

PRRC_LABELS = tuple(f"{d}_label" for d in scores.PRRC_DIMENSIONS)
PRRC_SIGNALS = (*scores.PRRC_DIMENSIONS, *PRRC_LABELS)
QUALITY_SIGNALS = tuple(s.name for s in SIGNALS)
LABEL_CLASSES = 6  # PRRC raters are 6-class (0-5) classifiers; *_label holds the argmax

# The regressor. Proxy tables are tiny (tens to hundreds of rows): leaves may hold 2 rows and a bin one
# value, or no split is ever made. One thread, deterministic, seeded: a refit gives the same w*.
LGBM_PARAMS = {
    "objective": "regression",
    "n_estimators": 500,
    "learning_rate": 0.05,
    "num_leaves": 4,
    "min_child_samples": 2,
    "min_child_weight": 1e-3,
    "min_data_in_bin": 1,
    "deterministic": True,
    "force_col_wise": True,
    "n_jobs": 1,
    "verbose": -1,
}


def valid_signals() -> list[str]:
    """The names ``aggregate.weights.signals`` accepts: PRRC dimensions and labels, scores.quality columns."""
    return [*PRRC_SIGNALS, *QUALITY_SIGNALS]


def check_signals(signals: list[str]) -> None:
    """Raises ``UsageError`` naming unknown or repeated signals and listing the valid ones."""
    if not signals:
        raise UsageError("aggregate.weights.signals: name at least one signal")
    unknown = [s for s in signals if s not in valid_signals()]
    if unknown:
        raise UsageError(
            f"aggregate.weights.signals: unknown {unknown}; valid: PRRC {', '.join(PRRC_SIGNALS)}; "
            f"scores.quality {', '.join(QUALITY_SIGNALS)}"
        )
    dupes = sorted({s for s in signals if signals.count(s) > 1})
    if dupes:
        raise UsageError(f"aggregate.weights.signals: repeated {dupes}")


def signal_tables(signals: list[str]) -> list[TableSpec]:
    """The score tables ``signal_frame`` reads for these signals."""
    out = []
    if any(s in PRRC_SIGNALS for s in signals):
        out.append(scores.PRRC)
    if any(s in QUALITY_SIGNALS for s in signals):
        out.append(scores.QUALITY)
    return out


def prrc_rater_set(prrc: DataFrame) -> str | None:
    """The ``raters`` value whose rows are used when scores.prrc holds several rater sets.

    The set that rated the most documents wins; ties go to the most recent run (latest ``scored_at``),
    then to the smaller ``raters`` string. None when there are no rows.
    """
    row = (
        prrc.groupBy("raters")
        .agg(F.count("*").alias("n"), F.max("scored_at").alias("latest"))
        .orderBy(F.desc("n"), F.desc("latest"), "raters")
        .first()
    )
    return None if row is None else row["raters"]


def signal_frame(lakehouse, signals: list[str], notes: list[str] | None = None) -> DataFrame:
    """``[doc_id, <signal>...]`` for the documents of silver.documents that have every signal.

    PRRC names come from scores.prrc (one rater set: ``prrc_rater_set``; a document has one row per
    rater set), the others are scores.quality columns. A document lacking any signal is left out; how
    many, and for which signals, is logged as a warning and appended to ``notes``.

    Args:
        lakehouse: the lakehouse to read.
        signals: names from ``valid_signals()``.
        notes: collects lines for the stage summary (the rater set used, documents left out).

    Raises:
        UsageError: an unknown signal name, or no document has every signal.
    """
    check_signals(signals)
    notes = notes if notes is not None else []
    docs = lakehouse.read(silver.DOCUMENTS).select("doc_id")
    out = docs
    prrc_cols = [s for s in signals if s in PRRC_SIGNALS]
    quality_cols = [s for s in signals if s in QUALITY_SIGNALS]
    if prrc_cols:
        prrc = lakehouse.read(scores.PRRC).join(docs, "doc_id", "left_semi")
        raters = prrc_rater_set(prrc)
        if raters is not None:
            notes.append(f"PRRC rater set: {raters}")
            rated = prrc.filter(F.col("raters") == raters).select("doc_id", *prrc_cols)
            out = out.join(rated, "doc_id", "left")
        else:
            out = out.select("doc_id", *[F.lit(None).cast("double").alias(s) for s in prrc_cols])
    if quality_cols:
        out = out.join(lakehouse.read(scores.QUALITY).select("doc_id", *quality_cols), "doc_id", "left")
    out = out.select("doc_id", *[F.col(s).cast("double").alias(s) for s in signals])
    complete = reduce(operator.and_, [F.col(s).isNotNull() for s in signals])
    counts = out.agg(
        F.count("*").alias("_docs"),
        F.count_if(complete).alias("_complete"),
        *[F.count_if(F.col(s).isNull()).alias(s) for s in signals],
    ).first()
    lacking = counts["_docs"] - counts["_complete"]
    if lacking:
        per = ", ".join(f"{s} {counts[s]:,}" for s in signals if counts[s])
        line = f"{lacking:,} of {counts['_docs']:,} documents lack a signal and are left out ({per})"
        log.warning("signal_frame: %s", line)
        notes.append(line)
    if not counts["_complete"]:
        tables = " and ".join(t.name for t in signal_tables(signals))
        raise UsageError(
            f"no document of silver.documents ({counts['_docs']:,}) has every signal of {signals}; "
            f"score them first ({tables})"
        )
    return out.filter(complete)


def normalize(df: DataFrame, signals: list[str]) -> DataFrame:
    """``[doc_id, <signal>...]`` → the same columns normalized over the pool to [0, 5].

    Min–max per signal; a PRRC ``*_label`` column (the argmax of k = 6 classes) as argmax / (k − 1) · 5;
    a signal constant over the pool → 0 (it cannot rank documents, so it adds the same to every Q).
    The arithmetic is ``jobs/sql/normalize_signals.sql``, run over a long ``(doc_id, signal, value,
    classes)`` view so one query serves any set of signals.
    """
    long = df.select(
        "doc_id",
        F.explode(
            F.array(
                *[
                    F.struct(
                        F.lit(s).alias("signal"),
                        F.col(s).cast("double").alias("value"),
                        F.lit(LABEL_CLASSES if s in PRRC_LABELS else None).cast("int").alias("classes"),
                    )
                    for s in signals
                ]
            )
        ).alias("x"),
    ).select("doc_id", "x.*")
    norm = run_sql(df.sparkSession, "normalize_signals", {"signals_long": long})
    return norm.groupBy("doc_id").pivot("signal", list(signals)).agg(F.first("norm"))


def _q(terms: list[Column]) -> Column:
    # A left fold, Σ in signal order, so Q is bit-for-bit the same however it is computed.
    return reduce(operator.add, terms)


def q_score(norm_df: DataFrame, weights: Mapping[str, float]) -> DataFrame:
    """``[doc_id, q]`` with Q = Σ_j w_j · norm_j, summed in the order of ``weights``.

    Raises:
        UsageError: a weighted signal is not a column of ``norm_df``.
    """
    missing = [s for s in weights if s not in norm_df.columns]
    if missing:
        raise UsageError(f"weights name signals {missing} that the normalized frame lacks")
    return norm_df.select("doc_id", _q([F.lit(float(w)) * F.col(s) for s, w in weights.items()]).alias("q"))


def q_scores(norm_df: DataFrame, proposals: Mapping[str, Mapping[str, float]]) -> DataFrame:
    """``[weights_id, doc_id, q]`` for every weight vector at once (the vectors are broadcast).

    Args:
        norm_df: ``normalize`` output.
        proposals: weights_id → signal → weight; every vector names the same signals in the same order.
    """
    signals = list(next(iter(proposals.values())))
    schema = StructType(
        [StructField("weights_id", StringType(), False)]
        + [StructField(f"_w_{s}", DoubleType(), False) for s in signals]
    )
    rows = [(wid, *[float(w[s]) for s in signals]) for wid, w in proposals.items()]
    wdf = norm_df.sparkSession.createDataFrame(rows, schema)
    q = _q([F.col(f"_w_{s}") * F.col(s) for s in signals])
    return norm_df.crossJoin(F.broadcast(wdf)).select("weights_id", "doc_id", q.alias("q"))


def select_top(q_long: DataFrame, n_select: int, hold: list[DataFrame] | None = None) -> DataFrame:
    """``[weights_id, doc_id, q]`` → each vector's ``n_select`` highest-Q documents, with ``rank``
    (1 first; ties by doc_id). Ranks come from ``jobs.ordered``, not a window per weights_id."""
    ranked = ordered(q_long, ["weights_id"], [F.desc("q"), F.asc("doc_id")], row_number="rank", hold=hold)
    return ranked.filter(F.col("rank") <= n_select)


# percentile_approx's accuracy: the value it returns is within n / QUANTILE_ACCURACY ranks of the asked one.
QUANTILE_ACCURACY = 10_000


def proposal_tops(
    norm_df: DataFrame,
    proposals: Mapping[str, Mapping[str, float]],
    n_select: int,
    n_docs: int,
    hold: list[DataFrame] | None = None,
) -> DataFrame:
    """Each proposal's ``n_select`` highest-Q documents (ties by doc_id) without the K × N table of every
    (proposal, document) Q.

    Two phases, exact: one pass computes, per proposal, an ``approx_percentile`` of Q low enough that at
    least ``n_select`` documents reach it (asked 2/``QUANTILE_ACCURACY`` of the pool below the cut, twice the
    sketch's rank error; a second pass counts and falls back to no cut where the count is short), then
    only each proposal's documents at or above its cut (about ``n_select`` + 3n/``QUANTILE_ACCURACY``) are
    exploded and ranked with ``jobs.ordered``. Q is the same double ``q_scores`` gives (same products, same
    left fold). The driver sees K cut values and K counts.

    Args:
        norm_df: ``normalize`` output.
        proposals: weights_id → signal → weight; every vector names the same signals in the same order.
        n_select: documents per proposal.
        n_docs: rows of ``norm_df``.
        hold: collects ``jobs.ordered``'s persisted intermediates (unpersist when done with the result).

    Returns:
        ``[weights_id, doc_id, q, rank]``, ``n_select`` rows per proposal (fewer only if the pool is).
    """
    signals = list(next(iter(proposals.values())))
    ids = list(proposals)
    q = {wid: _q([F.lit(float(proposals[wid][s])) * F.col(s) for s in signals]) for wid in ids}
    frac = 1.0 - n_select / max(n_docs, 1) - 2.0 / QUANTILE_ACCURACY
    cuts: dict[str, float | None] = dict.fromkeys(ids)
    if frac > 0:
        row = norm_df.agg(
            *[
                F.percentile_approx(q[w], F.lit(frac), QUANTILE_ACCURACY).alias(f"c{i}")
                for i, w in enumerate(ids)
            ]
        ).first()
        cuts = {w: row[f"c{i}"] for i, w in enumerate(ids)}
        counted = [(i, w) for i, w in enumerate(ids) if cuts[w] is not None]
        if counted:
            have = norm_df.agg(
                *[F.count_if(q[w] >= F.lit(cuts[w])).alias(f"n{i}") for i, w in counted]
            ).first()
            for i, w in counted:
                if have[f"n{i}"] < n_select:
                    cuts[w] = None  # the sketch missed (it should not): rank this proposal's whole pool
    terms = [
        F.struct(F.lit(w).alias("weights_id"), q[w].alias("q"), F.lit(cuts[w]).cast("double").alias("cut"))
        for w in ids
    ]
    keep = F.filter(F.array(*terms), lambda x: x["cut"].isNull() | (x["q"] >= x["cut"]))
    cands = norm_df.select("doc_id", F.explode(keep).alias("x")).select(
        "x.weights_id", "doc_id", F.col("x.q").alias("q")
    )
    return select_top(cands, n_select, hold)


def n_selected(top_share: float, n_docs: int) -> int:
    """Documents a proposal selects: ⌈top_share · N⌉, at least 1 (rounded first: 0.15·100 is 15.000…02)."""
    return max(1, math.ceil(round(top_share * n_docs, 9)))


def proposal_ids(k: int) -> list[str]:
    """p000, p001, … (wider when k > 1000)."""
    width = max(3, len(str(k - 1)))
    return [f"p{i:0{width}d}" for i in range(k)]


def dirichlet_proposals(signals: list[str], k: int, seed: int) -> dict[str, dict[str, float]]:
    """K Dirichlet(1) weight vectors from ``numpy.random.default_rng(seed)``: weights_id → signal → w."""
    draws = np.random.default_rng(seed).dirichlet(np.ones(len(signals)), size=k)
    draws = draws / draws.sum(axis=1, keepdims=True)
    return {
        wid: {s: float(x) for s, x in zip(signals, row, strict=True)}
        for wid, row in zip(proposal_ids(k), draws, strict=True)
    }


@dataclass
class FitResult:
    """w* and what the regressor says about it."""

    weights: np.ndarray
    heldout_spearman: float | None
    predicted_loss: float
    n_proposals: int
    n_candidates: int
    n_best: int
    folds: int
    note: str | None = None


def fit_weights(
    x: np.ndarray, y: np.ndarray, candidates: int, best: int, seed: int, folds: int = 5
) -> FitResult:
    """LightGBM weights → loss; w* = renormalized mean of the ``best`` lowest-predicted Dirichlet candidates.

    Args:
        x: ``[K, S]`` proposal weights.
        y: ``[K]`` validation losses (lower is better).
        candidates: Dirichlet(1) draws scored (``default_rng([seed, 1])``).
        best: how many are averaged; ties in predicted loss go to the earlier draw.
        seed: regressor seed; folds are shuffled by ``default_rng([seed, 2])``.
        folds: k of the k-fold held-out Spearman (at most K): each proposal's loss is predicted by a model
            trained without its fold; the Spearman of those predictions against the losses is reported.
    """
    import lightgbm as lgb
    from scipy.stats import spearmanr

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    k, s = x.shape
    params = {**LGBM_PARAMS, "random_state": seed}
    folds = max(2, min(folds, k))
    perm = np.random.default_rng([seed, 2]).permutation(k)
    oof = np.empty(k)
    for f in range(folds):
        test = perm[f::folds]
        train = np.setdiff1d(perm, test)
        oof[test] = lgb.LGBMRegressor(**params).fit(x[train], y[train]).predict(x[test])
    rho = float(spearmanr(oof, y).statistic) if np.ptp(oof) > 0 and np.ptp(y) > 0 else float("nan")
    rho = float(np.clip(rho, -1.0, 1.0))  # rounding must not push it past the gate's [-1, 1]
    model = lgb.LGBMRegressor(**params).fit(x, y)
    cand = np.random.default_rng([seed, 1]).dirichlet(np.ones(s), size=candidates)
    pred = model.predict(cand)
    chosen = np.lexsort((np.arange(candidates), pred))[:best]
    w = cand[chosen].mean(axis=0)
    w = w / w.sum()
    note = None
    if np.ptp(pred) == 0:
        note = (
            "the regressor made no split (too few or too similar proxy results): every candidate predicts "
            f"the same loss and w* is the mean of the first {best} candidates"
        )
    return FitResult(
        weights=w,
        heldout_spearman=None if math.isnan(rho) else rho,
        predicted_loss=float(model.predict(w[None, :])[0]),
        n_proposals=k,
        n_candidates=candidates,
        n_best=best,
        folds=folds,
        note=note,
    )


def metarater_scores(lakehouse, weights: dict[str, float], notes: list[str] | None = None) -> DataFrame:
    """Q under ``weights`` (signal → w, summed in this order): ``[doc_id, score]`` for the documents with
    every signal (``signal_frame`` → [0, 5] ``normalize`` → ``q_score``).

    Args:
        lakehouse: where scores.prrc / scores.quality live.
        weights: w*, in the order aggregate_weights sums them (the profile's signal order), so Q here is
            the same double as there.
        notes: collects ``signal_frame``'s lines (rater set used, documents lacking a signal).

    Raises:
        UsageError: no document has every signal, or ``weights`` names an unknown one.
    """
    signals = list(weights)
    norm = normalize(signal_frame(lakehouse, signals, notes), signals)
    return q_score(norm, weights).select("doc_id", F.col("q").cast("double").alias("score"))
