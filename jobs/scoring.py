"""What the model scoring stages share: preflight, scheduling, the model UDF, chunked gated commits.

Shape of every scoring stage (score_prrc, score_perplexity, score_similarity):
  1. preflight   on the driver, before Spark starts: every configured model's folder, config,
                 architecture and tokenizer are checked (``udfs.model_spec.check_model``); a bad entry is
                 one line naming its conf key, exit 2.
  2. schedule    silver.documents (optionally a stratified sample) minus the doc_ids the score table
                 already has for this model id + revision: reruns only do what is missing.
  3. score       ``mapInPandas`` with a runner per Python worker (``udfs.models.get_runner``); on a GPU
                 cluster each task asks for ``gpu.per_task`` GPUs through a stage-level resource profile.
  4. publish     in chunks of ``score.chunk_docs`` documents, each its own gated Delta commit: a killed run
                 keeps every finished chunk, and the rerun schedules only the rest. The gate checks ranges,
                 one row per key in the chunk and in the table, every doc_id in silver.documents, and the
                 row count against the documents scheduled.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from jobs.config import Conf, GpuConf
from jobs.gates import Output, publish
from jobs.ordered import ordered
from jobs.progress import active_counter
from jobs.runtime import JobContext, UsageError
from jobs.tables import Lakehouse
from schemas import silver
from schemas.base import TableSpec
from schemas.scores import ALREADY_SCORED, MISSING_DOC

log = logging.getLogger("corpuslake")


def check_models(entries: list[tuple[str, object, str]], gpu: GpuConf | None = None) -> None:
    """Preflight: ``(conf key, ModelConf, kind)`` entries must load as their kind (config + tokenizer).

    Raises:
        UsageError: every bad entry, one line each.
    """
    from udfs.model_spec import ModelError, check_model

    errors = []
    for role, entry, kind in entries:
        try:
            check_model(entry.spec(role, gpu), kind)
        except ModelError as exc:
            errors.append(str(exc))
    if errors:
        raise UsageError("\n".join(errors))


def stratified_sample(
    per_domain: int | None, seed: int, hold: list[DataFrame] | None = None
) -> Callable[[DataFrame], DataFrame]:
    """At most ``per_domain`` documents per domain, by a seeded hash of doc_id (the same on every rerun).

    The per-domain ranks come from ``jobs.ordered`` over the narrow ``[doc_id, domain, hash]`` rows (a
    range-partitioned sort: a giant domain is ranked by every task, not by one), and the chosen doc_ids
    are joined back. ``hold`` collects the persisted intermediate (unpersist when done with the sample).
    """

    def transform(docs: DataFrame) -> DataFrame:
        if per_domain is None:
            return docs
        keys = docs.select(
            "doc_id",
            F.coalesce("domain", F.lit("")).alias("_domain"),
            F.xxhash64("doc_id", F.lit(seed)).alias("_h"),
        )
        ranked = ordered(keys, ["_domain"], [F.asc("_h"), F.asc("doc_id")], row_number="_r", hold=hold)
        chosen = ranked.filter(F.col("_r") <= per_domain).select("doc_id")
        return docs.join(chosen, "doc_id", "left_semi")

    return transform


def missing(lakehouse: Lakehouse, spec: TableSpec, where) -> Callable[[DataFrame], DataFrame]:
    """Documents without a row in ``spec`` matching ``where`` (a Column over the score table)."""

    def transform(docs: DataFrame) -> DataFrame:
        if not lakehouse.exists(spec):
            return docs
        done = lakehouse.read(spec).filter(where).select("doc_id").distinct()
        return docs.join(done, "doc_id", "left_anti")

    return transform


def gpu_profile(gpu: GpuConf):
    """A stage-level resource profile asking ``gpu.per_task`` GPUs per scoring task (None when off)."""
    if not gpu.enabled:
        return None
    from pyspark.resource import ResourceProfileBuilder, TaskResourceRequests

    return (
        ResourceProfileBuilder().require(TaskResourceRequests().cpus(1).resource("gpu", gpu.per_task)).build
    )


def model_transform(
    spec,
    kind: str,
    out_schema: StructType,
    keep: list[str],
    score: Callable[[object, pd.DataFrame], pd.DataFrame] | None = None,
    capacity: int = 1,
    profile=None,
    extra: tuple[str, ...] = (),
) -> Callable[[DataFrame], DataFrame]:
    """Rows ``keep + text`` → rows ``keep + the runner's columns`` (``out_schema``), on executors.

    Args:
        spec: the ``ModelSpec`` (or a tuple of them, for ``score``).
        kind: the runner kind (``udfs.model_spec.KINDS``).
        out_schema: the output schema: ``keep`` columns then the score columns.
        keep: input columns passed through.
        score: ``(spec, batch) -> score columns``; default ``get_runner(spec, kind).predict_batch``.
        capacity: models a worker keeps loaded at once.
        profile: a resource profile (GPUs per task), or None.
        extra: more input columns ``score`` reads (a DataFrame without one gets it as null).
    """

    def default(s, pdf: pd.DataFrame) -> pd.DataFrame:
        from udfs.models import get_runner

        return get_runner(s, kind, capacity).predict_batch(pdf["text"])

    fn = score or default

    def transform(docs: DataFrame) -> DataFrame:
        # The progress counter of the block this transform is applied in (None outside one).
        counter = active_counter()

        def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for pdf in batches:
                res = fn(spec, pdf)
                if counter is not None:
                    counter.add(len(pdf))
                yield pd.concat([pdf[keep].reset_index(drop=True), res.reset_index(drop=True)], axis=1)

        cols = [F.col(c) if c in docs.columns else F.lit(None).alias(c) for c in extra]
        return docs.select(*keep, "text", *cols).mapInPandas(run, out_schema, profile=profile)

    return transform


def gate_view(lakehouse: Lakehouse, spec: TableSpec, keys: list[str], against_table: bool = True):
    """The check a scoring gate runs on staged rows: doc_ids missing from silver, keys already scored.

    Adds ``_missing_doc`` (the doc_id when silver.documents lacks it) and ``_already_scored`` (the key
    when the table has it); the suite expects both to be null, so failures print the offending ids.
    """
    docs = lakehouse.read(silver.DOCUMENTS).select("doc_id", F.lit(True).alias("_in_silver"))
    table = (
        lakehouse.read(spec).select(*keys, F.lit(True).alias("_in_table"))
        if against_table and lakehouse.exists(spec)
        else None
    )

    def check(staged: DataFrame) -> DataFrame:
        out = staged.join(docs, "doc_id", "left").withColumn(
            MISSING_DOC, F.when(F.col("_in_silver").isNull(), F.col("doc_id"))
        )
        if table is not None:
            out = out.join(table, keys, "left").withColumn(
                ALREADY_SCORED, F.when(F.col("_in_table"), F.concat_ws("|", *[F.col(k) for k in keys]))
            )
        else:
            out = out.withColumn(ALREADY_SCORED, F.lit(None).cast("string"))
        return out.drop("_in_silver", "_in_table")

    return check


@dataclass
class Scored:
    """What one model's scoring did in a run."""

    label: str
    docs: int = 0
    tokens: int = 0
    seconds: float = 0.0
    skipped: int = 0
    chunks: int = 0

    def line(self) -> str:
        rate = self.tokens / self.seconds if self.seconds > 0 else 0.0
        per = self.docs / self.seconds if self.seconds > 0 else 0.0
        done = f"; {self.skipped:,} already scored" if self.skipped else ""
        return (
            f"  {self.label:<28} {self.docs:>9,} docs {self.tokens:>12,} tokens "
            f"{self.seconds:7.1f} s  {per:8.1f} docs/s {rate:10,.0f} tokens/s{done}"
        )


