"""aggregate_weights: Meta-rater's learned signal weights → gold.rater_weights.

The loop (DESIGN.md, "Meta-rater"):
  signals    each document's PRRC ratings (scores.prrc) and quality signals (scores.quality), the ones
             ``aggregate.weights.signals`` names, normalized over the pool to [0, 5]
             (``jobs/sql/normalize_signals.sql``); Q(x) = Σ_j w_j · norm_j(x).
  propose    K Dirichlet(1) weight vectors p000…, seeded → gold.rater_weights (method 'proposal'); each
             one's selection, the top ``top_share`` of documents by Q (ties by doc_id), is the proxy
             manifest gold.rater_proposals (weights_id, doc_id, rank, q, n_tokens). The selections come
             from a per-proposal cut and an exact rank of the documents above it (``proposal_tops``),
             not from a K × N table ranked in a window per proposal.
  proxy      a validation loss per proposal → gold.proxy_results. ``proxy: table`` reads them from
             ``proxy_results`` (CSV/JSONL weights_id, val_loss from real proxy training runs on the
             manifest). ``proxy: builtin`` is the local stand-in: a smoothed bigram LM trained on each
             selection and scored on the ref.benchmarks texts, for every proposal in one Spark SQL query
             (``jobs/sql/metarater_proxy_lm.sql``).
  fit        a LightGBM regressor weights → val_loss, its held-out Spearman from k-fold predictions;
             ``candidates`` Dirichlet(1) draws are scored and w* = the mean of the ``best`` lowest
             predicted → gold.rater_weights weights_id 'final' (method 'fit').

One stage, two shapes: with the builtin proxy one run does the whole loop and publishes every table
together; with ``proxy: table`` a run without ``proxy_results`` proposes (publish, train proxies on
gold.rater_proposals elsewhere), and a run with it fits. Each publish replaces gold.rater_weights whole:
it holds one loop, its proposals and (after a fit) its w*; a fit copies the proposal rows unchanged.

Run it:  corpuslake stage aggregate_weights --conf conf/local.yaml
"""

from __future__ import annotations

import json
import logging
import math
import operator
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import reduce

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StringType, StructField, StructType

from jobs import freshness
from jobs.config import Conf, WeightsConf
from jobs.gates import Output, publish
from jobs.ordered import ordered
from jobs.queries import run_sql
from jobs.runtime import JobContext, UsageError, job_parser, run_job
from schemas import gold, ref, scores, silver
from schemas.base import TableSpec
from udfs.quality import SIGNALS

STAGE = "aggregate_weights"
READS = (silver.DOCUMENTS, scores.PRRC, scores.QUALITY, ref.BENCHMARKS)
WATCH = freshness.Watch(
    READS,
    ("aggregate.weights",),
    files=lambda conf: [p] if (p := conf.aggregate.weights.proxy_results) else [],
)

log = logging.getLogger(__name__)

PRRC_LABELS = tuple(f"{d}_label" for d in scores.PRRC_DIMENSIONS)
PRRC_SIGNALS = (*scores.PRRC_DIMENSIONS, *PRRC_LABELS)
QUALITY_SIGNALS = tuple(s.name for s in SIGNALS)
LABEL_CLASSES = 6  # PRRC raters are 6-class (0-5) classifiers; *_label holds the argmax
FINAL = "final"

# Words (runs of letters and digits) and single other non-space characters, after lowercasing: the
# builtin proxy's tokenizer (Java regex, run by Spark's regexp_extract_all).
TOKEN_PATTERN = r"[\p{L}\p{N}]+|[^\s\p{L}\p{N}]"
BOS = "<s>"  # the history of a text's first token; never a token (runs of letters/digits, or one other char)

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


# ----------------------------------------------------------------------------------------- signals


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


# ----------------------------------------------------------------------------------------- proposals


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


# ----------------------------------------------------------------------------------------- proxies


def tokenize(text: Column) -> Column:
    """The builtin proxy's tokens: ``TOKEN_PATTERN`` matches of the lowercased text."""
    return F.regexp_extract_all(F.lower(text), F.lit(TOKEN_PATTERN), 0)


def bigrams(toks: Column) -> Column:
    """One ``struct(prev, tok)`` per token of a token array; prev is ``'<s>'`` for the first token."""
    pairs = F.zip_with(
        F.concat(F.array(F.lit(BOS)), toks), toks, lambda p, t: F.struct(p.alias("prev"), t.alias("tok"))
    )
    # zip_with pads the shorter array with a null: the pair after the last token.
    return F.filter(pairs, lambda b: b["tok"].isNotNull())


