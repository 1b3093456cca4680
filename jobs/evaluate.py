"""evaluate: does the selection help? The same small LM trained on each selection and on random →
gold.evaluation.

The experiment (DESIGN.md, "Evaluation"):
  arms       every strategy of ``evaluate.strategies`` (default ``select.strategies``) as gold.selection
             holds it, and random, re-drawn per seed as select draws it (a seeded hash of doc_id, the
             same budget and domain cap). ``evaluate.heldout_docs`` documents of silver (a seeded sample)
             are set aside from every arm.
  equal      one tokenizer, model size, schedule and token count for every model: each arm's documents,
  tokens     in a seeded order, are cut to T tokens, T = ``evaluate.model.train_tokens`` or the smallest
             arm's tokens (rounded down to whole steps). The gate checks every row was trained on T.
  seeds      one model per arm and seed (≥ 3 seeds): the seed fixes the initialisation, the data order and
             the random arm's draw, so strategy and random are paired seed by seed.
  measure    on each benchmark's evaluation split (``refs.eval_split``, from ref.eval_items): bits per
             byte of the gold answer given the prompt, and multiple-choice accuracy where there are
             choices; and bits per byte of the held-out web documents (benchmark ``web_heldout``).
  held out   the evaluation split must be non-empty and share no example (by id or text) with the target
             splits, or the stage stops before training anything.

One model per Spark task (``jobs.methods.lm_runs``); GPUs per task with ``gpu.enabled``. The summary over
seeds (mean ± std, paired difference to random with its t interval) is ``jobs.methods.evaluation``.
Without an ``evaluate`` section in the profile the stage has nothing to do (``corpuslake evaluate`` runs it
with the defaults).

Run it:  corpuslake evaluate --conf conf/local.yaml   (or: corpuslake stage evaluate)
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, LongType, StringType, StructField, StructType

from jobs import freshness
from jobs.config import Conf, EvaluateConf
from jobs.gates import Output, publish
from jobs.methods import evaluation
from jobs.methods.lm_runs import HELDOUT, TRAIN, budget_cut, stream_tokens, train_runs
from jobs.methods.pick import domain_cap, pick
from jobs.methods.sampling import unit_hash
from jobs.runtime import JobContext, UsageError, job_parser, run_job
from jobs.scoring import gpu_profile
from schemas import gold, ref, silver
from udfs.lm_train import Item, LMSpec, tokenizer_json

STAGE = "evaluate"
READS = (silver.DOCUMENTS, gold.SELECTION, ref.BENCHMARKS, ref.EVAL_ITEMS)


def _tokenizer_files(conf: Conf) -> list[str]:
    """A local tokenizer folder's files: a rebuilt tokenizer (the demo's) changes every model."""
    from udfs.model_spec import is_local

    path = conf.evaluate.model.tokenizer if conf.evaluate is not None else None
    return [f"{path}/*"] if path and is_local(path) else []


WATCH = freshness.Watch(
    READS, ("evaluate", "select", "refs.target_splits", "refs.eval_split", "gpu"), files=_tokenizer_files
)

RUN_SCHEMA = StructType(
    [
        StructField("run", IntegerType(), False),
        StructField("benchmark", StringType(), False),
        StructField("metric", StringType(), False),
        StructField("value", DoubleType(), False),
        StructField("n", LongType(), False),
        StructField("train_tokens", LongType(), False),
        StructField("train_docs", LongType(), False),
        StructField("final_train_loss", DoubleType(), False),
        StructField("seconds", DoubleType(), False),
    ]
)


def lm_spec(model, tokenizer: tuple[str, int]) -> LMSpec:
    """The executors' plain ``LMSpec`` of an ``LMConf`` and the shared tokenizer (JSON, separator id)."""
    keep = ("arch", "n_layer", "n_embd", "n_head", "seq_len", "batch_size", "lr", "warmup_share")
    keep += ("min_lr_share", "weight_decay", "device", "dtype", "eval_tokens_per_batch")
    return LMSpec(tokenizer[0], tokenizer[1], **{k: getattr(model, k) for k in keep})


