"""aggregate_docs: score tables → gold.doc_scores, every document's score per selection strategy.

  betr       scores.similarity (``aggregate.betr.method``) → best position over the chosen benchmarks
             (``betr_labels``) → top ``positive_share`` are positives → the bigram classifier
             (``jobs.textclf``) trained on a seeded split, scored on the whole pool: score = P(include); the
             threshold keeping ``keep_token_share`` of the held-out tokens (``token_threshold``) is recorded
             in ``detail``.
  pplcorr    gold.domain_correlations (chosen estimator and projection): pages of domains with weight > 0
             against the rest → the same classifier → score = P(include).
  metarater  Q = Σ w_j norm_j under gold.rater_weights ``final`` (``jobs.methods.metarater``).
  rds        scores.similarity ``rds``: round-robin over the benchmarks (tasks), each taking its best
             unchosen document by max cosine; score = −(pick position), detail = task and round.
  random     a seeded hash of doc_id in [0, 1) (``select.seed``), the baseline.

A strategy whose inputs are missing (no similarity rows, no correlations, no final weights) is skipped with
the reason in the summary; the table is replaced with every strategy that could be computed. Each row
records the versions of the tables its strategy read.

No step sends the pool through one task: positions, positives, the threshold's running sums and the RDS+
task orders are exact ranks from ``jobs.ordered`` (range-partitioned), not windows per benchmark or over
the whole pool. The driver collects benchmark names, per-label counts, one row per threshold choice and,
for RDS+, at most tasks × ``RDS_EXACT_PICKS`` doc_ids, never the pool.

Run it:  corpuslake stage aggregate_docs --conf conf/local.yaml
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs import freshness, textclf
from jobs.config import BetrConf, BigramConf, Conf
from jobs.gates import Output, publish
from jobs.methods.metarater import metarater_scores, signal_tables
from jobs.ordered import ordered
from jobs.queries import table_versions
from jobs.runtime import JobContext, UsageError, job_parser, run_job
from schemas import gold, scores, silver

STAGE = "aggregate_docs"
READS = (silver.DOCUMENTS, scores.SIMILARITY)
# Read when present; a strategy that needs a missing one is skipped.
OPTIONAL_READS = (gold.DOMAIN_CORRELATIONS, gold.RATER_WEIGHTS, scores.PRRC, scores.QUALITY)
WATCH = freshness.Watch((*READS, *OPTIONAL_READS), ("aggregate", "select.seed"))


class Unscorable(Exception):
    """The data cannot support a strategy (no rows, one class only); the stage skips it with this reason."""


# ------------------------------------------------------------------------------------------ transforms

_MANTISSA = (1 << 53) - 1


def unit_hash(seed: int, salt: str, col: str = "doc_id") -> Column:
    """A seeded hash of ``col`` as a double, uniform in [0, 1); ``salt`` keeps the uses independent."""
    h = F.xxhash64(F.col(col), F.lit(int(seed)), F.lit(salt))
    return h.bitwiseAND(F.lit(_MANTISSA)).cast("double") / float(1 << 53)


def class_sample(
    df: DataFrame, cap: int | None, seed: int, label_col: str = "label", hold: list[DataFrame] | None = None
) -> DataFrame:
    """At most ``cap`` rows per label, the ones with the smallest seeded hash of doc_id (stable on reruns).

    A class larger than the cap is first thinned by the hash to about twice the cap, so the exact cut
    ranks a small set instead of the whole class; the ranks come from ``jobs.ordered`` over the narrow
    ``[doc_id, label, hash]`` rows (not a window per label, which would put each class in one task), and
    the kept doc_ids are joined back.
    """
    if cap is None:
        return df
    counts = {r[label_col]: r["n"] for r in df.groupBy(label_col).agg(F.count("*").alias("n")).collect()}
    if all(n <= cap for n in counts.values()):
        return df
    h = unit_hash(seed, "class-sample")
    keep = F.lit(False)
    for label, n in counts.items():
        frac = 1.0 if n <= cap else min(1.0, 2.0 * cap / n + 64.0 / n)
        keep = keep | ((F.col(label_col) == F.lit(label)) & (h < F.lit(frac)))
    thin = df.filter(keep).select("doc_id", label_col, h.alias("_h"))
    ranked = ordered(thin, [label_col], [F.asc("_h"), F.asc("doc_id")], row_number="_n", hold=hold)
    chosen = ranked.filter(F.col("_n") <= cap).select("doc_id", label_col)
    return df.join(chosen, ["doc_id", label_col], "left_semi")


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
    docs: DataFrame, similarity: DataFrame, bc: BetrConf, clf: BigramConf, hold: list[DataFrame] | None = None
) -> BetrResult:
    """BETR from best ranks to a scored pool.

    Args:
        docs: the pool, ``[doc_id, text, n_tokens]`` (silver.documents).
        similarity: ``[doc_id, benchmark, best_rank, max_cosine]`` of the chosen benchmarks, pool docs only.
        bc: positive, held-out and kept shares.
        clf: the classifier; ``clf.seed`` seeds the train/held-out split and the per-class sample.
        hold: collects ``jobs.ordered``'s persisted intermediates (unpersist when done with the result).

    Returns:
        P(include) for every pool document and the threshold chosen on the held-out sample: the documents
        with p_include ≥ threshold hold ``bc.keep_token_share`` of the held-out tokens.
    """
    labels = betr_labels(similarity, bc.positive_share, hold).withColumn(
        "heldout", unit_hash(clf.seed, "betr-heldout") < F.lit(bc.heldout_share)
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
        model = textclf.train(train.select("doc_id", "text", "label"), clf)
        pool = textclf.score(model, docs.select("doc_id", "text", "n_tokens"))
        pool = pool.select("doc_id", "p_include", "n_tokens").persist()
        try:
            heldout = pool.join(labels.filter(F.col("heldout")).select("doc_id"), "doc_id", "left_semi")
            t = token_threshold(heldout, bc.keep_token_share, hold)
            kept = F.when(F.col("p_include") >= F.lit(t.threshold), F.col("n_tokens")).otherwise(0)
            agg = pool.agg(F.sum(kept).alias("k"), F.sum("n_tokens").alias("t")).first()
        except BaseException:
            pool.unpersist()
            raise
    finally:
        labels.unpersist()
    share = float(agg["k"]) / float(agg["t"]) if agg["t"] else 0.0
    return BetrResult(pool, t, share, n, n_pos, n_train, n_held)


def pplcorr(
    docs: DataFrame, include: DataFrame, clf: BigramConf, hold: list[DataFrame] | None = None
) -> DataFrame:
    """The perplexity-correlation page step: pages of include-domains vs the rest, scored on the pool.

    Args:
        docs: the pool, ``[doc_id, domain, text]``.
        include: ``[domain]``, the domains with weight > 0 under the chosen estimator and projection.
        clf: the classifier (``max_docs_per_class`` pages per label, sampled by ``seed``).
        hold: collects ``jobs.ordered``'s persisted intermediates (unpersist when done with the result).

    Returns:
        ``[doc_id, p_include, label]`` for every pool document (label 1: its domain is included).
    """
    flagged = include.select("domain", F.lit(1).alias("label")).distinct()
    labeled = docs.join(F.broadcast(flagged), "domain", "left").withColumn(
        "label", F.coalesce(F.col("label"), F.lit(0))
    )
    train = class_sample(
        labeled.select("doc_id", "text", "label"), clf.max_docs_per_class, clf.seed, hold=hold
    )
    try:
        model = textclf.train(train, clf)
    except ValueError as exc:
        raise Unscorable(f"pages of included vs other domains: {exc}") from None
    return textclf.score(model, labeled.select("doc_id", "text", "label")).select(
        "doc_id", "p_include", "label"
    )


def round_robin(
    lists: Sequence[np.ndarray], n_docs: int, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RDS+'s round-robin: tasks in order, each taking its best document not yet chosen, round after round.

    Sequential by nature (a task skips what earlier picks took), so it runs on the driver over integer
    arrays. Each task keeps a pointer into its list; skipping chosen documents scans ahead in growing
    numpy slices. Time O(Σ_t len(lists[t])) array steps in the worst case, with one Python step per
    pick; memory: the lists (T · N ints) and one flag per document.

    Args:
        lists: per task (in task order), document indices 0..n_docs-1 in preference order, best first.
        n_docs: the number of distinct document indices.
        limit: stop after this many picks (None: until every listed document is picked).

    Returns:
        ``(docs, tasks, rounds)``: pick k (0-based) took document ``docs[k]`` for task ``tasks[k]`` in
        round ``rounds[k]`` (1-based).
    """
    lists = [np.asarray(lst, dtype=np.int64) for lst in lists]
    chosen = np.zeros(n_docs, dtype=bool)
    listed = np.zeros(n_docs, dtype=bool)
    for lst in lists:
        listed[lst] = True
    total = int(listed.sum()) if limit is None else min(int(limit), int(listed.sum()))
    out_doc = np.empty(total, dtype=np.int64)
    out_task = np.empty(total, dtype=np.int32)
    out_round = np.empty(total, dtype=np.int32)
    ptr = [0] * len(lists)
    k, rnd = 0, 0
    while k < total:
        rnd += 1
        for t, lst in enumerate(lists):
            if k >= total:
                break
            p, n = ptr[t], len(lst)
            if p < n and chosen[lst[p]]:
                step = 16
                while p < n:
                    free = ~chosen[lst[p : p + step]]
                    if free.any():
                        p += int(free.argmax())
                        break
                    p += step
                    step = min(step * 2, 1 << 16)
            if p >= n:
                ptr[t] = n
                continue
            d = lst[p]
            chosen[d] = True
            ptr[t] = p + 1
            out_doc[k], out_task[k], out_round[k] = d, t, rnd
            k += 1
    return out_doc, out_task, out_round


