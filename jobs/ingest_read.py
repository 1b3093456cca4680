"""Ingest's reading side: the input files a profile names, splits planned over them and packed into tasks,
the raw records read on executors (``udfs.readers``), and the transforms from parsed rows to bronze rows:
doc_id duplicates, record numbers, bronze.documents / bronze.rejects columns and the per-file counts. The
stage (``jobs.ingest``) plans against the file ledger, gates and commits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs.config import IngestConf
from jobs.runtime import InputError, UsageError, list_files
from schemas.ingest import PARSED_SCHEMA, SPLIT_SCHEMA
from udfs.readers import read_splits_arrow
from udfs.splits import ReaderOptions, Split, compression, detect_format


@dataclass(frozen=True)
class InputFile:
    """One input file: its source name, path or URI, format, size, mtime and the (text, url, id) field map."""

    source: str
    uri: str
    fmt: str
    size: int
    mtime_ns: int
    fields: tuple[str, str | None, str | None]

    @property
    def fingerprint(self) -> str:
        """What identifies the file's content for the ledger and audit rows: path, size and mtime."""
        return f"{self.uri}|{self.size}|{self.mtime_ns}"


def list_inputs(conf: IngestConf, conf_file: str | None = None) -> list[InputFile]:
    """Every input file the profile names, with its format.

    Raises:
        InputError: a path matches no file (the message names the profile file and the key).
        UsageError: a file's format cannot be told from its name; the message names the profile file and
            the key.
    """
    where = conf_file or "profile"
    return [f for i, inp in enumerate(conf.inputs) for f in list_input(where, i, inp)]


def list_input(where: str, i: int, inp) -> list[InputFile]:
    """The files of ``ingest.inputs[i]`` (see ``list_inputs``)."""
    matches = list_files(inp.path)
    if not matches:
        raise InputError(f"{where}: ingest.inputs[{i}].path: no files match {inp.path!r}")
    files = []
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


def number_records(parsed: DataFrame, split_files: list[str]) -> DataFrame:
    """Make JSONL line numbers per file: add to each row the lines of the file's earlier splits.

    Only files read in several splits need it. Their ``file`` rows (one per split: bounded by the plan the
    driver already holds, never by records) are collected and the bases joined back as a broadcast local
    table, so the read is not planned a second time on the build side of the join.

    Args:
        parsed: ``read_raw`` rows (persisted: the bases are one job over them).
        split_files: uris of the files planned in more than one split.
    """
    if not split_files:
        return parsed
    splits = (
        parsed.filter((F.col("kind") == "file") & F.col("source_file").isin(split_files))
        .select("source_file", "split_start", "n_lines")
        .collect()
    )
    bases, seen = [], {}
    for r in sorted(splits, key=lambda r: (r["source_file"], r["split_start"])):
        before = seen.get(r["source_file"], 0)
        if before:
            bases.append((r["source_file"], r["split_start"], before))
        seen[r["source_file"]] = before + (r["n_lines"] or 0)
    if not bases:
        return parsed
    table = parsed.sparkSession.createDataFrame(bases, "source_file string, split_start long, _base long")
    return (
        parsed.join(F.broadcast(table), ["source_file", "split_start"], "left")
        .withColumn("record_number", F.col("record_number") + F.coalesce("_base", F.lit(0)))
        .drop("_base")
    )


# Columns of a duplicate_doc_id reject: what bronze.rejects keeps of the document row (the text only as its
# snippet), so the duplicate check never moves texts.
_DUP_COLUMNS = ("kind", "source", "source_file", "split_start", "record_number", "byte_offset", "doc_id")


