"""aggregate_docs: score tables → gold.doc_scores, every document's score per selection strategy.

The strategies are a registry (``STRATEGIES``): each names the tables it reads and computes
``[doc_id, score, detail]`` with its method from ``jobs.methods``:

  betr       scores.similarity (``aggregate.betr.method``): the ranked sample's best rank over the chosen
             benchmarks' balanced targets (or best position per benchmark) → top ``positive_share`` are
             positives → the page classifier (``jobs.methods.pageclf``: fastText, or Spark ML) trained on
             the sample's positives and negatives, scored on the whole pool: score = P(include); the
             threshold keeping select's budget share of the pool's tokens is recorded in ``detail``
             (``jobs.methods.betr``).
  pplcorr    gold.domain_correlations (chosen estimator and projection): pages of domains with weight > 0
             against the rest → the page classifier → score = P(include) (``jobs.methods.pplcorr``).
  metarater  Q = Σ w_j norm_j under gold.rater_weights ``final`` (``jobs.methods.metarater``).
  rds        scores.similarity ``rds``: round-robin over the benchmarks (tasks), each taking its best
             unchosen document by max cosine; score = −(pick position), detail = task and round
             (``jobs.methods.rds``).
  random     a seeded hash of doc_id in [0, 1) (``select.seed``), the baseline.

A strategy whose inputs are missing (no similarity rows, no correlations, no final weights) is skipped with
the reason in the summary; the table is replaced with every strategy that could be computed. Each row
records the versions of the tables its strategy read.

No step sends the pool through one task: positions, positives, the threshold's running sums and the RDS+
task orders are exact ranks from ``jobs.ordered`` (range-partitioned), not windows per benchmark or over
the whole pool. The driver collects benchmark names, per-label counts, one row per threshold choice and,
for RDS+, at most tasks × ``jobs.methods.rds.RDS_EXACT_PICKS`` doc_ids, never the pool.

Run it:  corpuslake stage aggregate_docs --conf conf/local.yaml
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs import audit, freshness
from jobs.config import Conf
from jobs.gates import Output, publish
from jobs.methods import pageclf, pplfilter
from jobs.methods.betr import betr, betr_benchmarks
from jobs.methods.metarater import metarater_scores, signal_table_logs, signal_tables
from jobs.methods.pick import budget_share
from jobs.methods.pplcorr import page_scores
from jobs.methods.rds import rds_order
from jobs.methods.sampling import Unscorable, random_scores
from jobs.queries import table_versions
from jobs.runtime import JobContext, UsageError, job_parser, run_job
from jobs.tables import Lakehouse
from schemas import gold, scores, silver
from schemas.base import TableSpec

STAGE = "aggregate_docs"


# ------------------------------------------------------------------------------------------ strategies


@dataclass
class Inputs:
    """What every strategy gets: the pool, its similarity rows, and where persisted frames are parked."""

    lakehouse: Lakehouse
    docs: DataFrame  # silver.documents: [doc_id, domain, text, n_tokens]
    similarity: DataFrame  # scores.similarity rows of pool documents
    methods: set[str]  # the scores.similarity methods present
    hold: list  # persisted frames and fitted page models: the stage unpersists them when it ends


@dataclass
class Scored:
    """One strategy's result."""

    rows: DataFrame  # [doc_id, score, detail]
    note: str  # the summary line after the document count
    reads: Sequence[TableSpec] | None = None  # the tables the rows come from (None: the strategy's reads)


@dataclass(frozen=True)
class Strategy:
    """One strategy of gold.doc_scores.

    Attributes:
        name: gold.doc_scores.strategy.
        reads: the tables it reads; their versions go into its rows' ``table_versions``.
        optional: its tables are read only when present (without them it is skipped); the others are the
            stage's required reads.
        compute: ``(inputs, **args) -> Scored``; raises ``Unscorable`` with the reason to be skipped.
        args: the conf unpacked into ``compute``'s keyword arguments (plain values).
    """

    name: str
    reads: tuple[TableSpec, ...]
    optional: bool
    compute: Callable[..., Scored]
    args: Callable[[Conf], dict[str, Any]]