def load_tokenizer(path: str | None, key: str) -> tuple[str, int]:
    """The shared tokenizer of a run's models; a bad ``path`` is a usage error naming the conf ``key``."""
    try:
        return tokenizer_json(path)
    except ValueError as exc:
        raise UsageError(f"{key}: {exc}") from None


# ------------------------------------------------------------------------------------------- the splits


def check_splits(benchmarks: DataFrame, target_splits: list[str], eval_split: str) -> int:
    """The evaluation split's size, after checking it is held out.

    Raises:
        UsageError: ref.benchmarks has no example of ``eval_split``, or an evaluation example is also a
            target example: the same (benchmark, example_id) or the same text (case and whitespace
            folded) in a target split.
    """
    counts = {r["split"]: r["n"] for r in benchmarks.groupBy("split").agg(F.count("*").alias("n")).collect()}
    n_eval = counts.get(eval_split, 0)
    if not n_eval:
        have = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none (run load_refs)"
        raise UsageError(
            f"evaluate: ref.benchmarks holds no example of the evaluation split {eval_split!r} "
            f"(refs.eval_split); its splits: {have}"
        )
    norm = F.regexp_replace(F.lower(F.trim("text")), r"\s+", " ")
    keyed = benchmarks.select("benchmark", "split", "example_id", norm.alias("t"))
    ev = keyed.filter(F.col("split") == eval_split).alias("e")
    tg = keyed.filter(F.col("split").isin(target_splits)).alias("g")
    same = (
        (F.col("e.benchmark") == F.col("g.benchmark")) & (F.col("e.example_id") == F.col("g.example_id"))
    ) | (F.col("e.t") == F.col("g.t"))
    clash = ev.join(tg, same).select(
        F.concat_ws("/", "e.benchmark", "e.example_id").alias("eval"),
        F.concat_ws("/", "g.benchmark", "g.split", "g.example_id").alias("target"),
    )
    found = clash.orderBy("eval", "target").limit(5).collect()
    if found:
        n = clash.select("eval").distinct().count()
        pairs = "; ".join(f"{r['eval']} = {r['target']}" for r in found)
        raise UsageError(
            f"evaluate: {n} evaluation example(s) (split {eval_split}) are also target examples (splits "
            f"{', '.join(target_splits)}) by id or text, e.g. {pairs}: the evaluation split must be held "
            "out from selection; fix the benchmark files' splits"
        )
    return n_eval


def eval_items(items: DataFrame, eval_split: str, max_items: int | None, seed: int) -> list[Item]:
    """The evaluation split's items (bounded by benchmark examples, collected once and shipped to every
    run), at most ``max_items`` per benchmark by a seeded hash of the example id."""
    rows = items.filter(F.col("split") == eval_split).collect()

    def rank(r) -> str:
        return hashlib.sha256(f"{seed}:{r['benchmark']}:{r['example_id']}".encode()).hexdigest()

    by: dict[str, list] = {}
    for r in sorted(rows, key=rank):
        if max_items is None or len(by.setdefault(r["benchmark"], [])) < max_items:
            by.setdefault(r["benchmark"], []).append(r)
    return [
        Item(
            r["benchmark"],
            r["prompt"],
            r["answer"],
            tuple(r["choices"]) if r["choices"] else None,
            r["answer_index"],
        )
        for b in sorted(by)
        for r in sorted(by[b], key=lambda r: r["example_id"])
    ]


# --------------------------------------------------------------------------------------------- the arms


def heldout_docs(docs: DataFrame, n: int, seed: int) -> DataFrame:
    """``[doc_id]``: the ``n`` documents with the smallest seeded hash (general web text no arm trains
    on). The pool is first thinned by the hash, so the exact cut sorts a small set."""
    total = docs.count()
    frac = min(1.0, 2.0 * n / max(total, 1) + 64.0 / max(total, 1))
    h = unit_hash(seed, "evaluate-heldout")
    thin = docs.select("doc_id", h.alias("_h")).filter(F.col("_h") < F.lit(frac))
    return thin.orderBy("_h", "doc_id").limit(n).select("doc_id")


