"""aggregate_weights: Meta-rater's learned signal weights → gold.rater_weights.

The loop (DESIGN.md, "Meta-rater"; the method is ``jobs.methods.metarater``):
  signals    the per-document signals ``aggregate.weights.signals`` names (PRRC labels by default, as
             Meta-rater; scores.quality columns; any score table's ``<layer>.<table>.<column>``),
             normalized over the pool to [0, 5]; Q(x) = Σ_j w_j · norm_j(x).
  propose    K Dirichlet(1) weight vectors p000…, seeded → gold.rater_weights (method 'proposal'); each
             one's selection, the top ``top_share`` of documents by Q (ties by doc_id), is the proxy
             manifest gold.rater_proposals (weights_id, doc_id, rank, q, n_tokens).
  proxy      a validation loss per proposal → gold.proxy_results (``jobs.methods.metarater_proxy``).
             ``proxy: table`` reads them from ``proxy_results`` (CSV/JSONL weights_id, val_loss from real
             proxy training runs on the manifest). ``proxy: ngram`` is the local stand-in: a smoothed
             bigram LM trained on each selection and scored on the ref.benchmarks texts of
             ``refs.target_splits`` (never ``refs.eval_split``). ``proxy: train`` trains a small causal LM
             per proposal (``proxy_model``, one Spark task each) and records its loss on the same examples;
             each chunk of proposals is committed as it finishes, so a rerun after a crash trains only the
             proposals without a result.
  fit        a LightGBM regressor weights → val_loss (``aggregate.weights.lightgbm``), trained on the
             first proposals and early-stopped on the last ``valid_share`` (their held-out Spearman is
             recorded); ``candidates`` Dirichlet(1) draws are scored and w* = the mean of the ``best``
             lowest predicted → gold.rater_weights weights_id 'final' (method 'fit').

One stage, two shapes: with the ngram or train proxy one run does the whole loop and publishes every table
together (the train proxy's chunks before); with ``proxy: table`` a run without ``proxy_results``
proposes (publish, train proxies on gold.rater_proposals elsewhere), and a run with it fits. Each publish
replaces gold.rater_weights whole: it holds one loop, its proposals and (after a fit) its w*; a fit copies
the proposal rows unchanged.

Run it:  corpuslake stage aggregate_weights --conf conf/local.yaml
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from jobs import freshness
from jobs.config import Conf, LightgbmConf, WeightsConf
from jobs.gates import Output, publish
from jobs.methods.metarater import (
    check_signals,
    dirichlet_proposals,
    n_selected,
    normalize,
    proposal_tops,
    signal_frame,
    signal_table_logs,
    signal_tables,
)
from jobs.methods.metarater_fit import FitResult, Regressor, fit_weights
from jobs.methods.metarater_proxy import BigramProxy, Proxy, ResultsFile, TrainedProxy, detail_key
from jobs.runtime import JobContext, UsageError, job_parser, run_job
from jobs.targets import read_targets
from schemas import gold, ref, scores, silver

STAGE = "aggregate_weights"
READS = (silver.DOCUMENTS, scores.PRRC, scores.QUALITY, ref.BENCHMARKS)
WATCH = freshness.Watch(
    READS,
    ("aggregate.weights", "refs.target_splits", "refs.eval_split"),
    files=lambda conf: (
        ([p] if (p := conf.aggregate.weights.proxy_results) else [])
        + signal_table_logs(conf.aggregate.weights.signals, conf.storage.warehouse)
    ),
)
FINAL = "final"


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
    norm = normalize(signal_frame(lh, signals, notes), signals, wc.classes).persist()
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


def _proxy_output(
    ctx: JobContext, results: pd.DataFrame, source: str, detail: str, versions, mode: str = "overwrite"
) -> Output:
    """gold.proxy_results rows; a row that carries its own detail, run_id and computed_at (a trained
    proxy's, recorded by an earlier run) keeps them."""
    run = _run_values(ctx, versions)
    rows = [
        {
            "weights_id": r["weights_id"],
            "val_loss": float(r["val_loss"]),
            "source": source,
            **{c: _int_or_none(r.get(c)) for c in ("train_docs", "train_tokens", "val_tokens")},
            "detail": r.get("detail") or detail,
            **run,
            **{k: _plain(r[k]) for k in ("run_id", "computed_at") if _given(r.get(k))},
        }
        for r in results.to_dict("records")
    ]
    df = ctx.spark.createDataFrame(rows, gold.PROXY_RESULTS.schema)
    return Output(gold.PROXY_RESULTS, df, mode, {"expected_rows": len(rows)})


def _given(v) -> bool:
    return isinstance(v, (str, datetime)) and not pd.isna(v)


def _plain(v):
    """pandas' Timestamp as the datetime Spark's schema check accepts."""
    return v.to_pydatetime() if isinstance(v, pd.Timestamp) else v


def _int_or_none(v) -> int | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)