def _fmt_share(x: float) -> str:
    return f"{100 * x:.2f}%"


def _betr(
    inp: Inputs,
    *,
    method: str,
    mode: str,
    eval_benchmarks: list[str] | None,
    combine: str,
    positive_share: float,
    negatives_per_positive: float | None,
    heldout_share: float,
    keep_token_share: float | None,
    token_budget: int,
    clf: pageclf.Classifier,
) -> Scored:
    """BETR over scores.similarity's ``method`` ranks of the benchmarks ``mode`` chooses."""
    if method not in inp.methods:
        raise Unscorable(f"scores.similarity has no {method!r} rows (run score_similarity)")
    ranks = inp.similarity.filter(F.col("method") == method)
    present = [r["benchmark"] for r in ranks.select("benchmark").distinct().collect()]
    chosen = betr_benchmarks(present, mode, eval_benchmarks)
    pool_tokens = int(inp.docs.agg(F.sum("n_tokens")).first()[0] or 0)
    keep = budget_share(token_budget, pool_tokens, keep_token_share, "aggregate.betr.keep_token_share")
    res = betr(
        inp.docs,
        ranks.filter(F.col("benchmark").isin(chosen)),
        positive_share=positive_share,
        keep_token_share=keep,
        clf=clf,
        combine=combine,
        negatives_per_positive=negatives_per_positive,
        heldout_share=heldout_share,
        hold=inp.hold,
    )
    inp.hold.append(res.scores)
    t = res.threshold
    detail = F.concat(
        F.lit(f"threshold={t.threshold!r} kept="),
        F.when(F.col("p_include") >= F.lit(t.threshold), "true").otherwise("false"),
    )
    held = ""
    if res.heldout_kept is not None:
        pk, p, nk, q = res.heldout_kept
        held = (
            f"; held out {res.n_heldout:,}: the threshold keeps {pk:,} of {p:,} positives, "
            f"{nk:,} of {q:,} others"
        )
    return Scored(
        res.scores.select("doc_id", F.col("p_include").alias("score"), detail.alias("detail")),
        f"{mode} ({', '.join(chosen)}; {method} ranks, {combine}): {res.n_ranked:,} ranked, "
        f"{res.n_positive:,} positives, {clf.backend} trained on {res.n_train:,}; threshold "
        f"{t.threshold:.6g} keeps {_fmt_share(t.kept_share)} of the pool's tokens ({t.kept_docs:,} docs; "
        f"target {_fmt_share(keep)} = select.token_budget / pool tokens){held}",
    )


def _pplcorr(inp: Inputs, *, clf: pageclf.Classifier) -> Scored:
    """The page step over the include-domains of gold.domain_correlations' chosen rows."""
    lh = inp.lakehouse
    if not lh.exists(gold.DOMAIN_CORRELATIONS):
        raise Unscorable("gold.domain_correlations does not exist (run aggregate_domains)")
    corr = lh.read(gold.DOMAIN_CORRELATIONS).filter(F.col("chosen"))
    c = corr.agg(
        F.count("*").alias("n"),
        F.sum(F.when(F.col("weight") > 0, 1).otherwise(0)).alias("inc"),
        F.first("estimator").alias("est"),
        F.first("projection").alias("proj"),
    ).first()
    if not c["n"]:
        raise Unscorable("gold.domain_correlations has no chosen rows (run aggregate_domains)")
    include = corr.filter(F.col("weight") > 0).select("domain")
    scored = page_scores(inp.docs, include, clf, inp.hold).persist()
    inp.hold.append(scored)
    n_inc = scored.filter(F.col("label") == 1).count()
    detail = F.concat(
        F.lit(f"{c['est']}/{c['proj']} include_domain="),
        F.when(F.col("label") == 1, "true").otherwise("false"),
    )
    return Scored(
        scored.select("doc_id", F.col("p_include").alias("score"), detail.alias("detail")),
        f"{c['est']}/{c['proj']}: {c['inc']} of {c['n']} domains included, {n_inc:,} of their pages",
    )


