"""Ingest: raw files (JSONL plain/.gz/.zst, Parquet, WARC/WET) → bronze.documents + bronze.rejects.

Reads are distributed: the driver only lists files and plans splits (one per compressed file, byte ranges
for large plain JSONL); executors stream each split through ``udfs.readers``. Every record read ends up in
exactly one of the two tables, and the gate checks that reconciliation before anything is committed.
Files that a succeeded ingest run already read (same path, size and mtime) are skipped.

Run it:  corpuslake-ingest --conf conf/local.yaml   or   spark-submit jobs/ingest.py --conf conf/local.yaml
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs import audit
from jobs.config import IngestConf
from jobs.gates import Output, publish
from jobs.runtime import JobContext, UsageError, job_parser, list_files, run_job
from schemas import bronze
from schemas.ingest import PARSED_SCHEMA, SPLIT_SCHEMA
from udfs.readers import ReaderOptions, Split, compression, detect_format, read_splits_arrow

STAGE = "ingest"


@dataclass(frozen=True)
class InputFile:
    source: str
    uri: str
    fmt: str
    size: int
    mtime_ns: int
    fields: tuple[str, str | None, str | None]

    @property
    def fingerprint(self) -> str:
        return f"{self.uri}|{self.size}|{self.mtime_ns}"


def list_inputs(conf: IngestConf, conf_file: str | None = None) -> list[InputFile]:
    """Every input file the profile names, with its format.

    Raises:
        UsageError: a path matches no file, or a file's format cannot be told from its name; the message
            names the profile file and the key.
    """
    where = conf_file or "profile"
    files: list[InputFile] = []
    for i, inp in enumerate(conf.inputs):
        matches = list_files(inp.path)
        if not matches:
            raise UsageError(f"{where}: ingest.inputs[{i}].path: no files match {inp.path!r}")
        for uri, size, mtime in matches:
            fmt = inp.format if inp.format != "auto" else detect_format(uri)
            if fmt is None:
                raise UsageError(
                    f"{where}: ingest.inputs[{i}].format: cannot tell the format of {uri} from its name; "
                    "set format to jsonl, parquet or warc"
                )
            f = inp.fields
            files.append(InputFile(inp.name, uri, fmt, size, mtime, (f.text, f.url, f.id)))
    return files


def plan_splits(files: list[InputFile], split_bytes: int) -> list[Split]:
    """One split per file, except plain JSONL over ``split_bytes``, which is cut into byte ranges."""
    splits = []
    for f in files:
        text, url, id_ = f.fields
        if f.fmt == "jsonl" and compression(f.uri) is None and f.size > split_bytes:
            for start in range(0, f.size, split_bytes):
                end = min(start + split_bytes, f.size)
                splits.append(
                    Split(f.source, f.uri, f.fmt, start, end if end < f.size else None, text, url, id_)
                )
        else:
            splits.append(Split(f.source, f.uri, f.fmt, 0, None, text, url, id_))
    return splits


def _split_bytes(s: Split, sizes: dict[str, int]) -> int:
    return (s.end if s.end is not None else sizes.get(s.uri, 0)) - s.start


def pack_splits(splits: list[Split], sizes: dict[str, int], n_tasks: int) -> list[list[Split]]:
    """Group splits into ``n_tasks`` tasks of similar byte size (largest first, each to the lightest task).

    Per-task overhead in Spark's Python workers is far above the cost of a small file, so many small files
    share a task; a compressed file is still read whole by exactly one task.
    """

    tasks: list[list[Split]] = [[] for _ in range(max(1, min(n_tasks, len(splits))))]
    loads = [0] * len(tasks)
    for s in sorted(splits, key=lambda s: _split_bytes(s, sizes), reverse=True):
        i = loads.index(min(loads))
        tasks[i].append(s)
        loads[i] += _split_bytes(s, sizes)
    return [t for t in tasks if t]


def read_raw(
    spark: SparkSession,
    splits: list[Split],
    opts: ReaderOptions,
    task_bytes: int,
    sizes: dict[str, int] | None = None,
) -> DataFrame:
    """Parsed rows (docs, rejects and one ``file`` row per split), read on executors.

    Args:
        spark: the session.
        splits: what to read.
        opts: reader limits.
        task_bytes: bytes of input one task should get at most (about); at least two tasks per core.
        sizes: file sizes by uri, for balancing (splits without one count as empty).
    """
    sizes = sizes or {}
    total = sum(_split_bytes(s, sizes) for s in splits)
    n_tasks = max(2 * spark.sparkContext.defaultParallelism, -(-total // task_bytes))
    groups = [
        [tuple(asdict(s)[f.name] for f in SPLIT_SCHEMA.fields) for s in g]
        for g in pack_splits(splits, sizes, n_tasks)
    ]
    rdd = spark.sparkContext.parallelize(groups, len(groups)).flatMap(lambda g: g)
    return spark.createDataFrame(rdd, SPLIT_SCHEMA).mapInArrow(
        lambda it: read_splits_arrow(it, opts), PARSED_SCHEMA
    )


def number_records(parsed: DataFrame) -> DataFrame:
    """Make JSONL line numbers per file: add to each row the lines of the file's earlier splits."""
    before = (
        Window.partitionBy("source_file").orderBy("split_start").rowsBetween(Window.unboundedPreceding, -1)
    )
    bases = parsed.filter(F.col("kind") == "file").select(
        "source_file", "split_start", F.coalesce(F.sum("n_lines").over(before), F.lit(0)).alias("_base")
    )
    return (
        parsed.join(F.broadcast(bases), ["source_file", "split_start"], "left")
        .withColumn("record_number", F.col("record_number") + F.coalesce("_base", F.lit(0)))
        .drop("_base")
    )