RDS_ORDER_SCHEMA = "doc_id string, pick long, benchmark string, round int"
# Picks made by the exact round robin on the driver: it holds each task's first RDS_EXACT_PICKS documents
# (tasks × this many doc_ids, whatever the pool's size). Later documents follow in position-interleave order.
RDS_EXACT_PICKS = 100_000


def rds_order(
    similarity: DataFrame,
    limit: int | None = None,
    exact_picks: int = RDS_EXACT_PICKS,
    hold: list[DataFrame] | None = None,
) -> DataFrame:
    """RDS+ order of the documents: round-robin over tasks (benchmarks by name), each task's documents by
    max cosine (desc, ties by doc_id).

    The round robin is sequential (a task skips what earlier picks took), so its first ``exact_picks``
    picks run on the driver (``round_robin``) over each task's first ``exact_picks`` documents only: after
    k picks in all no task has passed more than k entries of its list, so those lists decide the first k
    picks exactly. The driver thus holds at most tasks × ``exact_picks`` doc_ids, never the pool; the
    per-task positions come from ``jobs.ordered`` (no window per task).

    Past ``exact_picks`` (only in pools larger than that) the order is the position interleave, computed
    in Spark: round r takes, task by task, each task's r-th document unless an earlier pick placed it, i.e.
    documents by min over tasks of (position − 1) · tasks + task index. It equals the round robin wherever
    the tasks' lists do not compete for the same documents; where they do, a task whose document was taken
    does not go deeper in that round. ``round`` is then the interleave round (the position).

    Args:
        similarity: ``[doc_id, benchmark, max_cosine]``, the ``rds`` rows.
        limit: stop after this many documents (None: every one).
        exact_picks: picks made by the exact round robin on the driver.
        hold: collects ``jobs.ordered``'s persisted intermediates (unpersist when done with the result).

    Returns:
        ``[doc_id, pick, benchmark, round]``: pick 1 first; the task that took it and the round.
    """
    spark = similarity.sparkSession
    tasks = sorted(r["benchmark"] for r in similarity.select("benchmark").distinct().collect())
    if not tasks:
        return spark.createDataFrame([], RDS_ORDER_SCHEMA)
    task_idx = F.create_map(*[F.lit(x) for i, b in enumerate(tasks) for x in (b, i)])
    pos = ordered(
        similarity.select(task_idx[F.col("benchmark")].alias("task"), "doc_id", "max_cosine"),
        ["task"],
        [F.desc("max_cosine"), F.asc("doc_id")],
        row_number="pos",
        hold=hold,
    ).select("task", "doc_id", "pos")
    n_docs = similarity.select("doc_id").distinct().count()
    total = n_docs if limit is None else min(int(limit), n_docs)
    exact = min(total, int(exact_picks))
    # Only the first `exact` entries of each task's list (tasks × exact rows) come to the driver.
    head = pos.filter(F.col("pos") <= exact).orderBy("task", "pos").toPandas()
    ids, doc = np.unique(head["doc_id"].to_numpy(dtype=object), return_inverse=True)
    task = head["task"].to_numpy(dtype=np.int64)
    bounds = np.searchsorted(task, np.arange(len(tasks) + 1))
    lists = [doc[bounds[t] : bounds[t + 1]] for t in range(len(tasks))]
    picked, by, rounds = round_robin(lists, len(ids), exact)
    first = spark.createDataFrame(
        pd.DataFrame(
            {
                "doc_id": ids[picked],
                "pick": np.arange(1, len(picked) + 1, dtype=np.int64),
                "benchmark": np.asarray(tasks, dtype=object)[by],
                "round": rounds.astype(np.int32),
            }
        ),
        RDS_ORDER_SCHEMA,
    )
    if total <= len(picked):
        return first
    n_tasks = len(tasks)
    slot = (F.col("pos") - 1) * F.lit(n_tasks) + F.col("task")
    rest = (
        pos.join(F.broadcast(first.select("doc_id")), "doc_id", "left_anti")
        .groupBy("doc_id")
        .agg(F.min(slot).alias("slot"))
    )
    tail = ordered(rest, [], [F.asc("slot"), F.asc("doc_id")], row_number="k", hold=hold)
    names = F.array(*[F.lit(b) for b in tasks])
    tail = tail.select(
        "doc_id",
        (F.col("k") + F.lit(len(picked))).alias("pick"),
        names[(F.col("slot") % n_tasks).cast("int")].alias("benchmark"),
        (F.floor(F.col("slot") / n_tasks) + 1).cast("int").alias("round"),
    ).filter(F.col("pick") <= F.lit(total))
    return first.unionByName(tail)


