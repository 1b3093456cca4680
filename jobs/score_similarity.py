"""score_similarity: silver.documents + ref.benchmarks → scores.embeddings + scores.similarity.

Two methods share this stage, each on when its model is configured:
  betr  ``score.similarity.embedder`` (a sentence embedder, all-MiniLM-L6-v2 locally): a seeded sample of
        about ``sample_docs`` pool documents is embedded and ranked (the paper ranks a sample and distils it;
        aggregate_docs trains the classifier that scores the whole pool); each benchmark example of
        ``refs.target_splits`` is one target (``jobs.targets``: never one of ``refs.eval_split``), every
        benchmark cut to the same number of targets (``balance_targets``); per (sampled document, benchmark)
        the best rank of the document within the sample over that benchmark's targets (1 = most similar; ranks
        are kept for each target's ``top_k`` documents) and the max cosine.
  rds   ``score.rds.encoder`` (a causal LM): RDS+ embeddings, e = Σ_t (t / Σ_s s)·h_t over the last hidden
        layer, L2-normalized; per (document, benchmark) the max cosine (and the best rank, as for betr),
        over the same targets (RDS+'s queries). A chat record is embedded as its messages through the
        encoder's chat template (the plain template of ``udfs.chat`` when its tokenizer has none).

Document embeddings are the expensive part: they are appended to scores.embeddings in gated chunks and
reruns embed only documents missing for that model id + revision (``persist_embeddings``). Ranks depend
on the whole pool, so scores.similarity is recomputed from all current embeddings on every run (matrix
products on executors; target embeddings computed once and broadcast) and replaces the method's rows.

Run it:  corpuslake stage score_similarity --conf conf/local.yaml
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from jobs import freshness, scoring
from jobs.config import Conf
from jobs.gates import Output, publish
from jobs.methods.betr import balanced_targets, betr_sample
from jobs.ordered import ordered
from jobs.runtime import JobContext, UsageError, job_parser, run_job
from jobs.targets import read_targets
from schemas import ref, scores, silver
from udfs.similarity import SimilarityScan

STAGE = "score_similarity"
READS = (silver.DOCUMENTS, ref.BENCHMARKS)
# Embeddings are incremental (only documents without one); the similarity ranks are over the whole pool, so
# they are recomputed when the pool or the targets change, and not otherwise.
WATCH = freshness.Watch(
    READS, ("score.similarity", "score.rds", "gpu", "refs.target_splits", "refs.eval_split")
)

EMBED_SCHEMA = StructType(
    [
        StructField("doc_id", StringType(), False),
        StructField("embedding", ArrayType(FloatType(), False), False),
        StructField("n_tokens", LongType(), False),
    ]
)


def _methods(conf: Conf) -> list[tuple[str, str, object, str]]:
    """(method, conf key, model entry, runner kind) for each configured method."""
    out = []
    if conf.score.similarity.embedder is not None:
        out.append(("betr", "score.similarity.embedder", conf.score.similarity.embedder, "embedder"))
    if conf.score.rds.encoder is not None:
        out.append(("rds", "score.rds.encoder", conf.score.rds.encoder, "rds_encoder"))
    return out


def preflight(conf: Conf) -> None:
    """At least one method configured; its model loads as an embedder / causal LM."""
    methods = _methods(conf)
    if not methods:
        raise UsageError(
            f"{conf.source_file}: score.similarity.embedder and score.rds.encoder are both unset; "
            "configure at least one"
        )
    scoring.check_models([(key, entry, kind) for _, key, entry, kind in methods], conf.gpu)


def _rds_embed(spec, pdf: pd.DataFrame) -> pd.DataFrame:
    from udfs.models import get_runner

    runner = get_runner(spec, "rds_encoder")
    return runner.predict_batch(runner.model_texts(pdf))


def embeddings(spec, kind: str, profile=None):
    """Documents ``[doc_id, text]`` (and ``messages``) → ``[doc_id, embedding, n_tokens]`` (L2-normalized
    float32). The RDS+ encoder embeds a chat record's chat-templated messages (``RdsRunner.model_texts``)."""
    if kind == "rds_encoder":
        return scoring.model_transform(
            spec, kind, EMBED_SCHEMA, ["doc_id"], score=_rds_embed, profile=profile, extra=("messages",)
        )
    return scoring.model_transform(spec, kind, EMBED_SCHEMA, ["doc_id"], profile=profile)


SCAN_SCHEMA = StructType(
    [
        StructField("kind", StringType(), False),
        StructField("doc_id", StringType(), False),
        StructField("benchmark", StringType(), False),
        StructField("target", IntegerType(), False),
        StructField("cosine", DoubleType(), False),
    ]
)