def arm_docs(
    selection: DataFrame, docs: DataFrame, runs: pd.DataFrame, budget: int, cap: int | None, hold: list
) -> DataFrame:
    """``[run, doc_id]`` of every run: a strategy's gold.selection (the same at every seed), random's
    draw at the run's seed (select's pick over a seeded hash of doc_id, the same budget and cap)."""
    spark = selection.sparkSession
    runs_df = spark.createDataFrame(runs[["run", "strategy", "seed"]])
    fixed = selection.select("strategy", "doc_id").join(runs_df, "strategy").select("run", "doc_id")
    rand = runs[runs["strategy"] == evaluation.RANDOM]
    if rand.empty:
        return fixed
    pool = docs.select("doc_id", "domain", F.col("n_tokens_est").alias("n_tokens"))
    candidates = None
    for r in rand.itertuples():
        part = pool.select(
            F.lit(f"run{r.run}").alias("strategy"),
            "doc_id",
            unit_hash(r.seed, "random").alias("score"),
            "domain",
            "n_tokens",
        )
        candidates = part if candidates is None else candidates.unionByName(part)
    picked = pick(budget, cap, hold)(candidates)
    drawn = picked.select(F.regexp_extract("strategy", r"run(\d+)", 1).cast("int").alias("run"), "doc_id")
    return fixed.unionByName(drawn)


def plan_runs(strategies: list[str], seeds: list[int]) -> pd.DataFrame:
    """``[run, strategy, seed]``: random first, then the strategies in the order given, each at every seed."""
    arms = [evaluation.RANDOM, *[s for s in strategies if s != evaluation.RANDOM]]
    rows = [(s, seed) for s in arms for seed in seeds]
    return pd.DataFrame(
        [(i, s, seed) for i, (s, seed) in enumerate(rows)], columns=["run", "strategy", "seed"]
    )


def equal_budget(totals: dict[int, int], runs: pd.DataFrame, spec: LMSpec, wanted: int | None) -> int:
    """T: ``wanted`` or the smallest run's tokens, rounded down to whole steps.

    Raises:
        UsageError: a run has fewer tokens than ``wanted``, or T is not even one step.
    """
    short = {r.run: totals.get(r.run, 0) for r in runs.itertuples()}
    smallest = min(short, key=lambda k: (short[k], k))
    label = runs.set_index("run").loc[smallest]
    who = f"strategy {label['strategy']} (seed {label['seed']})"
    if wanted is not None and short[smallest] < wanted:
        raise UsageError(
            f"evaluate: {who} has {short[smallest]:,} tokens once the held-out documents are set aside, "
            f"fewer than evaluate.model.train_tokens {wanted:,}: every model must train on the same "
            "tokens; lower train_tokens or raise select.token_budget"
        )
    t = spec.budget(wanted if wanted is not None else short[smallest])
    if t == 0:
        raise UsageError(
            f"evaluate: {who} has {short[smallest]:,} tokens, less than one step of "
            f"{spec.tokens_per_step:,} (evaluate.model.batch_size × seq_len)"
        )
    return t


# ------------------------------------------------------------------------------------------ the stage


def run_task(spec: LMSpec, train_tokens: int, seeds: dict[int, int], items: list[Item]):
    """What one task does for run r: pack T tokens, train at the run's seed, score the items and the
    held-out texts → ``RUN_SCHEMA`` rows."""

    def task(run: int, train: list[str], heldout: list[str]) -> list[tuple]:
        from udfs.lm_train import pack, score_items, score_texts
        from udfs.lm_train import train as fit

        trained = fit(spec, pack(spec, train, train_tokens), seeds[run])
        rows = score_items(trained, spec, items)
        if heldout:
            bpb, n = score_texts(trained, spec, heldout)
            rows.append((gold.HELDOUT_WEB, "bpb", bpb, n))
        common = (trained.tokens, len(train), trained.final_loss, trained.seconds)
        return [(run, b, m, float(v), int(n), *common) for b, m, v, n in rows]

    return task


