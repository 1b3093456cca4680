"""select: gold.doc_scores + silver.documents → gold.selection (documents per strategy under a token budget).

For each strategy in ``select.strategies``, the pick (``jobs.methods.pick``): documents by score (desc, ties
by doc_id asc) while the running token sum stays within ``select.token_budget``, stopping at the first one
that would overflow it; with ``select.max_domain_share`` a domain holds at most floor(share × budget) tokens
and documents past its cap are skipped. ``blend`` sums the blended strategies' percentile ranks with the
``select.blend`` weights normalized to 1.

The running sums and ranks come from ``jobs.ordered``, so no strategy's pool goes through one task. The
driver collects one row per (strategy, domain) for the summary and two rows per shuffle partition for the
offsets, never the documents.

A strategy with no rows in gold.doc_scores is skipped (the summary says so). Each selected strategy's
partition of gold.selection is replaced, so the table holds the latest selection per strategy. Rows record
the versions of silver.documents and gold.doc_scores the run read plus the tables the strategy's
doc_scores rows record. A re-run on the same table versions writes the same rows (apart from run_id and
selected_at).

Gate (schemas/gold.py SELECTION suite): cum_tokens ≤ budget, unique doc_ids and ranks per strategy, ranks
exactly 1..n, cum_tokens the running sum of tokens, domain caps held, and every doc_id present in
silver.documents at the version read.

Run it:  corpuslake stage select --conf conf/local.yaml
(The module is not called select.py: ``spark-submit jobs/<stage>.py`` puts jobs/ first on sys.path, where
a select.py would shadow the standard library's ``select`` and break every stage run as a script.)
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs import freshness
from jobs.config import Conf
from jobs.gates import Output, publish
from jobs.methods.pick import BLEND, CANDIDATE_COLS, blend_scores, blend_weights, domain_cap, pick
from jobs.queries import parse_versions
from jobs.runtime import JobContext, UsageError, job_parser, run_job
from schemas import gold, silver

STAGE = "select"
READS = (silver.DOCUMENTS, gold.DOC_SCORES)
WATCH = freshness.Watch(READS, ("select",))

log = logging.getLogger(__name__)


def preflight(conf: Conf) -> None:
    """``blend`` needs weights; everything else is checked against gold.doc_scores in the body."""
    if BLEND in conf.select.strategies and not conf.select.blend:
        raise UsageError(
            f"{conf.source_file or 'profile'}: select.strategies has 'blend' but select.blend is empty; "
            "give weights, e.g. select.blend: {betr: 0.5, metarater: 0.5}"
        )


def merge_versions(read: dict[str, int | None], recorded: Iterable[str]) -> str:
    """The ``table_versions`` JSON of one strategy's rows.

    Args:
        read: the versions this run read (silver.documents, gold.doc_scores); they win over recorded ones.
        recorded: the distinct ``table_versions`` JSONs of the strategy's gold.doc_scores rows (what the
            scores were computed from). A table recorded with several versions keeps their sorted list.

    Raises:
        InputError: a recorded value is not a JSON object.
    """
    seen: dict[str, set] = {}
    for text in recorded:
        obj = parse_versions(text, "gold.doc_scores")
        for table, version in obj.items():
            seen.setdefault(table, set()).add(json.dumps(version, sort_keys=True))
    merged: dict[str, Any] = {}
    for table, versions in seen.items():
        vals = sorted((json.loads(v) for v in versions), key=lambda v: json.dumps(v, sort_keys=True))
        merged[table] = vals[0] if len(vals) == 1 else vals
    merged.update(read)
    return json.dumps(merged, sort_keys=True)


def selection_check(docs: DataFrame, max_domain_tokens: int | None) -> Callable[[DataFrame], DataFrame]:
    """The gate's cross-row and cross-table checks, as columns the SELECTION suite expects to be null.

    Adds (each the offending doc_id, else null) ``_missing_doc``: not in ``docs`` (silver.documents at
    the version read); ``_rank_gap``: the ranks of a (run, strategy) are not exactly 1..n (a rank outside
    1..n or a repeated one); ``_cum_mismatch``: cum_tokens is not the previous rank's cum_tokens (0 before
    rank 1) plus the row's tokens, i.e. not the running sum in rank order; ``_over_domain_cap``: the
    domain's tokens pass the cap. Joins and aggregations keyed by rank or domain, no window per strategy.
    """
    ids = docs.select("doc_id", F.lit(True).alias("_in_silver"))
    key = ["run_id", "strategy"]

    def check(staged: DataFrame) -> DataFrame:
        per = staged.groupBy(*key).agg(F.count("*").alias("_n"))
        at = staged.groupBy(*key, "rank").agg(F.count("*").alias("_at"), F.min("cum_tokens").alias("_c"))
        prev = at.select(*key, (F.col("rank") + 1).alias("rank"), F.col("_c").alias("_prev_cum"))
        out = (
            staged.join(ids, "doc_id", "left")
            .join(F.broadcast(per), key, "left")
            .join(at.drop("_c"), [*key, "rank"], "left")
            .join(prev, [*key, "rank"], "left")
        )
        gap = (F.col("rank") < 1) | (F.col("rank") > F.col("_n")) | (F.col("_at") > 1)
        prev_cum = F.when(F.col("rank") == 1, F.lit(0)).otherwise(F.col("_prev_cum"))
        cum_ok = (F.col("cum_tokens") == prev_cum + F.col("tokens")).eqNullSafe(True)
        out = (
            out.withColumn("_missing_doc", F.when(F.col("_in_silver").isNull(), F.col("doc_id")))
            .withColumn("_rank_gap", F.when(gap, F.col("doc_id")))
            .withColumn(
                "_cum_mismatch",
                F.when(~cum_ok, F.col("doc_id")),
            )
        )
        if max_domain_tokens is None:
            out = out.withColumn("_over_domain_cap", F.lit(None).cast("string"))
        else:
            dom = staged.groupBy(*key, "domain").agg(F.sum("tokens").alias("_dom_tokens"))
            dom = dom.select(*[F.col(c).alias(f"_d_{c}") for c in (*key, "domain")], "_dom_tokens")
            cond = [F.col(c).eqNullSafe(F.col(f"_d_{c}")) for c in (*key, "domain")]
            out = (
                out.join(dom, cond, "left")
                .withColumn(
                    "_over_domain_cap",
                    F.when(F.col("_dom_tokens") > F.lit(max_domain_tokens), F.col("doc_id")),
                )
                .drop(*[f"_d_{c}" for c in (*key, "domain")], "_dom_tokens")
            )
        # Materialized once: the suite runs a Spark job per expectation, and each would otherwise redo the
        # silver join and the checks. The staged rows are narrow (no text), so this stays small.
        return out.drop("_in_silver", "_n", "_at", "_prev_cum").localCheckpoint(eager=True)

    return check


def _read_at(lakehouse, spec, version: int | None) -> DataFrame:
    return lakehouse.read(spec) if version is None else lakehouse.read(spec, version=version)


def _selection_rows(picked: DataFrame, run_id: str, selected_at, versions: dict[str, str]) -> DataFrame:
    by_strategy = F.create_map(*[F.lit(x) for s, v in sorted(versions.items()) for x in (s, v)])
    return picked.select(
        F.lit(run_id).alias("run_id"),
        "strategy",
        "doc_id",
        F.col("rank").cast("int").alias("rank"),
        F.col("score").cast("double").alias("score"),
        "domain",
        F.col("tokens").cast("long").alias("tokens"),
        F.col("cum_tokens").cast("long").alias("cum_tokens"),
        F.lit(selected_at).cast("timestamp").alias("selected_at"),
        by_strategy[F.col("strategy")].alias("table_versions"),
    )


def select(ctx: JobContext) -> str:
    """The stage body: pick per strategy → gate → replace those strategies' partitions of gold.selection."""
    conf, lh, run = ctx.conf, ctx.lakehouse, ctx.run
    sc = conf.select
    v_silver = run.tables_read.get(silver.DOCUMENTS.name)
    v_scores = run.tables_read.get(gold.DOC_SCORES.name)
    if v_scores is None:
        raise UsageError("gold.doc_scores does not exist yet; run aggregate_docs first")
    scores = _read_at(lh, gold.DOC_SCORES, v_scores)
    stats = {
        r["strategy"]: r
        for r in scores.groupBy("strategy")
        .agg(F.count("*").alias("n"), F.collect_set("table_versions").alias("versions"))
        .collect()
    }
    read = {silver.DOCUMENTS.name: v_silver, gold.DOC_SCORES.name: v_scores}

    chosen: list[str] = []
    lines: list[str] = []
    versions: dict[str, str] = {}
    weights: dict[str, float] = {}
    for s in dict.fromkeys(sc.strategies):
        if s == BLEND:
            weights = blend_weights(sc.blend, [k for k in stats if k != BLEND])
            versions[s] = merge_versions(read, [v for k in weights for v in stats[k]["versions"]])
            chosen.append(s)
        elif s in stats:
            versions[s] = merge_versions(read, stats[s]["versions"])
            chosen.append(s)
        else:
            lines.append(f"  {s}: skipped, no rows in gold.doc_scores v{v_scores}")
            log.info("select: %s has no rows in gold.doc_scores v%s; skipped", s, v_scores)
    if not chosen:
        raise UsageError(
            f"none of select.strategies ({', '.join(sc.strategies)}) has rows in gold.doc_scores "
            f"v{v_scores} (it has: {', '.join(sorted(stats)) or 'nothing'}); run aggregate_docs first"
        )

    plain = [s for s in chosen if s != BLEND]
    candidates = scores.filter(F.col("strategy").isin(plain)).select(*CANDIDATE_COLS)
    hold: list[DataFrame] = []
    if BLEND in chosen:
        candidates = candidates.unionByName(blend_scores(scores, weights, hold))
    cap = domain_cap(sc.token_budget, sc.max_domain_share)
    picked = candidates.transform(pick(sc.token_budget, cap, hold)).persist()
    try:
        top = (
            picked.groupBy("strategy", "domain")
            .agg(F.count("*").alias("docs"), F.sum("tokens").alias("t"))
            .collect()
        )
        per: dict[str, dict[str, int]] = {}
        for r in top:
            acc = per.setdefault(r["strategy"], {"docs": 0, "tokens": 0})
            acc["docs"] += r["docs"]
            acc["tokens"] += r["t"]
        empty = [s for s in chosen if s not in per]
        if empty:
            raise UsageError(
                f"select: nothing fits the token budget {sc.token_budget:,} for {', '.join(empty)} (the "
                "best-scored document alone is larger"
                + (f", or every domain's first document passes the cap of {cap:,} tokens" if cap else "")
                + "); raise select.token_budget"
            )
        n = sum(r["docs"] for r in per.values())
        rows = _selection_rows(picked, run.run_id, run.started_at, versions)
        docs = _read_at(lh, silver.DOCUMENTS, v_silver)
        commits = publish(
            lh,
            run,
            [
                Output(
                    gold.SELECTION,
                    rows,
                    "overwrite-partition",
                    {"expected_rows": n, "token_budget": sc.token_budget, "checked": True},
                    check=selection_check(docs, cap),
                )
            ],
        )
    finally:
        picked.unpersist()
        for df in hold:
            df.unpersist()
    run.rows_in = sum(stats[s]["n"] for s in plain) + (
        sum(stats[k]["n"] for k in weights) if BLEND in chosen else 0
    )
    run.rows_out = n
    c = commits[gold.SELECTION.name]
    out = [
        f"select run {run.run_id}: gold.doc_scores v{v_scores}, silver.documents v{v_silver} -> "
        f"gold.selection v{c.version} ({n:,} rows; budget {sc.token_budget:,} tokens"
        + (f", domain cap {cap:,}" if cap is not None else "")
        + ")"
    ]
    for s in chosen:
        r = per[s]
        doms = sorted((x for x in top if x["strategy"] == s), key=lambda x: (-x["t"], x["domain"] or ""))
        share = ", ".join(f"{x['domain'] or '(none)'} {x['t'] / r['tokens']:.0%}" for x in doms[:3])
        extra = f" blend of {', '.join(f'{k} {w:.2f}' for k, w in weights.items())};" if s == BLEND else ""
        out.append(
            f"  {s}:{extra} {r['docs']:,} docs, {r['tokens']:,} tokens "
            f"({r['tokens'] / sc.token_budget:.1%} of budget); top domains {share}"
        )
    return "\n".join(out + lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``corpuslake-select`` and ``spark-submit jobs/selection.py``."""
    args = job_parser(STAGE, "Select documents per strategy to a token budget.").parse_args(argv)
    return run_job(STAGE, args, select, READS, preflight=preflight, watch=WATCH)


if __name__ == "__main__":
    sys.exit(main())