def _builtin_proxy(ctx: JobContext) -> Proxy:
    """The ngram proxy: LMs trained on silver.documents, scored on the texts of the target splits.

    Never on ``refs.eval_split``: the texts are the gated targets of ``jobs.targets`` (a proxy loss on the
    evaluation split would tune w* to the very examples the selection is judged on).
    """
    lh = ctx.lakehouse
    docs = lh.read(silver.DOCUMENTS).select("doc_id", "text")
    val = read_targets(ctx).select("text")
    splits = ", ".join(ctx.conf.refs.target_splits)
    return BigramProxy(docs, val, ctx.conf.aggregate.weights.proxy_mu, f"ref.benchmarks texts ({splits})")


def regressor(lc: LightgbmConf) -> Regressor:
    """``aggregate.weights.lightgbm`` as the plain settings the fit takes (the same names, field by field)."""
    return Regressor(**lc.model_dump())


def _trained_proxy(ctx: JobContext, versions) -> TrainedProxy:
    """The train proxy: its model and dev texts (the target splits of ref.benchmarks, never the evaluation
    split), the results earlier runs recorded (by key), and a commit per chunk of proposals."""
    from jobs.evaluate import lm_spec, load_tokenizer
    from jobs.scoring import gpu_profile

    wc, lh = ctx.conf.aggregate.weights, ctx.lakehouse
    # The gated targets of jobs.targets: none from the evaluation split, none sharing its text; with no
    # target example at all it stops the stage in one line.
    dev = [r["text"] for r in read_targets(ctx).select("text").collect()]
    model = wc.proxy_model
    spec = lm_spec(model, load_tokenizer(model.tokenizer, "aggregate.weights.proxy_model.tokenizer"))
    recorded: dict[str, dict] = {}
    if lh.exists(gold.PROXY_RESULTS):
        earlier = (
            lh.read(gold.PROXY_RESULTS).filter(F.col("source") == "train").orderBy("computed_at").collect()
        )
        for r in earlier:  # latest wins
            if (key := detail_key(r["detail"])) is not None:
                recorded[key] = r.asDict()

    def record(part: pd.DataFrame) -> None:
        publish(lh, ctx.run, [_proxy_output(ctx, part, "train", "", versions, "append")], idempotent=False)

    chunk = wc.proxy_chunk or ctx.spark.sparkContext.defaultParallelism
    label = f"ref.benchmarks examples of {', '.join(ctx.conf.refs.target_splits)}"
    return TrainedProxy(
        lh.read(silver.DOCUMENTS).select("doc_id", "text"),
        dev,
        label,
        spec,
        spec.budget(model.train_tokens),
        wc.proxy_seed,
        chunk,
        recorded,
        record,
        gpu_profile(ctx.conf.gpu),
    )


def _fit(ctx: JobContext, signals, weights: Mapping[str, Mapping[str, float]], results: pd.DataFrame):
    wc = ctx.conf.aggregate.weights
    # Ascending weights_id is draw order, so the validation proposals are the last drawn, as Meta-rater's.
    ids = sorted(results["weights_id"])
    y = results.set_index("weights_id").loc[ids, "val_loss"].to_numpy(float)
    x = np.array([[weights[i][s] for s in signals] for i in ids])
    return fit_weights(x, y, wc.candidates, wc.best, wc.seed, regressor(wc.lightgbm))


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


def _fit_lines(signals, fit: FitResult, results: pd.DataFrame, source: str, lc: LightgbmConf) -> list[str]:
    rho = "n/a" if fit.heldout_spearman is None else f"{fit.heldout_spearman:.3f}"
    stops = lc.early_stopping_rounds and lc.boosting != "dart"
    stop = f"early stopping {lc.early_stopping_rounds}" if stops else "no early stopping"
    lines = [
        f"proxy ({source}): val_loss {results['val_loss'].min():.4f}-{results['val_loss'].max():.4f} "
        f"over {len(results)} proposals",
        f"fit: LightGBM {lc.boosting}, learning rate {lc.learning_rate:g}, {fit.rounds} of "
        f"{lc.num_boost_round} rounds ({stop}, seed {lc.seed}), trained on {fit.n_train} proxy results; "
        f"held-out Spearman {rho} on the last {fit.n_valid}",
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
        else f"next: run fit ({wc.proxy} proxy)"
    )
    return _summary(ctx, "propose", lines, commits)


