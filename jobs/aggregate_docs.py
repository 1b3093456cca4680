"""aggregate_docs: score tables → gold.doc_scores, every document's score per selection strategy.

  betr       scores.similarity (``aggregate.betr.method``) → best position over the chosen benchmarks
             (``jobs/sql/betr_scores.sql``) → top ``positive_share`` are positives → the bigram classifier
             (``jobs.textclf``) trained on a seeded split, scored on the whole pool: score = P(include); the
             threshold keeping ``keep_token_share`` of the held-out tokens (``jobs/sql/betr_threshold.sql``)
             is recorded in ``detail``.
  pplcorr    gold.domain_correlations (chosen estimator and projection): pages of domains with weight > 0
             against the rest → the same classifier → score = P(include).
  metarater  Q = Σ w_j norm_j under gold.rater_weights ``final`` (``jobs.aggregate_weights``).
  rds        scores.similarity ``rds``: round-robin over the benchmarks (tasks), each taking its best
             unchosen document by max cosine; score = −(pick position), detail = task and round.
  random     a seeded hash of doc_id in [0, 1) (``select.seed``), the baseline.

A strategy whose inputs are missing (no similarity rows, no correlations, no final weights) is skipped with
the reason in the summary; the table is replaced with every strategy that could be computed. Each row
records the versions of the tables its strategy read.

Run it:  corpuslake stage aggregate_docs --conf conf/local.yaml
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs import textclf
from jobs.config import BetrConf, BigramConf, Conf
from jobs.gates import Output, publish
from jobs.queries import run_sql, table_versions
from jobs.runtime import JobContext, UsageError, job_parser, run_job
from schemas import gold, scores, silver

STAGE = "aggregate_docs"
READS = (silver.DOCUMENTS, scores.SIMILARITY)
# Read when present; a strategy that needs a missing one is skipped.
OPTIONAL_READS = (gold.DOMAIN_CORRELATIONS, gold.RATER_WEIGHTS, scores.PRRC, scores.QUALITY)


class Unscorable(Exception):
    """The data cannot support a strategy (no rows, one class only); the stage skips it with this reason."""


# ------------------------------------------------------------------------------------------ transforms

_MANTISSA = (1 << 53) - 1


def unit_hash(seed: int, salt: str, col: str = "doc_id") -> Column:
    """A seeded hash of ``col`` as a double, uniform in [0, 1); ``salt`` keeps the uses independent."""
    h = F.xxhash64(F.col(col), F.lit(int(seed)), F.lit(salt))
    return h.bitwiseAND(F.lit(_MANTISSA)).cast("double") / float(1 << 53)


def class_sample(df: DataFrame, cap: int | None, seed: int, label_col: str = "label") -> DataFrame:
    """At most ``cap`` rows per label, the ones with the smallest seeded hash of doc_id (stable on reruns).

    A class larger than the cap is first thinned by the hash to about twice the cap, so the exact cut
    sorts a small set instead of the whole class.
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
    w = Window.partitionBy(label_col).orderBy(h, "doc_id")
    return df.filter(keep).withColumn("_n", F.row_number().over(w)).filter(F.col("_n") <= cap).drop("_n")


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


def betr_labels(similarity: DataFrame, positive_share: float) -> DataFrame:
    """Balanced best positions and positives (``jobs/sql/betr_scores.sql``).

    Args:
        similarity: ``[doc_id, benchmark, best_rank, max_cosine]`` of the chosen benchmarks.
        positive_share: share of the scored documents labelled 1.

    Returns:
        ``[doc_id, position, label]``, one row per scored document; position null = ranked by none.
    """
    return run_sql(
        similarity.sparkSession,
        "betr_scores",
        {"betr_similarity": similarity.select("doc_id", "benchmark", "best_rank", "max_cosine")},
        positive_share=float(positive_share),
    )


@dataclass(frozen=True)
class Threshold:
    """The include-probability threshold and what it keeps of the held-out sample."""

    threshold: float
    kept_share: float
    kept_docs: int
    kept_tokens: int
    total_tokens: int


def token_threshold(heldout: DataFrame, keep_share: float) -> Threshold:
    """The p_include threshold whose kept token share of ``heldout[doc_id, p_include, n_tokens]`` is
    closest to ``keep_share`` (``jobs/sql/betr_threshold.sql``)."""
    row = run_sql(
        heldout.sparkSession,
        "betr_threshold",
        {"betr_heldout": heldout.select("doc_id", "p_include", "n_tokens")},
        keep_share=float(keep_share),
    ).first()
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