def dedup_documents(
    existing: DataFrame, run_id: str, snippet_chars: int
) -> Callable[[DataFrame], tuple[DataFrame, DataFrame]]:
    """Split parsed docs into first occurrences and ``duplicate_doc_id`` rejects.

    Within the batch the first occurrence (by file, then position) wins; a doc_id already in bronze from
    another run is a duplicate too. Rows of this same run already in bronze (a retried run) do not count.

    Args:
        existing: bronze.documents as it is now.
        run_id: this run.
        snippet_chars: length of the reject snippet.
    """

    def transform(docs: DataFrame) -> tuple[DataFrame, DataFrame]:
        order = Window.partitionBy("doc_id").orderBy("source_file", "byte_offset", "record_number")
        ranked = docs.withColumn("_rank", F.row_number().over(order)).withColumn(
            "_first",
            F.first(F.concat_ws(":", "source_file", F.coalesce("record_number", "byte_offset"))).over(order),
        )
        prior = (
            existing.filter(F.col("ingest_run_id") != run_id)
            .groupBy("doc_id")
            .agg(F.min("ingest_run_id").alias("_prior_run"))
        )
        marked = ranked.join(prior, "doc_id", "left")
        keep = marked.filter((F.col("_rank") == 1) & F.col("_prior_run").isNull())
        dup = marked.filter((F.col("_rank") > 1) | F.col("_prior_run").isNotNull()).select(
            *[c for c in docs.columns if c not in ("reason", "detail", "snippet")],
            F.lit("duplicate_doc_id").alias("reason"),
            F.when(
                F.col("_prior_run").isNotNull(),
                F.concat(F.lit("doc_id already in bronze.documents from run "), F.col("_prior_run")),
            )
            .otherwise(F.concat(F.lit("doc_id first seen at "), F.col("_first")))
            .alias("detail"),
            F.substring("text", 1, snippet_chars).alias("snippet"),
        )
        return keep.drop("_rank", "_first", "_prior_run"), dup

    return transform


def to_documents(run_id: str, started_at: datetime) -> Callable[[DataFrame], DataFrame]:
    """Parsed doc rows → bronze.documents rows."""

    def transform(df: DataFrame) -> DataFrame:
        return df.select(
            "doc_id",
            "url",
            "domain",
            "source",
            "source_file",
            "source_id",
            "text",
            "n_bytes",
            F.coalesce("meta", F.lit("{}")).alias("meta"),
            F.lit(run_id).alias("ingest_run_id"),
            F.lit(started_at).cast("timestamp").alias("ingested_at"),
        )

    return transform


