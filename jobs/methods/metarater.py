"""Meta-rater (Zhuang et al. 2025): rating signals combined with weights learned from proxy runs.

signals    each document's PRRC ratings (scores.prrc: the argmax labels by default, or the expected
           class), quality signals (scores.quality) and columns of any per-document score table named
           ``<layer>.<table>.<column>``, normalized over the pool to [0, 5]
           (``jobs/sql/normalize_signals.sql``); Q(x) = Σ_j w_j · norm_j(x), summed in signal order.
propose    K Dirichlet(1) weight vectors p000…, seeded; each one's selection is the top share of
           documents by Q (ties by doc_id), from a per-proposal cut and an exact rank of the documents
           above it (``proposal_tops``), not from a K × N table ranked in a window per proposal.
proxy      a validation loss per proposal: ``jobs.methods.metarater_proxy``.
fit        a LightGBM regressor weights → val_loss (``jobs.methods.metarater_fit``): trained on the
           first proposals, early-stopped and judged (Spearman) on the last ones; Dirichlet(1)
           candidates are scored and w* = the mean of the best lowest predicted.
"""

from __future__ import annotations

import json
import logging
import math
import operator
from collections.abc import Mapping
from functools import reduce

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, NumericType, StringType, StructField, StructType

from jobs.ordered import ordered
from jobs.queries import run_sql
from jobs.runtime import UsageError
from jobs.tables.base import join_path
from schemas import scores, silver
from schemas.base import TableSpec
from udfs.quality import SIGNALS

log = logging.getLogger(__name__)

PRRC_LABELS = tuple(f"{d}_label" for d in scores.PRRC_DIMENSIONS)
PRRC_SIGNALS = (*scores.PRRC_DIMENSIONS, *PRRC_LABELS)
QUALITY_SIGNALS = tuple(s.name for s in SIGNALS)
LABEL_CLASSES = 6  # PRRC raters are 6-class (0-5) classifiers; *_label holds the argmax


def valid_signals() -> list[str]:
    """The bare names ``aggregate.weights.signals`` accepts: PRRC dimensions and labels, scores.quality
    columns. Any other table's column is named ``<layer>.<table>.<column>`` (``table_signal``)."""
    return [*PRRC_SIGNALS, *QUALITY_SIGNALS]


def table_signal(signal: str) -> tuple[str, str] | None:
    """``(layer.table, column)`` for a signal named ``<layer>.<table>.<column>``, else None."""
    parts = signal.split(".", 2)
    if len(parts) == 3 and all(p.strip() for p in parts) and "`" not in signal:
        return f"{parts[0]}.{parts[1]}", parts[2]
    return None


def check_signals(signals: list[str]) -> None:
    """Raises ``UsageError`` naming unknown or repeated signals and listing the valid ones."""
    if not signals:
        raise UsageError("aggregate.weights.signals: name at least one signal")
    unknown = [s for s in signals if s not in valid_signals() and table_signal(s) is None]
    if unknown:
        raise UsageError(
            f"aggregate.weights.signals: unknown {unknown}; valid: PRRC {', '.join(PRRC_SIGNALS)}; "
            f"scores.quality {', '.join(QUALITY_SIGNALS)}; or <layer>.<table>.<column> of a per-document "
            "score table"
        )
    dupes = sorted({s for s in signals if signals.count(s) > 1})
    if dupes:
        raise UsageError(f"aggregate.weights.signals: repeated {dupes}")


def score_table(name: str) -> TableSpec:
    """A placeholder spec for a per-document score table named in the signals: its path, for
    ``version``/``exists`` (``read`` needs the schema: ``_table_spec``)."""
    return TableSpec(name=name, schema=StructType([]), description="per-document score table (signal)")


def signal_tables(signals: list[str]) -> list[TableSpec]:
    """The score tables ``signal_frame`` reads for these signals."""
    out = []
    if any(s in PRRC_SIGNALS for s in signals):
        out.append(scores.PRRC)
    if any(s in QUALITY_SIGNALS for s in signals):
        out.append(scores.QUALITY)
    extra = [t[0] for s in signals if s not in valid_signals() and (t := table_signal(s))]
    out += [score_table(name) for name in dict.fromkeys(extra)]
    return out