def similarity(
    emb: DataFrame,
    targets: np.ndarray,
    target_bench: list[str],
    top_k: int | None,
    block: int = 1024,
    hold: list[DataFrame] | None = None,
) -> DataFrame:
    """Per (document, benchmark): ``best_rank`` over the benchmark's targets and ``max_cosine``.

    Args:
        emb: ``[doc_id, embedding]``, L2-normalized.
        targets: ``[n_targets, d]`` L2-normalized target embeddings.
        target_bench: each target's benchmark.
        top_k: ranks are computed for each target's top_k documents (None: all); a document outside
            every top_k of a benchmark gets a null best_rank.
        block: targets per matrix product on the executors.
        hold: collects ``jobs.ordered``'s persisted intermediate (unpersist when done with the result).

    Returns:
        ``[doc_id, benchmark, best_rank, max_cosine]``. The rank of a document under target i is its
        position among all documents by cosine to i, descending, ties broken by doc_id.
    """
    order = np.argsort(np.asarray(target_bench, dtype=object), kind="stable")
    tgt = np.asarray(targets, dtype=np.float32)[order]
    bench = [target_bench[i] for i in order]
    shared = emb.sparkSession.sparkContext.broadcast((tgt, bench))

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        t, tb = shared.value
        yield from SimilarityScan(t, tb, top_k, block)(batches)

    rows = emb.select("doc_id", "embedding").mapInPandas(run, SCAN_SCHEMA)
    maxes = rows.filter(F.col("kind") == "max").select(
        "doc_id", "benchmark", F.col("cosine").alias("max_cosine")
    )
    # Each scan task kept every target's top_k: a target has up to tasks × top_k candidates. Ranked per
    # target by jobs.ordered (range-partitioned: the candidates of a target, or all its documents when
    # top_k is null, are spread over tasks, not sorted by one).
    cands = rows.filter(F.col("kind") == "cand").select("doc_id", "benchmark", "target", "cosine")
    ranked = ordered(cands, ["target"], [F.desc("cosine"), F.asc("doc_id")], row_number="rank", hold=hold)
    if top_k is not None:
        ranked = ranked.filter(F.col("rank") <= top_k)
    best = ranked.groupBy("doc_id", "benchmark").agg(F.min("rank").cast("int").alias("best_rank"))
    return maxes.join(best, ["doc_id", "benchmark"], "left").select(
        "doc_id", "benchmark", "best_rank", "max_cosine"
    )


def benchmark_targets(ctx: JobContext) -> DataFrame:
    """The targets, ``[doc_id, benchmark, text]``: ref.benchmarks examples of ``refs.target_splits`` (of
    ``score.similarity.benchmarks`` when set), gated by ``jobs.targets`` (none from ``refs.eval_split``)."""
    t = read_targets(ctx, ctx.conf.score.similarity.benchmarks)
    return t.select(F.concat_ws("|", "benchmark", "split", "example_id").alias("doc_id"), "benchmark", "text")


# Target embeddings come to the driver and are broadcast to every scan task: fine for benchmark example
# sets (thousands to tens of thousands), not for a pool. Past this many targets the stage stops and says so.
MAX_TARGETS = 100_000


def embed_targets(targets: DataFrame, spec, kind: str) -> tuple[np.ndarray, list[str]]:
    """Target embeddings (computed on executors with the same runner, collected once) and benchmarks.

    Raises:
        UsageError: more than ``MAX_TARGETS`` targets (they are collected on the driver and broadcast).
    """
    n = targets.count()
    if n > MAX_TARGETS:
        raise UsageError(
            f"score_similarity: {n:,} benchmark targets; at most {MAX_TARGETS:,} are embedded on the driver "
            "and broadcast to every task. Narrow them with score.similarity.benchmarks / refs.target_splits"
        )
    emb = targets.transform(embeddings(spec, kind)).join(targets.select("doc_id", "benchmark"), "doc_id")
    rows = emb.orderBy("doc_id").collect()
    if not rows:
        return np.zeros((0, 0), dtype=np.float32), []
    return np.array([r["embedding"] for r in rows], dtype=np.float32), [r["benchmark"] for r in rows]