def to_rejects(run_id: str, started_at: datetime) -> Callable[[DataFrame], DataFrame]:
    """Parsed reject rows → bronze.rejects rows."""

    def transform(df: DataFrame) -> DataFrame:
        return df.select(
            "source",
            "source_file",
            "record_number",
            "byte_offset",
            "reason",
            "detail",
            "snippet",
            "doc_id",
            F.lit(run_id).alias("ingest_run_id"),
            F.lit(started_at).cast("timestamp").alias("ingested_at"),
        )

    return transform


def _fmt_summary(
    run, files_read: int, skipped: int, n_read: int, n_docs: int, by_reason: Counter, commits: dict, lakehouse
) -> str:
    lines = [
        f"ingest run {run.run_id}",
        f"  files read: {files_read} (skipped {skipped} already ingested)",
        f"  records read: {n_read:,} = accepted {n_docs:,} + rejected {sum(by_reason.values()):,}",
    ]
    if by_reason:
        lines.append("  rejected by reason: " + ", ".join(f"{k} {v:,}" for k, v in sorted(by_reason.items())))
    for spec in bronze.TABLES:
        c = commits.get(spec.name)
        state = "unchanged" if c is None else ("already committed" if c.skipped else f"+{c.rows:,} rows")
        version = c.version if c is not None else lakehouse.version(spec)
        lines.append(f"  {spec.name:<18} v{version}  {state}  {lakehouse.path(spec)}")
    return "\n".join(lines)


def ingest(ctx: JobContext) -> str:
    """The stage body: list → skip already-ingested → read → split docs/rejects → gate → publish."""
    conf, lakehouse, run, spark = ctx.conf.ingest, ctx.lakehouse, ctx.run, ctx.spark
    files = list_inputs(conf, ctx.conf.source_file)
    done = audit.succeeded_inputs(lakehouse, STAGE)
    todo = [f for f in files if f.fingerprint not in done]
    run.inputs = [f.fingerprint for f in todo]
    if not todo:
        run.rows_in = run.rows_out = 0
        return _fmt_summary(run, 0, len(files), 0, 0, Counter(), {}, lakehouse)

    opts = ReaderOptions(conf.max_doc_bytes, conf.line_limit, conf.snippet_chars, conf.batch_rows)
    sizes = {f.uri: f.size for f in todo}
    splits = plan_splits(todo, conf.split_bytes)
    parsed = read_raw(spark, splits, opts, conf.split_bytes, sizes).transform(number_records).persist()
    try:
        n_read = parsed.filter(F.col("kind") == "file").agg(F.sum("n_records")).first()[0] or 0
        existing = lakehouse.read(bronze.DOCUMENTS)
        run.tables_read[bronze.DOCUMENTS.name] = lakehouse.version(bronze.DOCUMENTS) or 0
        keep, dups = dedup_documents(existing, run.run_id, conf.snippet_chars)(
            parsed.filter(F.col("kind") == "doc")
        )
        rejects = parsed.filter(F.col("kind") == "reject").unionByName(dups)
        docs_out = keep.transform(to_documents(run.run_id, run.started_at))
        rejects_out = rejects.transform(to_rejects(run.run_id, run.started_at))
        by_reason = Counter(
            {
                r["reason"]: r["n"]
                for r in rejects_out.groupBy("reason").agg(F.count("*").alias("n")).collect()
            }
        )
        n_rej = sum(by_reason.values())
        commits = publish(
            lakehouse,
            run,
            [
                Output(
                    bronze.DOCUMENTS,
                    docs_out,
                    "append",
                    {
                        "run_id": run.run_id,
                        "max_doc_bytes": conf.max_doc_bytes,
                        "expected_rows": n_read - n_rej,
                    },
                ),
                Output(bronze.REJECTS, rejects_out, "append", {"expected_rows": n_rej}),
            ],
        )
    finally:
        parsed.unpersist()
    run.rows_in, run.rows_out = n_read, n_read
    return _fmt_summary(
        run, len(todo), len(files) - len(todo), n_read, n_read - n_rej, by_reason, commits, lakehouse
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``corpuslake-ingest`` and ``spark-submit jobs/ingest.py``."""
    args = job_parser(STAGE, "Ingest raw web text into bronze.documents and bronze.rejects.").parse_args(argv)
    return run_job(STAGE, args, ingest)


if __name__ == "__main__":
    raise SystemExit(main())