def signal_table_logs(signals: list[str], warehouse: str) -> list[str]:
    """Globs of the Delta log files of the ``<layer>.<table>.<column>`` signals' tables (not PRRC's or
    scores.quality's): a stage's freshness watch lists them as input files, since it lists tables by spec
    and these have none, so a new commit to one (a new log file) makes the next run recompute."""
    known = {scores.PRRC.name, scores.QUALITY.name}
    names = sorted({t.name for t in signal_tables(signals)} - known)
    return [join_path(warehouse, *n.split(".", 1), "_delta_log", "*") for n in names]


def signal_class_counts(signals: list[str], classes: Mapping[str, int] | None = None) -> dict[str, int]:
    """signal → k for the signals that are class outputs: every PRRC ``*_label`` (k = 6), then ``classes``."""
    out = {s: LABEL_CLASSES for s in signals if s in PRRC_LABELS}
    out.update({s: int(k) for s, k in (classes or {}).items() if s in signals})
    return out


def sig(signal: str) -> Column:
    """The column of a signal: quoted, since ``<layer>.<table>.<column>`` names hold dots."""
    return F.col(f"`{signal}`")


def _table_spec(lakehouse, name: str, columns: list[str], signals: list[str]) -> TableSpec:
    """The spec of a per-document score table from its Delta log (schema and partitioning), after
    checking that it exists and has ``doc_id`` and numeric ``columns``.

    Raises:
        UsageError: the table is missing, lacks doc_id or a column, or a column is not numeric.
    """
    from deltalake import DeltaTable

    where = f"aggregate.weights.signals {signals}"
    probe = score_table(name)
    if not lakehouse.exists(probe):
        raise UsageError(f"{where}: no table {name} at {lakehouse.path(probe)}")
    dt = DeltaTable(lakehouse.path(probe), storage_options=lakehouse.storage_options)
    # A Delta schema is Spark's StructType JSON.
    schema = StructType.fromJson(json.loads(dt.schema().to_json()))
    types = {f.name: f.dataType for f in schema.fields}
    missing = [c for c in ["doc_id", *columns] if c not in types]
    if missing:
        raise UsageError(f"{where}: {name} has no column {missing}; its columns: {list(types)}")
    bad = [f"{c} ({types[c].simpleString()})" for c in columns if not isinstance(types[c], NumericType)]
    if bad:
        raise UsageError(f"{where}: {name}: a signal must be a numeric column, not {', '.join(bad)}")
    parts = tuple(dt.metadata().partition_columns)
    return TableSpec(name=name, schema=schema, description=probe.description, partition_by=parts)


def _finite(c: Column) -> Column:
    # NaN and ±inf from an outside table would make the pool's min or max meaningless: treat them as missing.
    return F.when(F.isnan(c) | (F.abs(c) == F.lit(float("inf"))), F.lit(None)).otherwise(c)