def evaluate(ctx: JobContext) -> str:
    """The stage body (see the module docstring)."""
    conf: Conf = ctx.conf
    ev: EvaluateConf | None = conf.evaluate
    if ev is None:
        return (
            f"{STAGE} run {ctx.run.run_id}: no evaluate section in the profile: nothing to evaluate "
            "(add one, or run corpuslake evaluate for the defaults)"
        )
    lh, spark = ctx.lakehouse, ctx.spark
    versions = {s.name: lh.version(s) for s in READS}
    n_eval = check_splits(lh.read(ref.BENCHMARKS), conf.refs.target_splits, conf.refs.eval_split)
    items = eval_items(lh.read(ref.EVAL_ITEMS), conf.refs.eval_split, ev.max_items, ev.heldout_seed)
    if not items:
        raise UsageError(
            f"evaluate: none of the {n_eval} examples of split {conf.refs.eval_split!r} has a readable "
            "answer in ref.eval_items (see udfs/benchmark_items.py for the layouts read)"
        )
    strategies = list(ev.strategies or conf.select.strategies)
    selection = lh.read(gold.SELECTION)
    have = {r["strategy"] for r in selection.select("strategy").distinct().collect()}
    missing = [s for s in strategies if s != evaluation.RANDOM and s not in have]
    if missing:
        raise UsageError(
            f"evaluate: gold.selection has no rows for {', '.join(missing)}; run select with them in "
            f"select.strategies (gold.selection holds: {', '.join(sorted(have)) or 'nothing'})"
        )
    spec = lm_spec(ev.model, load_tokenizer(ev.model.tokenizer, "evaluate.model.tokenizer"))
    runs = plan_runs(strategies, list(ev.seeds))
    hold: list[DataFrame] = []
    docs = lh.read(silver.DOCUMENTS)
    try:
        held = heldout_docs(docs, ev.heldout_docs, ev.heldout_seed).persist()
        hold.append(held)
        cap = domain_cap(conf.select.token_budget, conf.select.max_domain_share)
        members = arm_docs(selection, docs, runs, conf.select.token_budget, cap, hold)
        members = members.join(held, "doc_id", "left_anti").persist()
        hold.append(members)
        texts = docs.select("doc_id", "text")
        counts = stream_tokens(spec)(texts.join(members.select("doc_id").distinct(), "doc_id", "left_semi"))
        seeded = spark.createDataFrame(runs[["run", "seed"]])
        rows = (
            members.join(counts, "doc_id")
            .join(seeded, "run")
            .withColumn("order", F.xxhash64("doc_id", F.col("seed"), F.lit("evaluate-order")))
            .persist()
        )
        hold.append(rows)
        totals = {r["run"]: r["t"] for r in rows.groupBy("run").agg(F.sum("lm_tokens").alias("t")).collect()}
        train_tokens = equal_budget(totals, runs, spec, ev.model.train_tokens)
        cut = budget_cut(train_tokens, hold)(rows.select("run", "doc_id", "lm_tokens", "order"))
        train = cut.join(texts, "doc_id").select("run", F.lit(TRAIN).alias("role"), "order", "doc_id", "text")
        runs_df = spark.createDataFrame(runs[["run"]])
        held_rows = (
            held.join(texts, "doc_id")
            .crossJoin(runs_df)
            .select(
                "run", F.lit(HELDOUT).alias("role"), F.lit(0).cast("long").alias("order"), "doc_id", "text"
            )
        )
        seeds = dict(zip(runs["run"], runs["seed"], strict=True))
        task = run_task(spec, train_tokens, seeds, items)
        with ctx.phase(f"training {len(runs)} models of {train_tokens:,} tokens"):
            out = train_runs(train.unionByName(held_rows), len(runs), task, RUN_SCHEMA, gpu_profile(conf.gpu))
            results = out.toPandas()
    finally:
        for df in hold:
            df.unpersist()
    done = set(results["run"])
    lost = [r for r in runs.itertuples() if r.run not in done]
    if lost:
        raise UsageError(
            "evaluate: no model was trained for "
            + ", ".join(f"{r.strategy} (seed {r.seed})" for r in lost)
            + ": its selection has no documents once the held-out ones are set aside"
        )
    table = evaluation.summarize(results.merge(runs, on="run"), ev.confidence)
    outputs = [_output(ctx, table, spec, train_tokens, list(ev.seeds), versions)]
    commits = publish(lh, ctx.run, outputs)
    ctx.run.rows_in, ctx.run.rows_out = len(runs), len(table)
    return _summary(ctx, table, spec, train_tokens, len(items), conf, commits)