def builtin_proxy(selection: DataFrame, docs: DataFrame, val_texts: DataFrame, mu: float) -> pd.DataFrame:
    """The local stand-in for proxy training runs, for every proposal in one query.

    Per proposal, a bigram LM (Dirichlet-smoothed toward an add-one unigram LM, mass ``mu``) trained on
    the proposal's selected documents, scored as cross-entropy (nats per token) on the validation texts;
    see ``jobs/sql/metarater_proxy_lm.sql`` for the formulas. Selections are joined to per-document
    counts of the n-grams the validation texts need: a few Spark jobs for all proposals, never a loop.
    Selected documents are one row each (their bigrams as an array, counted inside the task), and no
    shuffle is keyed by the proposal alone.

    Args:
        selection: ``[weights_id, doc_id]``, each proposal's training documents.
        docs: ``[doc_id, text]`` (a superset of the selected documents).
        val_texts: ``[text]``, the held-out validation texts.
        mu: smoothing mass.

    Returns:
        ``[weights_id, val_loss, train_docs, train_tokens, val_tokens]``, one row per proposal.
    """
    spark = selection.sparkSession
    sel = selection.select("weights_id", "doc_id")
    ids = sorted(r["weights_id"] for r in sel.select("weights_id").distinct().collect())
    proxy_ids = spark.createDataFrame([(w,) for w in ids], "weights_id string")
    proxy_docs = (
        docs.join(sel.select("doc_id").distinct(), "doc_id", "left_semi")
        .select("doc_id", bigrams(tokenize(F.col("text"))).alias("bigrams"))
        .persist()
    )
    val_bigrams = (
        val_texts.select(tokenize(F.col("text")).alias("tokens"))
        .select(F.inline(bigrams(F.col("tokens"))))
        .groupBy("prev", "tok")
        .agg(F.count("*").alias("n"))
        .persist()
    )
    try:
        views = {
            "proxy_selection": sel,
            "proxy_ids": proxy_ids,
            "proxy_docs": proxy_docs,
            "val_bigrams": val_bigrams,
        }
        out = run_sql(spark, "metarater_proxy_lm", views, mu=float(mu)).toPandas()
    finally:
        proxy_docs.unpersist()
        val_bigrams.unpersist()
    return out.sort_values("weights_id").reset_index(drop=True)


def read_proxy_results(path: str, proposal_ids: list[str]) -> pd.DataFrame:
    """``[weights_id, val_loss]`` from real proxy runs (CSV with a header, or JSONL), one per proposal.

    Raises:
        UsageError: the file is missing or unreadable, a column is missing, a loss is not a finite
            number, a weights_id repeats, is not a proposal of gold.rater_weights, or a proposal has no
            result.
    """
    where = f"aggregate.weights.proxy_results {path}"
    if not os.path.isfile(path):
        raise UsageError(f"{where}: no such file")
    ext = path.lower().rsplit(".", 1)[-1]
    if ext not in ("csv", "jsonl", "json", "ndjson"):
        raise UsageError(f"{where}: expected a .csv (with a header) or a .jsonl file")
    try:
        if ext == "csv":
            df = pd.read_csv(path, dtype={"weights_id": str})
        else:
            df = pd.read_json(path, lines=True, dtype={"weights_id": str})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: not readable as {ext}: {str(exc).splitlines()[0]}") from None
    missing_cols = [c for c in ("weights_id", "val_loss") if c not in df.columns]
    if missing_cols:
        raise UsageError(f"{where}: missing column(s) {missing_cols}; found {list(df.columns)}")
    df = df[["weights_id", "val_loss"]].copy()
    df["weights_id"] = df["weights_id"].astype("string").str.strip()
    loss = pd.to_numeric(df["val_loss"], errors="coerce")
    bad = df[df["weights_id"].isna() | ~np.isfinite(loss.astype(float))]
    if len(bad):
        rows = [f"record {i + 1}: {r.weights_id!r}, {r.val_loss!r}" for i, r in bad.head(5).iterrows()]
        raise UsageError(f"{where}: {len(bad)} row(s) without a weights_id or a finite val_loss: {rows}")
    df["val_loss"] = loss.astype(float)
    dupes = sorted(df.loc[df["weights_id"].duplicated(), "weights_id"].unique())
    if dupes:
        raise UsageError(f"{where}: weights_id repeated: {dupes[:10]}")
    known = set(proposal_ids)
    unknown = sorted(set(df["weights_id"]) - known)
    if unknown:
        raise UsageError(
            f"{where}: unknown weights_id {unknown[:10]}{' …' if len(unknown) > 10 else ''}; "
            f"gold.rater_weights holds proposals {proposal_ids[0]}…{proposal_ids[-1]} ({len(proposal_ids)})"
        )
    absent = [i for i in proposal_ids if i not in set(df["weights_id"])]
    if absent:
        raise UsageError(
            f"{where}: no result for {len(absent)} of {len(proposal_ids)} proposals: {absent[:10]}"
            f"{' …' if len(absent) > 10 else ''}; add their runs (or re-propose with fewer proposals)"
        )
    return df.set_index("weights_id").loc[proposal_ids].reset_index()