def _extra_signals(lakehouse, signals: list[str], docs: DataFrame) -> list[DataFrame]:
    """``[doc_id, <layer>.<table>.<column> …]`` per per-document score table named in ``signals``.

    Raises:
        UsageError: see ``_table_spec``; or a doc_id has several rows in the table.
    """
    by_table: dict[str, list[str]] = {}
    for s in signals:
        if s not in valid_signals() and (t := table_signal(s)):
            by_table.setdefault(t[0], []).append(s)
    out = []
    for name, sigs in by_table.items():
        cols = [table_signal(s)[1] for s in sigs]
        table = lakehouse.read(_table_spec(lakehouse, name, cols, signals)).join(docs, "doc_id", "left_semi")
        n = table.agg(F.count("*").alias("rows"), F.count_distinct("doc_id").alias("ids")).first()
        if n["rows"] != n["ids"]:
            raise UsageError(
                f"aggregate.weights.signals: {name} has {n['rows']:,} rows for {n['ids']:,} documents of "
                "silver.documents; a signal table needs one row per doc_id"
            )
        values = [_finite(F.col(f"`{c}`").cast("double")).alias(s) for c, s in zip(cols, sigs, strict=True)]
        out.append(table.select("doc_id", *values))
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
    rater set), bare others are scores.quality columns, and ``<layer>.<table>.<column>`` is a numeric
    column of that table (one row per doc_id; NaN and ±inf count as missing). A document lacking any
    signal is left out; how many, and for which signals, is logged as a warning and appended to ``notes``.

    Args:
        lakehouse: the lakehouse to read.
        signals: names from ``valid_signals()`` or ``<layer>.<table>.<column>``.
        notes: collects lines for the stage summary (the rater set used, documents left out).

    Raises:
        UsageError: an unknown signal name, a score table that is missing, lacks the column, holds a
            non-numeric one or several rows per doc_id, or no document has every signal.
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
    for table in _extra_signals(lakehouse, signals, docs):
        out = out.join(table, "doc_id", "left")
    out = out.select("doc_id", *[sig(s).cast("double").alias(s) for s in signals])
    complete = reduce(operator.and_, [sig(s).isNotNull() for s in signals])
    counts = out.agg(
        F.count("*").alias("_docs"),
        F.count_if(complete).alias("_complete"),
        *[F.count_if(sig(s).isNull()).alias(s) for s in signals],
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


def normalize(df: DataFrame, signals: list[str], classes: Mapping[str, int] | None = None) -> DataFrame:
    """``[doc_id, <signal>...]`` → the same columns normalized over the pool to [0, 5].

    Min–max per signal; a class output (the argmax of k classes: every PRRC ``*_label``, k = 6, and the
    signals ``classes`` names) as argmax / (k − 1) · 5, Meta-rater's normalization of its raters' labels;
    a continuous signal constant over the pool → 0 (it cannot rank documents, so it adds the same to
    every Q). The arithmetic is ``jobs/sql/normalize_signals.sql``, run over a long ``(doc_id, signal,
    value, classes)`` view so one query serves any set of signals.

    Args:
        df: ``signal_frame`` output.
        signals: the columns to normalize.
        classes: signal → k for class outputs other than the PRRC labels (``aggregate.weights.classes``).
    """
    k = signal_class_counts(signals, classes)
    long = df.select(
        "doc_id",
        F.explode(
            F.array(
                *[
                    F.struct(
                        F.lit(s).alias("signal"),
                        sig(s).cast("double").alias("value"),
                        F.lit(k.get(s)).cast("int").alias("classes"),
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
    return norm_df.select("doc_id", _q([F.lit(float(w)) * sig(s) for s, w in weights.items()]).alias("q"))


def q_scores(norm_df: DataFrame, proposals: Mapping[str, Mapping[str, float]]) -> DataFrame:
    """``[weights_id, doc_id, q]`` for every weight vector at once (the vectors are broadcast).

    Args:
        norm_df: ``normalize`` output.
        proposals: weights_id → signal → weight; every vector names the same signals in the same order.
    """
    signals = list(next(iter(proposals.values())))
    schema = StructType(
        [StructField("weights_id", StringType(), False)]
        + [StructField(f"_w{j}", DoubleType(), False) for j in range(len(signals))]
    )
    rows = [(wid, *[float(w[s]) for s in signals]) for wid, w in proposals.items()]
    wdf = norm_df.sparkSession.createDataFrame(rows, schema)
    q = _q([F.col(f"_w{j}") * sig(s) for j, s in enumerate(signals)])
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
    q = {wid: _q([F.lit(float(proposals[wid][s])) * sig(s) for s in signals]) for wid in ids}
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


def metarater_scores(
    lakehouse,
    weights: dict[str, float],
    notes: list[str] | None = None,
    classes: Mapping[str, int] | None = None,
) -> DataFrame:
    """Q under ``weights`` (signal → w, summed in this order): ``[doc_id, score]`` for the documents with
    every signal (``signal_frame`` → [0, 5] ``normalize`` → ``q_score``).

    Args:
        lakehouse: where scores.prrc / scores.quality and any other signal table live.
        weights: w*, in the order aggregate_weights sums them (the profile's signal order), so Q here is
            the same double as there.
        notes: collects ``signal_frame``'s lines (rater set used, documents lacking a signal).
        classes: signal → k for class outputs other than the PRRC labels (``aggregate.weights.classes``).

    Raises:
        UsageError: no document has every signal, or ``weights`` names an unknown one.
    """
    signals = list(weights)
    norm = normalize(signal_frame(lakehouse, signals, notes), signals, classes)
    return q_score(norm, weights).select("doc_id", F.col("q").cast("double").alias("score"))