def _output(ctx, table: pd.DataFrame, spec: LMSpec, train_tokens: int, seeds, versions) -> Output:
    run = {
        "run_id": ctx.run.run_id,
        "computed_at": ctx.run.started_at,
        "table_versions": json.dumps(versions, sort_keys=True),
        "model": spec.describe(),
    }
    cols = [f.name for f in gold.EVALUATION.schema.fields if f.name not in run]
    frame = table[cols].astype(object).where(table[cols].notna(), None)
    rows = [{**r, **run} for r in frame.to_dict("records")]
    df = ctx.spark.createDataFrame(rows, gold.EVALUATION.schema)
    params = {"expected_rows": len(rows), "train_tokens": train_tokens, "seeds": seeds}
    return Output(gold.EVALUATION, df, "overwrite", params)


def summary_lines(table: pd.DataFrame, eval_split: str) -> list[str]:
    """The evaluation tables: gold-answer bpb per benchmark relative to random (with the held-out web
    bpb), then multiple-choice accuracy, each with the seed spread."""
    n_seeds = int(table["n_seeds"].max())
    lines = [
        f"answer bits per byte on the {eval_split} split (web_heldout: bpb of held-out web documents); "
        f"random as mean ± std over {n_seeds} seeds, the others as the mean paired difference to random, "
        "relative to random's mean, ± its std; * = better than random by more than 2x the seed spread",
    ]
    bpb = table[table["metric"].isin(["answer_bpb", "bpb"])].assign(metric="answer_bpb")
    lines += evaluation.table(bpb, "answer_bpb")
    acc = evaluation.table(table, "mc_accuracy")
    if acc:
        lines += ["multiple-choice accuracy (random: mean ± std; others: difference in points ± std)", *acc]
    return lines


def _summary(ctx, table, spec: LMSpec, train_tokens: int, n_items: int, conf: Conf, commits) -> str:
    steps = train_tokens // spec.tokens_per_step
    per = table.drop_duplicates(["strategy", "seed"])
    lines = [
        f"{STAGE} run {ctx.run.run_id}",
        f"  {len(per)} models ({per['strategy'].nunique()} arms x {per['seed'].nunique()} seeds): "
        f"{spec.describe()}; {train_tokens:,} tokens each ({steps} steps)",
        f"  measured on {n_items} {conf.refs.eval_split} examples and the held-out web documents",
        *[f"  {line}" for line in summary_lines(table, conf.refs.eval_split)],
        "  -> " + ", ".join(f"{name} v{c.version}" for name, c in commits.items()),
    ]
    return "\n".join(lines)


def preflight(conf: Conf) -> None:
    """The tokenizer loads (no Spark needed)."""
    if conf.evaluate is not None:
        load_tokenizer(conf.evaluate.model.tokenizer, "evaluate.model.tokenizer")


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``corpuslake-evaluate`` and ``spark-submit jobs/evaluate.py``."""
    args = job_parser(
        STAGE, "Train the same small LM on each selection and on random; measure it."
    ).parse_args(argv)
    return run_job(STAGE, args, evaluate, READS, preflight=preflight, watch=WATCH)


if __name__ == "__main__":
    raise SystemExit(main())