# ----------------------------------------------------------------------------------------- fit


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


# ----------------------------------------------------------------------------------------- gates


def weights_check(staged: DataFrame) -> DataFrame:
    """Adds Σ weight and signal count per weights_id, and the batch's distinct proposal ids."""
    by_id = Window.partitionBy("weights_id")
    n_prop = staged.filter(F.col("method") == "proposal").agg(
        F.countDistinct("weights_id").alias(gold.N_PROPOSALS)
    )
    return (
        staged.withColumn(gold.WEIGHT_SUM, F.sum("weight").over(by_id))
        .withColumn(gold.GROUP_SIGNALS, F.count("*").over(by_id))
        .crossJoin(n_prop)
    )


def proposals_check(lakehouse):
    """Adds each proposal's selected-document count and the doc_ids missing from silver.documents."""

    def check(staged: DataFrame) -> DataFrame:
        ids = lakehouse.read(silver.DOCUMENTS).select("doc_id", F.lit(True).alias("_in_silver"))
        # One count per proposal, broadcast back: a window by weights_id would give each proposal's
        # selection to one task.
        per = staged.groupBy("weights_id").agg(F.count("*").alias(gold.SELECTED_PER_PROPOSAL))
        return (
            staged.join(F.broadcast(per), "weights_id", "left")
            .join(ids, "doc_id", "left")
            .withColumn(gold.MISSING_DOC, F.when(F.col("_in_silver").isNull(), F.col("doc_id")))
            .drop("_in_silver")
        )

    return check


# ----------------------------------------------------------------------------------------- stage


@dataclass
class Proposed:
    """One propose step's results, before publishing."""

    signals: list[str]
    weights: dict[str, dict[str, float]]
    selection: DataFrame  # [weights_id, doc_id, rank, q, n_tokens], persisted
    cached: list[DataFrame]  # what selection was computed from, persisted: unpersisted with it
    n_docs: int
    n_select: int
    versions: dict[str, int | None]
    notes: list[str]

    def release(self) -> None:
        self.selection.unpersist()
        for df in self.cached:
            df.unpersist()


def _versions(lakehouse, specs) -> dict[str, int | None]:
    return {s.name: lakehouse.version(s) for s in specs}


def _run_values(ctx: JobContext, versions: Mapping[str, int | None]) -> dict:
    return {
        "run_id": ctx.run.run_id,
        "computed_at": ctx.run.started_at,
        "table_versions": json.dumps(dict(versions), sort_keys=True),
    }


def _propose(ctx: JobContext) -> Proposed:
    wc: WeightsConf = ctx.conf.aggregate.weights
    lh = ctx.lakehouse
    signals = list(wc.signals)
    check_signals(signals)
    versions = _versions(lh, [silver.DOCUMENTS, *signal_tables(signals)])
    notes: list[str] = []
    norm = normalize(signal_frame(lh, signals, notes), signals).persist()
    n_docs = norm.count()
    n_select = n_selected(wc.top_share, n_docs)
    props = dirichlet_proposals(signals, wc.proposals, wc.seed)
    tokens = lh.read(silver.DOCUMENTS).select("doc_id", F.col("n_tokens_est").alias("n_tokens"))
    hold: list[DataFrame] = []
    selection = (
        proposal_tops(norm, props, n_select, n_docs, hold)
        .join(tokens, "doc_id")
        .select("weights_id", "doc_id", F.col("rank").cast("int").alias("rank"), "q", "n_tokens")
        .persist()
    )
    selection.count()  # materialized once: the manifest, the proxy and the summary all read it
    # norm and the ranking stay cached until the stage ends (``Proposed.release``): unpersisting what a
    # cached frame was computed from can make Spark recompile it, and the proxy would redo the ranking.
    return Proposed(signals, props, selection, [norm, *hold], n_docs, n_select, versions, notes)