def random_scores(docs: DataFrame, seed: int) -> DataFrame:
    """The random baseline: ``[doc_id, score]``, a seeded hash of doc_id in [0, 1)."""
    return docs.select("doc_id", unit_hash(seed, "random").alias("score"))


def doc_scores_check(docs: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """The gate's view of staged doc scores: ``gold.DOC_SCORES_CHECKS`` columns, each the offending doc_id
    (``_missing_doc``: not in ``docs``; ``_bad_score``: NaN or infinite)."""
    ids = docs.select("doc_id", F.lit(True).alias("_in_silver"))

    def check(staged: DataFrame) -> DataFrame:
        bad = F.isnan("score") | (F.abs("score") == F.lit(float("inf")))
        return (
            staged.join(ids, "doc_id", "left")
            .withColumn("_missing_doc", F.when(F.col("_in_silver").isNull(), F.col("doc_id")))
            .withColumn("_bad_score", F.when(bad, F.col("doc_id")))
            .drop("_in_silver")
        )

    return check


# ------------------------------------------------------------------------------------------------ stage


def preflight(conf: Conf) -> None:
    """Blind BETR holds the eval suite out, so it has to be named."""
    bc = conf.aggregate.betr
    if bc.mode == "blind" and not bc.eval_benchmarks:
        raise UsageError(
            f"{conf.source_file}: aggregate.betr.mode is blind but aggregate.betr.eval_benchmarks is not "
            "set; name the evaluation suite to hold out"
        )


@dataclass
class _Part:
    strategy: str
    rows: DataFrame  # [doc_id, score, detail]
    versions: str
    note: str


def _fmt_share(x: float) -> str:
    return f"{100 * x:.2f}%"


def aggregate_docs(ctx: JobContext) -> str:
    """The stage body: each computable strategy's scores → gate → replace gold.doc_scores."""
    conf, lh, run = ctx.conf, ctx.lakehouse, ctx.run
    if not lh.exists(silver.DOCUMENTS):
        raise UsageError("silver.documents does not exist yet; run clean first")
    for spec in OPTIONAL_READS:
        v = lh.version(spec)
        if v is not None:
            run.tables_read[spec.name] = v
    docs = lh.read(silver.DOCUMENTS).select(
        "doc_id", "domain", "text", F.col("n_tokens_est").alias("n_tokens")
    )
    ids = docs.select("doc_id")
    sim = lh.read(scores.SIMILARITY).join(ids, "doc_id", "left_semi")
    by_method = {r["method"] for r in sim.select("method").distinct().collect()}

    parts: list[_Part] = []
    skipped: list[tuple[str, str]] = []
    cached: list[DataFrame] = []
    try:
        # --- betr
        bc = conf.aggregate.betr
        if bc.method not in by_method:
            skipped.append(("betr", f"scores.similarity has no {bc.method!r} rows (run score_similarity)"))
        else:
            ranks = sim.filter(F.col("method") == bc.method)
            present = [r["benchmark"] for r in ranks.select("benchmark").distinct().collect()]
            chosen = betr_benchmarks(present, bc.mode, bc.eval_benchmarks)
            try:
                res = betr(
                    docs, ranks.filter(F.col("benchmark").isin(chosen)), bc, conf.aggregate.classifier, cached
                )
            except Unscorable as exc:
                skipped.append(("betr", str(exc)))
            else:
                cached.append(res.scores)
                t = res.threshold
                detail = F.concat(
                    F.lit(f"threshold={t.threshold!r} kept="),
                    F.when(F.col("p_include") >= F.lit(t.threshold), "true").otherwise("false"),
                )
                parts.append(
                    _Part(
                        "betr",
                        res.scores.select(
                            "doc_id", F.col("p_include").alias("score"), detail.alias("detail")
                        ),
                        table_versions(lh, (silver.DOCUMENTS, scores.SIMILARITY)),
                        f"{bc.mode} ({', '.join(chosen)}; {bc.method} ranks): {res.n_scored:,} scored, "
                        f"{res.n_positive:,} positives, trained on {res.n_train:,}; threshold "
                        f"{t.threshold:.6g} keeps {_fmt_share(t.kept_share)} of the held-out tokens "
                        f"({t.kept_docs:,} of {res.n_heldout:,} docs; target "
                        f"{_fmt_share(bc.keep_token_share)}), "
                        f"{_fmt_share(res.pool_kept_share)} of the pool's",
                    )
                )

        # --- pplcorr
        if not lh.exists(gold.DOMAIN_CORRELATIONS):
            skipped.append(("pplcorr", "gold.domain_correlations does not exist (run aggregate_domains)"))
        else:
            corr = lh.read(gold.DOMAIN_CORRELATIONS).filter(F.col("chosen"))
            c = corr.agg(
                F.count("*").alias("n"),
                F.sum(F.when(F.col("weight") > 0, 1).otherwise(0)).alias("inc"),
                F.first("estimator").alias("est"),
                F.first("projection").alias("proj"),
            ).first()
            if not c["n"]:
                skipped.append(
                    ("pplcorr", "gold.domain_correlations has no chosen rows (run aggregate_domains)")
                )
            else:
                include = corr.filter(F.col("weight") > 0).select("domain")
                try:
                    scored = pplcorr(docs, include, conf.aggregate.classifier, cached).persist()
                    cached.append(scored)
                    n_inc = scored.filter(F.col("label") == 1).count()
                except Unscorable as exc:
                    skipped.append(("pplcorr", str(exc)))
                else:
                    detail = F.concat(
                        F.lit(f"{c['est']}/{c['proj']} include_domain="),
                        F.when(F.col("label") == 1, "true").otherwise("false"),
                    )
                    parts.append(
                        _Part(
                            "pplcorr",
                            scored.select(
                                "doc_id", F.col("p_include").alias("score"), detail.alias("detail")
                            ),
                            table_versions(lh, (silver.DOCUMENTS, gold.DOMAIN_CORRELATIONS)),
                            f"{c['est']}/{c['proj']}: {c['inc']} of {c['n']} domains included, "
                            f"{n_inc:,} of their pages",
                        )
                    )

        # --- metarater
        final = {}
        if lh.exists(gold.RATER_WEIGHTS):
            w_rows = lh.read(gold.RATER_WEIGHTS).filter(F.col("weights_id") == "final").collect()
            final = {r["signal"]: float(r["weight"]) for r in w_rows}
        if not final:
            skipped.append(("metarater", "gold.rater_weights has no 'final' weights (run aggregate_weights)"))
        else:
            # The profile's signal order first: aggregate_weights sums Q in that order.
            order = [s for s in conf.aggregate.weights.signals if s in final]
            final = {s: final[s] for s in order + sorted(set(final) - set(order))}
            notes: list[str] = []
            desc = ", ".join(f"{s}={w:.3f}" for s, w in final.items())
            try:
                q = metarater_scores(lh, final, notes)
            except UsageError as exc:  # no document has every signal, or w* names an unknown one
                skipped.append(("metarater", str(exc)))
            else:
                read = [silver.DOCUMENTS, gold.RATER_WEIGHTS, *signal_tables(list(final))]
                parts.append(
                    _Part(
                        "metarater",
                        q.select("doc_id", "score", F.lit(f"Q: {desc}").alias("detail")),
                        table_versions(lh, read),
                        "; ".join([f"Q under w* ({desc})", *notes]),
                    )
                )

        # --- rds
        if "rds" not in by_method:
            skipped.append(("rds", "scores.similarity has no 'rds' rows (configure score.rds.encoder)"))
        else:
            order = rds_order(
                sim.filter(F.col("method") == "rds").select("doc_id", "benchmark", "max_cosine"), hold=cached
            )
            order = order.persist()
            cached.append(order)
            o = order.agg(F.countDistinct("benchmark").alias("t"), F.max("round").alias("r")).first()
            detail = F.concat(
                F.lit("task="), F.col("benchmark"), F.lit(" round="), F.col("round").cast("string")
            )
            parts.append(
                _Part(
                    "rds",
                    order.select(
                        "doc_id", (-F.col("pick")).cast("double").alias("score"), detail.alias("detail")
                    ),
                    table_versions(lh, (silver.DOCUMENTS, scores.SIMILARITY)),
                    f"round-robin over {o['t']} tasks, {o['r']} rounds",
                )
            )

        # --- random
        seed = conf.select.seed
        parts.append(
            _Part(
                "random",
                random_scores(docs, seed).withColumn("detail", F.lit(f"seed={seed}")),
                table_versions(lh, (silver.DOCUMENTS,)),
                f"seeded hash of doc_id (select.seed {seed})",
            )
        )

        meta = docs.select("doc_id", "domain", "n_tokens")
        out = None
        for p in parts:
            rows = p.rows.join(meta, "doc_id").select(
                "doc_id",
                F.lit(p.strategy).alias("strategy"),
                F.col("score").cast("double").alias("score"),
                "domain",
                F.col("n_tokens").cast("long").alias("n_tokens"),
                F.col("detail").cast("string").alias("detail"),
                F.lit(run.run_id).alias("run_id"),
                F.lit(run.started_at).alias("computed_at"),
                F.lit(p.versions).alias("table_versions"),
            )
            out = rows if out is None else out.unionByName(rows)
        out = out.persist()
        cached.append(out)
        counts = {
            r["strategy"]: r["n"] for r in out.groupBy("strategy").agg(F.count("*").alias("n")).collect()
        }
        n_rows = sum(counts.values())
        commits = publish(
            lh,
            run,
            [
                Output(
                    gold.DOC_SCORES,
                    out,
                    "overwrite",
                    {"expected_rows": n_rows, "checked": True},
                    check=doc_scores_check(docs),
                )
            ],
        )
    finally:
        for df in cached:
            df.unpersist()
    run.rows_out = n_rows
    c = commits[gold.DOC_SCORES.name]
    lines = [f"{STAGE} run {run.run_id}: read {json.dumps(run.tables_read, sort_keys=True)}"]
    for p in parts:
        lines.append(f"  {p.strategy}: {counts.get(p.strategy, 0):,} documents; {p.note}")
    for s, why in skipped:
        lines.append(f"  {s}: skipped, {why}")
    lines.append(f"  {n_rows:,} rows ({len(parts)} strategies) -> {gold.DOC_SCORES.name} v{c.version}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``corpuslake-aggregate-docs`` and ``spark-submit jobs/aggregate_docs.py``."""
    args = job_parser(STAGE, "Per-document scores for every selection strategy.").parse_args(argv)
    return run_job(STAGE, args, aggregate_docs, READS, preflight=preflight, watch=WATCH)


if __name__ == "__main__":
    sys.exit(main())