def chunk_ids(todo: DataFrame, n: int, chunk_docs: int) -> list[DataFrame]:
    """``todo`` split into ⌈n / chunk_docs⌉ parts by a hash of doc_id (stable for the same todo set)."""
    parts = max(1, math.ceil(n / chunk_docs))
    if parts == 1:
        return [todo]
    bucket = F.pmod(F.xxhash64("doc_id"), F.lit(parts))
    return [todo.filter(bucket == i) for i in range(parts)]


def score_and_publish(
    ctx: JobContext,
    label: str,
    todo: DataFrame,
    spec: TableSpec,
    keys: list[str],
    scorer: Callable[[DataFrame], DataFrame],
    params: dict | None = None,
    total: int | None = None,
) -> Scored:
    """Score ``todo`` with ``scorer`` and append to ``spec`` in gated chunks of ``score.chunk_docs``.

    ``scorer`` maps documents to rows of ``spec`` with an ``n_tokens`` column. Each chunk is scored into
    a persisted frame (timed: that is the model work), then published as one gated commit.
    """
    conf: Conf = ctx.conf
    lh, run = ctx.lakehouse, ctx.run
    n_todo = todo.count()
    out = Scored(label, skipped=(total - n_todo) if total is not None else 0)
    # audit.runs: documents scheduled in, score rows published out (summed over the stage's models)
    run.rows_in = (run.rows_in or 0) + n_todo
    if n_todo == 0:
        return out
    parts = chunk_ids(todo, n_todo, conf.score.chunk_docs)
    for i, part in enumerate(parts, 1):
        if conf.score.partitions:
            part = part.repartition(conf.score.partitions, "doc_id")
        n_part = part.count() if len(parts) > 1 else n_todo
        t0 = time.perf_counter()
        chunk = f"{label} (chunk {i}/{len(parts)})" if len(parts) > 1 else label
        rows = None
        try:
            with ctx.count(chunk, n_part):
                rows = scorer(part).persist()
                agg = rows.agg(F.count("*").alias("n"), F.sum("n_tokens").alias("t")).first()
            seconds = time.perf_counter() - t0
            output = Output(
                spec,
                rows,
                "append",
                {"expected_rows": n_part, "checked": True, **(params or {})},
                check=gate_view(lh, spec, keys),
                merge_on=keys,
            )
            with ctx.phase(f"{chunk}: {agg['n']:,} docs scored; gate and commit {spec.name}"):
                publish(lh, run, [output], idempotent=False)
        finally:
            if rows is not None:
                rows.unpersist()
        out.docs += agg["n"]
        run.rows_out = (run.rows_out or 0) + agg["n"]
        out.tokens += int(agg["t"] or 0)
        out.seconds += seconds
        out.chunks += 1
        log.info(
            "%s: chunk %d/%d: %d docs, %d tokens, %.1f s",
            label,
            i,
            len(parts),
            agg["n"],
            agg["t"] or 0,
            seconds,
        )
    return out


def silver_docs(ctx: JobContext) -> DataFrame:
    """silver.documents as scoring reads it (records the version read), with the Arrow batch size set."""
    lh = ctx.lakehouse
    ctx.run.tables_read[silver.DOCUMENTS.name] = lh.version(silver.DOCUMENTS) or 0
    # The runner sorts each Arrow batch by length: bigger batches pack better, at the cost of memory.
    ctx.spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(ctx.conf.score.batch_rows))
    # messages: RDS+ embeds a chat record's templated messages; the other scorers read text only.
    return lh.read(silver.DOCUMENTS).select("doc_id", "domain", "text", "messages")


def summary(stage: str, run_id: str, results: list[Scored], idle_line: bool = True) -> str:
    """The stage's closing lines: per model, documents scored, tokens and throughput.

    Args:
        idle_line: say so when no model had a document to score (a rerun with nothing new).
    """
    lines = [f"{stage} run {run_id}"]
    if idle_line and results and all(r.docs == 0 for r in results):
        lines[0] += ": nothing new: every scheduled document already has its scores; nothing written"
    lines += [r.line() for r in results]
    return "\n".join(lines)