def _metarater(inp: Inputs, *, signals: list[str], classes: dict[str, int]) -> Scored:
    """Q under gold.rater_weights' w*, its signals summed in the profile's ``signals`` order."""
    lh = inp.lakehouse
    final = {}
    if lh.exists(gold.RATER_WEIGHTS):
        w_rows = lh.read(gold.RATER_WEIGHTS).filter(F.col("weights_id") == "final").collect()
        final = {r["signal"]: float(r["weight"]) for r in w_rows}
    if not final:
        raise Unscorable("gold.rater_weights has no 'final' weights (run aggregate_weights)")
    # The profile's signal order first: aggregate_weights sums Q in that order.
    order = [s for s in signals if s in final]
    final = {s: final[s] for s in order + sorted(set(final) - set(order))}
    notes: list[str] = []
    desc = ", ".join(f"{s}={w:.3f}" for s, w in final.items())
    try:
        q = metarater_scores(lh, final, notes, classes)
    except UsageError as exc:  # no document has every signal, or w* names an unknown one
        raise Unscorable(str(exc)) from None
    return Scored(
        q.select("doc_id", "score", F.lit(f"Q: {desc}").alias("detail")),
        "; ".join([f"Q under w* ({desc})", *notes]),
        (silver.DOCUMENTS, gold.RATER_WEIGHTS, *signal_tables(list(final))),
    )


def _rds(inp: Inputs) -> Scored:
    """RDS+'s round robin over scores.similarity's ``rds`` rows."""
    if "rds" not in inp.methods:
        raise Unscorable("scores.similarity has no 'rds' rows (configure score.rds.encoder)")
    rds = inp.similarity.filter(F.col("method") == "rds").select("doc_id", "benchmark", "max_cosine")
    order = rds_order(rds, hold=inp.hold).persist()
    inp.hold.append(order)
    o = order.agg(F.countDistinct("benchmark").alias("t"), F.max("round").alias("r")).first()
    detail = F.concat(F.lit("task="), F.col("benchmark"), F.lit(" round="), F.col("round").cast("string"))
    return Scored(
        order.select("doc_id", (-F.col("pick")).cast("double").alias("score"), detail.alias("detail")),
        f"round-robin over {o['t']} tasks, {o['r']} rounds",
    )


def _random(inp: Inputs, *, seed: int) -> Scored:
    """The seeded random baseline."""
    return Scored(
        random_scores(inp.docs, seed).withColumn("detail", F.lit(f"seed={seed}")),
        f"seeded hash of doc_id (select.seed {seed})",
    )


def _classifier(conf: Conf, method: str) -> pageclf.Classifier:
    """``aggregate.classifier`` as the plain settings the page classifier takes, with ``method``'s fastText
    settings (``betr`` or ``pplcorr``)."""
    c = conf.aggregate.classifier
    plain = (
        "backend",
        "num_features",
        "max_iter",
        "reg_param",
        "min_token_length",
        "max_docs_per_class",
        "seed",
    )
    fasttext = pageclf.FastText(**getattr(c.fasttext, method).model_dump())
    return pageclf.Classifier(**c.model_dump(include=set(plain)), fasttext=fasttext)


def _betr_args(conf: Conf) -> dict[str, Any]:
    bc = conf.aggregate.betr
    return {
        "method": bc.method,
        "mode": bc.mode,
        "eval_benchmarks": bc.eval_benchmarks,
        "combine": bc.combine,
        "positive_share": bc.positive_share,
        "negatives_per_positive": bc.negatives_per_positive,
        "heldout_share": bc.heldout_share,
        "keep_token_share": bc.keep_token_share,
        "token_budget": conf.select.token_budget,
        "clf": _classifier(conf, "betr"),
    }