def fit(ctx: JobContext) -> str:
    """Fit only: proxy results for the proposals in gold.rater_weights → w* (weights_id 'final').

    ``proxy: table`` reads ``proxy_results``; ``proxy: ngram`` runs the n-gram proxy on the manifest
    in gold.rater_proposals. Publishes gold.rater_weights (the proposal rows unchanged, plus w*) and
    gold.proxy_results.
    """
    wc = ctx.conf.aggregate.weights
    lh = ctx.lakehouse
    signals, weights, rows, version = _read_proposals(ctx)
    versions: dict[str, int | None] = {gold.RATER_WEIGHTS.name: version}
    ids = sorted(weights)
    selection = None
    proxy: Proxy
    if wc.proxy == "table":
        if wc.proxy_results is None:
            raise UsageError("proxy: table needs aggregate.weights.proxy_results (weights_id, val_loss)")
        proxy = ResultsFile(wc.proxy_results)
    else:
        versions.update(_versions(lh, [gold.RATER_PROPOSALS, silver.DOCUMENTS, ref.BENCHMARKS]))
        if versions[gold.RATER_PROPOSALS.name] is not None:
            ctx.run.tables_read[gold.RATER_PROPOSALS.name] = versions[gold.RATER_PROPOSALS.name]
        selection = lh.read(gold.RATER_PROPOSALS).select("weights_id", "doc_id")
        proxy = _builtin_proxy(ctx)
    losses = proxy.losses(selection, ids)
    results, source = losses.results, proxy.source
    if sorted(results["weights_id"]) != ids:
        raise UsageError(
            "gold.rater_proposals does not hold a selection for every proposal of gold.rater_weights: "
            "re-propose"
        )
    result = _fit(ctx, signals, weights, results)
    outputs = [
        _weights_output(ctx, rows + _final_rows(ctx, signals, result, versions), signals, len(ids)),
        _proxy_output(ctx, results, source, losses.detail, versions),
    ]
    commits = publish(lh, ctx.run, outputs)
    ctx.run.rows_in, ctx.run.rows_out = len(ids), len(signals)
    lines = _fit_lines(signals, result, results, source, wc.lightgbm)
    return _summary(ctx, f"fit, proxy {source}", lines, commits)


def whole_loop(ctx: JobContext) -> str:
    """Propose → ngram or train proxy → fit in one run; every table is published together (a train
    proxy's results are also committed chunk by chunk while it trains, so a crash keeps them)."""
    wc = ctx.conf.aggregate.weights
    # The ngram proxy's targets are gated first, so a refused run does no work; the train proxy's are gated
    # when it is built (it needs the proposals' table versions).
    proxy = None if wc.proxy == "train" else _builtin_proxy(ctx)
    p = _propose(ctx)
    try:
        versions = {**p.versions, **_versions(ctx.lakehouse, [ref.BENCHMARKS])}
        if proxy is None:
            proxy = _trained_proxy(ctx, versions)
        losses = proxy.losses(p.selection, sorted(p.weights))
        results = losses.results
        result = _fit(ctx, p.signals, p.weights, results)
        rows = _proposal_rows(ctx, p) + _final_rows(ctx, p.signals, result, versions)
        outputs = [
            _weights_output(ctx, rows, p.signals, len(p.weights)),
            _manifest_output(ctx, p),
            _proxy_output(ctx, results, proxy.source, losses.detail, versions),
        ]
        commits = publish(ctx.lakehouse, ctx.run, outputs)
        lines = _propose_lines(p, wc)
        if isinstance(proxy, TrainedProxy):
            lines.append(
                f"proxy (train): {proxy.trained} proposals trained, {proxy.reused} reused from earlier runs "
                f"(same selection, model and dev texts); {losses.detail}"
            )
        lines += _fit_lines(p.signals, result, results, proxy.source, wc.lightgbm)
    finally:
        p.release()
    ctx.run.rows_in, ctx.run.rows_out = p.n_docs, len(rows)
    return _summary(ctx, f"propose, {proxy.source} proxy, fit", lines, commits)


def aggregate_weights(ctx: JobContext) -> str:
    """The stage body: the whole loop with the ngram or train proxy; with ``proxy: table``, propose while
    ``proxy_results`` is unset, fit once it names the results of the proxy runs."""
    wc = ctx.conf.aggregate.weights
    if wc.proxy in ("ngram", "train"):
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