def dedup_documents(
    existing: DataFrame, run_id: str | None, snippet_chars: int
) -> Callable[[DataFrame], tuple[DataFrame, DataFrame]]:
    """Split parsed docs into first occurrences and ``duplicate_doc_id`` rejects.

    Within the batch the first occurrence (by file, then position) wins; a doc_id already in ``existing``
    is a duplicate too. The window and the join with ``existing`` run over narrow key columns (doc_id,
    position, a snippet), never over the texts; the kept documents are the rows with no duplicate reject,
    found by an anti join on (file, record number). Callers that use the rejects more than once persist
    them: once materialized, Spark knows their size and broadcasts them into that anti join when they are
    small, so the texts are not shuffled at all.

    Args:
        existing: bronze.documents (at the version the run checks against).
        run_id: rows of this run in ``existing`` do not count; None: every row counts.
        snippet_chars: length of the reject snippet.

    Returns:
        ``(kept documents, duplicate rejects)``; the rejects have the reject columns of ``PARSED_SCHEMA``
        (``unionByName(..., allowMissingColumns=True)`` with other rejects).
    """

    def transform(docs: DataFrame) -> tuple[DataFrame, DataFrame]:
        keys = docs.select(*_DUP_COLUMNS, F.substring("text", 1, snippet_chars).alias("snippet"))
        order = Window.partitionBy("doc_id").orderBy("source_file", "byte_offset", "record_number")
        ranked = keys.withColumn("_rank", F.row_number().over(order)).withColumn(
            "_first",
            F.first(F.concat_ws(":", "source_file", F.coalesce("record_number", "byte_offset"))).over(order),
        )
        prior = (
            (existing if run_id is None else existing.filter(F.col("ingest_run_id") != run_id))
            .groupBy("doc_id")
            .agg(F.min("ingest_run_id").alias("_prior_run"))
        )
        marked = ranked.join(prior, "doc_id", "left")
        dup = marked.filter((F.col("_rank") > 1) | F.col("_prior_run").isNotNull()).select(
            *_DUP_COLUMNS,
            F.lit("duplicate_doc_id").alias("reason"),
            F.when(
                F.col("_prior_run").isNotNull(),
                F.concat(F.lit("doc_id already in bronze.documents from run "), F.col("_prior_run")),
            )
            .otherwise(F.concat(F.lit("doc_id first seen at "), F.col("_first")))
            .alias("detail"),
            "snippet",
        )
        # Every document row has a record number (line, row or WARC record), unique within its file.
        keep = docs.join(
            dup.select("source_file", "record_number"), ["source_file", "record_number"], "left_anti"
        )
        return keep, dup

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
            "format",
            "messages",
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


def record_counts(parsed: DataFrame) -> tuple[int, Counter]:
    """Rows the splits produced (docs + rejects) and the records they skipped, by record type.

    Aggregated on executors: what reaches the driver is one row per record type.
    """
    n_rows = parsed.filter(F.col("kind") == "file").agg(F.sum("n_records")).first()[0] or 0
    by_type = (
        parsed.filter(F.col("kind") == "file")
        .select(F.explode("n_skipped").alias("type", "n"))
        .groupBy("type")
        .agg(F.sum("n").alias("n"))
        .collect()
    )
    return n_rows, Counter({r["type"]: r["n"] for r in by_type if r["n"]})


def unresolved_paths(parsed: DataFrame, files: list[InputFile]) -> list[str]:
    """One warning per file and mapped field path that resolved in none of the file's records.

    What reaches the driver is bounded by files × mapped fields, never by records.
    """
    per_file = parsed.filter(F.col("kind") == "file")
    mapped = per_file.groupBy("source_file").agg(F.sum("n_mapped").alias("mapped"))
    misses = (
        per_file.select("source_file", F.explode("field_misses").alias("path", "n"))
        .groupBy("source_file", "path")
        .agg(F.sum("n").alias("n"))
    )
    never = (
        misses.join(mapped, "source_file")
        .filter((F.col("mapped") > 0) & (F.col("n") >= F.col("mapped")))
        .orderBy("source_file", "path")
        .collect()
    )
    keys = {f.uri: dict(zip(("text", "url", "id"), f.fields, strict=True)) for f in files}
    out = []
    for r in never:
        names = [k for k, v in keys.get(r["source_file"], {}).items() if v == r["path"]]
        key = f"fields.{names[0]}" if names else "a field"
        out.append(
            f"{key} path {r['path']!r} resolved in none of the {r['mapped']:,} records of {r['source_file']}"
        )
    return out