# In this order: it is the order of the summary lines.
STRATEGIES = (
    Strategy("betr", (silver.DOCUMENTS, scores.SIMILARITY), False, _betr, _betr_args),
    Strategy(
        "pplcorr",
        (silver.DOCUMENTS, gold.DOMAIN_CORRELATIONS),
        True,
        _pplcorr,
        lambda conf: {"clf": _classifier(conf, "pplcorr")},
    ),
    Strategy(
        "metarater",
        (silver.DOCUMENTS, gold.RATER_WEIGHTS, scores.PRRC, scores.QUALITY),
        True,
        _metarater,
        lambda conf: {
            "signals": list(conf.aggregate.weights.signals),
            "classes": dict(conf.aggregate.weights.classes),
        },
    ),
    Strategy("rds", (silver.DOCUMENTS, scores.SIMILARITY), False, _rds, lambda conf: {}),
    Strategy("random", (silver.DOCUMENTS,), False, _random, lambda conf: {"seed": conf.select.seed}),
)


def _reads(optional: bool) -> tuple[TableSpec, ...]:
    out: list[TableSpec] = []
    for s in STRATEGIES:
        if s.optional == optional:
            out += [t for t in s.reads if t not in out]
    return tuple(out)


READS = _reads(False)
# Read when present; a strategy that needs a missing one is skipped. silver.filtered: the perplexity
# filter's drops, which no strategy scores (jobs.filter_perplexity).
OPTIONAL_READS = (*(t for t in _reads(True) if t not in READS), silver.FILTERED)
# select.token_budget: BETR's threshold keeps the budget's share of the pool. The files are the logs of
# score tables named as Meta-rater signals, which READS cannot list ahead of the conf.
WATCH = freshness.Watch(
    (*READS, *OPTIONAL_READS),
    ("aggregate", "select.seed", "select.token_budget"),
    files=lambda conf: signal_table_logs(conf.aggregate.weights.signals, conf.storage.warehouse),
)


# ------------------------------------------------------------------------------------------------ stage


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
    scored: Scored
    versions: str


def _doc_scores(parts: list[_Part], docs: DataFrame, run: audit.Run) -> DataFrame:
    """Every part's rows with the pool's domain and tokens and the run's columns: gold.doc_scores."""
    meta = docs.select("doc_id", "domain", "n_tokens")
    out = None
    for p in parts:
        rows = p.scored.rows.join(meta, "doc_id").select(
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
    return out


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
    if lh.exists(silver.FILTERED):
        docs = docs.transform(pplfilter.without_dropped(lh.read(silver.FILTERED)))
    sim = lh.read(scores.SIMILARITY).join(docs.select("doc_id"), "doc_id", "left_semi")
    methods = {r["method"] for r in sim.select("method").distinct().collect()}
    inputs = Inputs(lh, docs, sim, methods, [])

    parts: list[_Part] = []
    skipped: list[tuple[str, str]] = []
    try:
        for s in STRATEGIES:
            try:
                scored = s.compute(inputs, **s.args(conf))
            except Unscorable as exc:
                skipped.append((s.name, str(exc)))
            else:
                parts.append(_Part(s.name, scored, table_versions(lh, scored.reads or s.reads)))
        out = _doc_scores(parts, docs, run).persist()
        inputs.hold.append(out)
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
        for df in inputs.hold:
            df.unpersist()
    run.rows_out = n_rows
    c = commits[gold.DOC_SCORES.name]
    lines = [f"{STAGE} run {run.run_id}: read {json.dumps(run.tables_read, sort_keys=True)}"]
    for p in parts:
        lines.append(f"  {p.strategy}: {counts.get(p.strategy, 0):,} documents; {p.scored.note}")
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