def _proposal_rows(ctx: JobContext, p: Proposed) -> list[dict]:
    run = _run_values(ctx, p.versions)
    return [
        {"weights_id": wid, "signal": s, "weight": w[s], "method": "proposal", **run}
        for wid, w in p.weights.items()
        for s in p.signals
    ]


def _final_rows(ctx, signals: list[str], fit: FitResult, versions) -> list[dict]:
    run = _run_values(ctx, versions)
    return [
        {
            "weights_id": FINAL,
            "signal": s,
            "weight": float(w),
            "method": "fit",
            "heldout_spearman": fit.heldout_spearman,
            "n_proposals": fit.n_proposals,
            "n_candidates": fit.n_candidates,
            "n_best": fit.n_best,
            "predicted_loss": fit.predicted_loss,
            **run,
        }
        for s, w in zip(signals, fit.weights, strict=True)
    ]


def _weights_output(ctx: JobContext, rows: list[dict], signals: list[str], k: int) -> Output:
    df = ctx.spark.createDataFrame(rows, gold.RATER_WEIGHTS.schema)
    params = {"checked": True, "signals": len(signals), "proposals": k, "expected_rows": len(rows)}
    return Output(gold.RATER_WEIGHTS, df, "overwrite", params, check=weights_check)


def _manifest_output(ctx: JobContext, p: Proposed) -> Output:
    df = p.selection.select("*", *[F.lit(v).alias(k) for k, v in _run_values(ctx, p.versions).items()])
    params = {"checked": True, "selected": p.n_select, "expected_rows": p.n_select * len(p.weights)}
    return Output(gold.RATER_PROPOSALS, df, "overwrite", params, check=proposals_check(ctx.lakehouse))


def _proxy_output(ctx: JobContext, results: pd.DataFrame, source: str, detail: str, versions) -> Output:
    run = _run_values(ctx, versions)
    rows = [
        {
            "weights_id": r["weights_id"],
            "val_loss": float(r["val_loss"]),
            "source": source,
            **{c: _int_or_none(r.get(c)) for c in ("train_docs", "train_tokens", "val_tokens")},
            "detail": detail,
            **run,
        }
        for r in results.to_dict("records")
    ]
    df = ctx.spark.createDataFrame(rows, gold.PROXY_RESULTS.schema)
    return Output(gold.PROXY_RESULTS, df, "overwrite", {"expected_rows": len(rows)})


def _int_or_none(v) -> int | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)


def _run_builtin(ctx: JobContext, selection: DataFrame) -> tuple[pd.DataFrame, str]:
    """The builtin proxy over ``selection`` [weights_id, doc_id]: results and a one-line description."""
    wc = ctx.conf.aggregate.weights
    lh = ctx.lakehouse
    val = lh.read(ref.BENCHMARKS).select("text")
    n_val = val.count()
    if not n_val:
        raise UsageError(
            "proxy=builtin scores each proposal's LM on the ref.benchmarks texts, and ref.benchmarks is "
            "empty: run load_refs first, or train real proxies and use proxy: table"
        )
    docs = lh.read(silver.DOCUMENTS).select("doc_id", "text")
    res = builtin_proxy(selection, docs, val, wc.proxy_mu)
    detail = (
        f"bigram LM smoothed toward an add-one unigram LM (mu {wc.proxy_mu:g}), trained on the proposal's "
        f"selection; cross-entropy in nats per token on {n_val:,} ref.benchmarks texts"
    )
    return res, detail


def _fit(ctx: JobContext, signals, weights: Mapping[str, Mapping[str, float]], results: pd.DataFrame):
    wc = ctx.conf.aggregate.weights
    ids = list(results["weights_id"])
    x = np.array([[weights[i][s] for s in signals] for i in ids])
    return fit_weights(x, results["val_loss"].to_numpy(float), wc.candidates, wc.best, wc.seed, wc.cv_folds)