def score_similarity(ctx: JobContext) -> str:
    """The stage body: embed missing documents per method, then recompute and replace similarity."""
    conf, lh, run = ctx.conf, ctx.lakehouse, ctx.run
    sc = conf.score.similarity
    docs = scoring.silver_docs(ctx)
    n_docs = docs.count()
    targets = benchmark_targets(ctx).persist()
    profile = scoring.gpu_profile(conf.gpu)
    results, parts, lines, cached = [], [], [], [targets]
    expected = 0  # every current document gets one row per benchmark and method
    try:
        for method, key, entry, kind in _methods(conf):
            spec = entry.spec(key, conf.gpu)
            embed = embeddings(spec, kind, profile)
            label = f"{method} {spec.key}"
            # BETR ranks a seeded sample of the pool against balanced targets (the paper ranks a sample and
            # distils it into a classifier, which aggregate_docs trains); RDS+ scores every document against
            # every example of each task.
            m_docs, m_targets, n_ranked = docs, targets, n_docs
            if method == "betr":
                m_docs = betr_sample(docs, n_docs, sc.sample_docs, sc.sample_seed)
                if m_docs is not docs:
                    m_docs = m_docs.persist()
                    cached.append(m_docs)
                    n_ranked = m_docs.count()
                if sc.balance_targets:
                    m_targets = balanced_targets(targets, sc.sample_seed, hold=cached)
            if sc.persist_embeddings:
                done = (
                    (F.col("method") == method)
                    & (F.col("model_id") == spec.id)
                    & (F.col("revision") == spec.revision)
                )
                todo = m_docs.transform(scoring.missing(lh, scores.EMBEDDINGS, done))

                def rows(part, method=method, spec=spec, embed=embed):
                    return part.transform(embed).select(
                        "doc_id",
                        F.lit(method).alias("method"),
                        F.lit(spec.id).alias("model_id"),
                        F.lit(spec.revision).alias("revision"),
                        F.size("embedding").cast("int").alias("dim"),
                        "embedding",
                        "n_tokens",
                        F.lit(run.run_id).alias("run_id"),
                        F.lit(run.started_at).alias("scored_at"),
                    )

                results.append(
                    scoring.score_and_publish(
                        ctx, label, todo, scores.EMBEDDINGS, scores.EMBEDDING_KEYS, rows, total=n_ranked
                    )
                )
                emb = (
                    lh.read(scores.EMBEDDINGS)
                    .filter(done)
                    .join(m_docs.select("doc_id"), "doc_id", "left_semi")
                    .select("doc_id", "embedding")
                )
            else:
                t0 = time.perf_counter()
                emb = m_docs.transform(embed).persist()
                cached.append(emb)
                agg = emb.agg(F.count("*").alias("n"), F.sum("n_tokens").alias("t")).first()
                results.append(scoring.Scored(label, agg["n"], int(agg["t"] or 0), time.perf_counter() - t0))
            tgt, tb = embed_targets(m_targets, spec, kind)
            if not tb:
                raise UsageError("score_similarity: the target examples gave no embeddings")
            counts = pd.Series(tb).value_counts()
            n_targets = F.create_map(*[F.lit(x) for b, c in counts.items() for x in (b, int(c))])
            sim = similarity(emb, tgt, tb, sc.top_k, sc.block_targets, hold=cached)
            parts.append(
                sim.select(
                    "doc_id",
                    "benchmark",
                    F.lit(method).alias("method"),
                    F.lit(spec.id).alias("model_id"),
                    F.lit(spec.revision).alias("revision"),
                    "best_rank",
                    "max_cosine",
                    n_targets[F.col("benchmark")].cast("int").alias("n_targets"),
                    F.lit(n_ranked).cast("long").alias("pool_docs"),
                    F.lit(run.run_id).alias("run_id"),
                    F.lit(run.started_at).alias("scored_at"),
                )
            )
            expected += n_ranked * len(counts)
            sampled = (
                f" (a sample of the {n_docs:,}: score.similarity.sample_docs)" if n_ranked < n_docs else ""
            )
            balanced = " (balanced)" if m_targets is not targets else ""
            lines.append(
                f"  {method}: {len(tb)} targets{balanced} over {len(counts)} benchmarks x {n_ranked:,} "
                f"documents{sampled}"
            )
        run.rows_out = (run.rows_out or 0) + expected  # the similarity rows, beside any new embeddings
        out = parts[0]
        for p in parts[1:]:
            out = out.unionByName(p)
        publish(
            lh,
            run,
            [
                Output(
                    scores.SIMILARITY,
                    out,
                    "overwrite-partition",
                    {"expected_rows": expected, "checked": True},
                    check=scoring.gate_view(
                        lh, scores.SIMILARITY, scores.SIMILARITY_KEYS, against_table=False
                    ),
                )
            ],
        )
    finally:
        for df in cached:
            df.unpersist()
    return scoring.summary(STAGE, run.run_id, results, idle_line=False) + "\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = job_parser(STAGE, "BETR and RDS+ similarity of documents to benchmark examples.").parse_args(argv)
    return run_job(STAGE, args, score_similarity, READS, preflight=preflight, watch=WATCH)


if __name__ == "__main__":
    sys.exit(main())