def betr(docs: DataFrame, similarity: DataFrame, bc: BetrConf, clf: BigramConf) -> BetrResult:
    """BETR from best ranks to a scored pool.

    Args:
        docs: the pool, ``[doc_id, text, n_tokens]`` (silver.documents).
        similarity: ``[doc_id, benchmark, best_rank, max_cosine]`` of the chosen benchmarks, pool docs only.
        bc: positive, held-out and kept shares.
        clf: the classifier; ``clf.seed`` seeds the train/held-out split and the per-class sample.

    Returns:
        P(include) for every pool document and the threshold chosen on the held-out sample: the documents
        with p_include ≥ threshold hold ``bc.keep_token_share`` of the held-out tokens.
    """
    labels = betr_labels(similarity, bc.positive_share).withColumn(
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
        train = class_sample(train, clf.max_docs_per_class, clf.seed)
        n_train = train.count()
        model = textclf.train(train.select("doc_id", "text", "label"), clf)
        pool = textclf.score(model, docs.select("doc_id", "text", "n_tokens"))
        pool = pool.select("doc_id", "p_include", "n_tokens").persist()
        try:
            heldout = pool.join(labels.filter(F.col("heldout")).select("doc_id"), "doc_id", "left_semi")
            t = token_threshold(heldout, bc.keep_token_share)
            kept = F.when(F.col("p_include") >= F.lit(t.threshold), F.col("n_tokens")).otherwise(0)
            agg = pool.agg(F.sum(kept).alias("k"), F.sum("n_tokens").alias("t")).first()
        except BaseException:
            pool.unpersist()
            raise
    finally:
        labels.unpersist()
    share = float(agg["k"]) / float(agg["t"]) if agg["t"] else 0.0
    return BetrResult(pool, t, share, n, n_pos, n_train, n_held)


def pplcorr(docs: DataFrame, include: DataFrame, clf: BigramConf) -> DataFrame:
    """The perplexity-correlation page step: pages of include-domains vs the rest, scored on the pool.

    Args:
        docs: the pool, ``[doc_id, domain, text]``.
        include: ``[domain]``, the domains with weight > 0 under the chosen estimator and projection.
        clf: the classifier (``max_docs_per_class`` pages per label, sampled by ``seed``).

    Returns:
        ``[doc_id, p_include, label]`` for every pool document (label 1: its domain is included).
    """
    flagged = include.select("domain", F.lit(1).alias("label")).distinct()
    labeled = docs.join(F.broadcast(flagged), "domain", "left").withColumn(
        "label", F.coalesce(F.col("label"), F.lit(0))
    )
    train = class_sample(labeled.select("doc_id", "text", "label"), clf.max_docs_per_class, clf.seed)
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


def rds_order(similarity: DataFrame, limit: int | None = None) -> DataFrame:
    """RDS+ order of the documents: round-robin over tasks (benchmarks by name), each task's documents by
    max cosine (desc, ties by doc_id).

    Args:
        similarity: ``[doc_id, benchmark, max_cosine]``, the ``rds`` rows.
        limit: stop after this many documents (None: every one).

    Returns:
        ``[doc_id, pick, benchmark, round]``: pick 1 first; the task that took it and the round.
    """
    spark = similarity.sparkSession
    tasks = sorted(r["benchmark"] for r in similarity.select("benchmark").distinct().collect())
    if not tasks:
        return spark.createDataFrame([], RDS_ORDER_SCHEMA)
    # Documents and tasks as integers: only int arrays (T · N of them) come to the driver.
    ids = similarity.select("doc_id").distinct().orderBy("doc_id").toPandas()["doc_id"].to_numpy(dtype=object)
    index = spark.createDataFrame(
        pd.DataFrame({"doc_id": ids, "doc_idx": np.arange(len(ids), dtype=np.int64)}),
        "doc_id string, doc_idx long",
    )
    task_idx = F.create_map(*[F.lit(x) for i, b in enumerate(tasks) for x in (b, i)])
    ranked = (
        similarity.join(index, "doc_id")
        .select(task_idx[F.col("benchmark")].alias("task"), "doc_idx", "max_cosine", "doc_id")
        .orderBy("task", F.desc("max_cosine"), "doc_id")
        .select("task", "doc_idx")
        .toPandas()
    )
    task = ranked["task"].to_numpy(dtype=np.int64)
    doc = ranked["doc_idx"].to_numpy(dtype=np.int64)
    bounds = np.searchsorted(task, np.arange(len(tasks) + 1))
    lists = [doc[bounds[t] : bounds[t + 1]] for t in range(len(tasks))]
    picked, by, rounds = round_robin(lists, len(ids), limit)
    out = pd.DataFrame(
        {
            "doc_id": ids[picked],
            "pick": np.arange(1, len(picked) + 1, dtype=np.int64),
            "benchmark": np.asarray(tasks, dtype=object)[by],
            "round": rounds.astype(np.int32),
        }
    )
    return spark.createDataFrame(out, RDS_ORDER_SCHEMA)


def random_scores(docs: DataFrame, seed: int) -> DataFrame:
    """The random baseline: ``[doc_id, score]``, a seeded hash of doc_id in [0, 1)."""
    return docs.select("doc_id", unit_hash(seed, "random").alias("score"))


def metarater_scores(lakehouse, weights: dict[str, float], notes: list[str] | None = None) -> DataFrame:
    """Q under ``weights`` (signal → w, summed in this order): ``[doc_id, score]`` for the documents with
    every signal (``jobs.aggregate_weights``: signal frame → [0, 5] normalization → weighted sum).

    Args:
        lakehouse: where scores.prrc / scores.quality live.
        weights: w*, in the order ``aggregate_weights`` sums them (the profile's signal order), so Q here is
            the same double as there.
        notes: collects ``signal_frame``'s lines (rater set used, documents lacking a signal).
    """
    from jobs import aggregate_weights as aw

    signals = list(weights)
    norm = aw.normalize(aw.signal_frame(lakehouse, signals, notes), signals)
    return aw.q_score(norm, weights).select("doc_id", F.col("q").cast("double").alias("score"))


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
                res = betr(docs, ranks.filter(F.col("benchmark").isin(chosen)), bc, conf.aggregate.classifier)
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
                    scored = pplcorr(docs, include, conf.aggregate.classifier).persist()
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
            from jobs.aggregate_weights import signal_tables

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
                sim.filter(F.col("method") == "rds").select("doc_id", "benchmark", "max_cosine")
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
    return run_job(STAGE, args, aggregate_docs, READS, preflight=preflight)


if __name__ == "__main__":
    sys.exit(main())