def _read_proposals(ctx: JobContext) -> tuple[list[str], dict[str, dict[str, float]], list[dict], int]:
    """The proposals of gold.rater_weights: signals (conf order), weights, rows, and the table version."""
    wc = ctx.conf.aggregate.weights
    lh = ctx.lakehouse
    version = lh.version(gold.RATER_WEIGHTS)
    proposals = lh.read(gold.RATER_WEIGHTS).filter(F.col("method") == "proposal")
    rows = [r.asDict() for r in proposals.collect()] if version is not None else []
    if not rows:
        raise UsageError(
            "gold.rater_weights holds no proposals: run aggregate_weights without "
            "aggregate.weights.proxy_results first (it proposes and writes the manifest)"
        )
    ctx.run.tables_read[gold.RATER_WEIGHTS.name] = version
    weights: dict[str, dict[str, float]] = {}
    for r in sorted(rows, key=lambda r: (r["weights_id"], r["signal"])):
        weights.setdefault(r["weights_id"], {})[r["signal"]] = r["weight"]
    signals = list(wc.signals)
    have = sorted({r["signal"] for r in rows})
    if have != sorted(signals):
        raise UsageError(
            f"the proposals in gold.rater_weights weigh {have}, the profile names {signals}: "
            "re-propose (run without proxy_results) or set aggregate.weights.signals back"
        )
    if len(weights) != wc.proposals:
        raise UsageError(
            f"gold.rater_weights holds {len(weights)} proposals, the profile asks for {wc.proposals}: "
            "re-propose or set aggregate.weights.proposals back"
        )
    return signals, weights, rows, version


def _summary(ctx, mode: str, lines: list[str], commits) -> str:
    head = f"{STAGE} run {ctx.run.run_id} ({mode})"
    written = ", ".join(f"{name} v{c.version}" for name, c in commits.items())
    return "\n".join([head, *[f"  {line}" for line in lines], f"  -> {written}"])


def _propose_lines(p: Proposed, wc: WeightsConf) -> list[str]:
    tok = p.selection.groupBy("weights_id").agg(F.sum("n_tokens").alias("t")).agg(F.min("t"), F.max("t"))
    lo, hi = tok.first()
    return [
        f"signals: {', '.join(p.signals)} over {p.n_docs:,} documents",
        *p.notes,
        f"proposals: {len(p.weights)} Dirichlet(1) vectors (seed {wc.seed}), each selecting the top "
        f"{p.n_select:,} documents ({wc.top_share:.0%}) by Q: {lo:,}-{hi:,} tokens (n_tokens_est)",
    ]


def _fit_lines(signals, fit: FitResult, results: pd.DataFrame, source: str) -> list[str]:
    rho = "n/a" if fit.heldout_spearman is None else f"{fit.heldout_spearman:.3f}"
    lines = [
        f"proxy ({source}): val_loss {results['val_loss'].min():.4f}-{results['val_loss'].max():.4f} "
        f"over {len(results)} proposals",
        f"fit: LightGBM on {fit.n_proposals} proxy results, held-out Spearman {rho} ({fit.folds}-fold); "
        f"w* = mean of the best {fit.n_best:,} of {fit.n_candidates:,} candidates, "
        f"predicted loss {fit.predicted_loss:.4f}",
        "w*: " + ", ".join(f"{s} {w:.3f}" for s, w in zip(signals, fit.weights, strict=True)),
    ]
    if fit.note:
        lines.append(f"warning: {fit.note}")
    return lines


def propose(ctx: JobContext) -> str:
    """Propose only: K weight vectors and their selections → gold.rater_weights, gold.rater_proposals.

    Replaces any earlier loop (a w* of older proposals is dropped with them).
    """
    wc = ctx.conf.aggregate.weights
    p = _propose(ctx)
    try:
        outputs = [
            _weights_output(ctx, _proposal_rows(ctx, p), p.signals, len(p.weights)),
            _manifest_output(ctx, p),
        ]
        commits = publish(ctx.lakehouse, ctx.run, outputs)
        lines = _propose_lines(p, wc)
    finally:
        p.release()
    ctx.run.rows_in, ctx.run.rows_out = p.n_docs, p.n_select * len(p.weights)
    lines.append(
        "next: train a proxy model on each proposal's documents in gold.rater_proposals, write "
        "weights_id,val_loss to a CSV/JSONL, set aggregate.weights.proxy_results to it and run again"
        if wc.proxy == "table"
        else "next: run fit (builtin proxy)"
    )
    return _summary(ctx, "propose", lines, commits)


def fit(ctx: JobContext) -> str:
    """Fit only: proxy results for the proposals in gold.rater_weights → w* (weights_id 'final').

    ``proxy: table`` reads ``proxy_results``; ``proxy: builtin`` runs the builtin proxy on the manifest
    in gold.rater_proposals. Publishes gold.rater_weights (the proposal rows unchanged, plus w*) and
    gold.proxy_results.
    """
    wc = ctx.conf.aggregate.weights
    lh = ctx.lakehouse
    signals, weights, rows, version = _read_proposals(ctx)
    versions: dict[str, int | None] = {gold.RATER_WEIGHTS.name: version}
    ids = sorted(weights)
    if wc.proxy == "table":
        if wc.proxy_results is None:
            raise UsageError("proxy: table needs aggregate.weights.proxy_results (weights_id, val_loss)")
        results = read_proxy_results(wc.proxy_results, ids)
        source, detail = "table", os.path.abspath(wc.proxy_results)
    else:
        versions.update(_versions(lh, [gold.RATER_PROPOSALS, silver.DOCUMENTS, ref.BENCHMARKS]))
        if versions[gold.RATER_PROPOSALS.name] is not None:
            ctx.run.tables_read[gold.RATER_PROPOSALS.name] = versions[gold.RATER_PROPOSALS.name]
        selection = lh.read(gold.RATER_PROPOSALS).select("weights_id", "doc_id")
        results, detail = _run_builtin(ctx, selection)
        if sorted(results["weights_id"]) != ids:
            raise UsageError(
                "gold.rater_proposals does not hold a selection for every proposal of gold.rater_weights: "
                "re-propose"
            )
        source = "builtin"
    result = _fit(ctx, signals, weights, results)
    outputs = [
        _weights_output(ctx, rows + _final_rows(ctx, signals, result, versions), signals, len(ids)),
        _proxy_output(ctx, results, source, detail, versions),
    ]
    commits = publish(lh, ctx.run, outputs)
    ctx.run.rows_in, ctx.run.rows_out = len(ids), len(signals)
    return _summary(ctx, f"fit, proxy {source}", _fit_lines(signals, result, results, source), commits)


def whole_loop(ctx: JobContext) -> str:
    """Propose → builtin proxy → fit in one run; every table is published together."""
    wc = ctx.conf.aggregate.weights
    p = _propose(ctx)
    try:
        versions = {**p.versions, **_versions(ctx.lakehouse, [ref.BENCHMARKS])}
        results, detail = _run_builtin(ctx, p.selection)
        result = _fit(ctx, p.signals, p.weights, results)
        rows = _proposal_rows(ctx, p) + _final_rows(ctx, p.signals, result, versions)
        outputs = [
            _weights_output(ctx, rows, p.signals, len(p.weights)),
            _manifest_output(ctx, p),
            _proxy_output(ctx, results, "builtin", detail, versions),
        ]
        commits = publish(ctx.lakehouse, ctx.run, outputs)
        lines = _propose_lines(p, wc) + _fit_lines(p.signals, result, results, "builtin")
    finally:
        p.release()
    ctx.run.rows_in, ctx.run.rows_out = p.n_docs, len(rows)
    return _summary(ctx, "propose, builtin proxy, fit", lines, commits)


def aggregate_weights(ctx: JobContext) -> str:
    """The stage body: the whole loop with the builtin proxy; with ``proxy: table``, propose while
    ``proxy_results`` is unset, fit once it names the results of the proxy runs."""
    wc = ctx.conf.aggregate.weights
    if wc.proxy == "builtin":
        return whole_loop(ctx)
    return propose(ctx) if wc.proxy_results is None else fit(ctx)


def preflight(conf: Conf) -> None:
    """Signal names known; a configured proxy results file exists (no Spark needed)."""
    wc = conf.aggregate.weights
    check_signals(list(wc.signals))
    path = wc.proxy_results
    if wc.proxy == "table" and path is not None and "://" not in path and not os.path.isfile(path):
        raise UsageError(f"{conf.source_file}: aggregate.weights.proxy_results: no such file {path!r}")


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``corpuslake-aggregate-weights`` and ``spark-submit jobs/aggregate_weights.py``."""
    args = job_parser(STAGE, "Meta-rater: learn the weights of the rating signals.").parse_args(argv)
    return run_job(STAGE, args, aggregate_weights, READS, preflight=preflight, watch=WATCH)


if __name__ == "__main__":
    raise SystemExit(main())
