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


def list_inputs(
    conf: IngestConf, conf_file: str | None = None, ignored: list[str] | None = None
) -> list[InputFile]:
    """Every input file the profile names, with its format (hidden files go to ``ignored``: ``list_files``).

    Raises:
        InputError: a path matches no file (the message names the profile file and the key).
        UsageError: a file's format cannot be told from its name; the message names the profile file and
            the key.
    """
    where = conf_file or "profile"
    return [f for i, inp in enumerate(conf.inputs) for f in list_input(where, i, inp, ignored)]


def list_input(where: str, i: int, inp, ignored: list[str] | None = None) -> list[InputFile]:
    """The files of ``ingest.inputs[i]`` (see ``list_inputs``)."""
    matches = list_files(inp.path, ignored)
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
    """One split per file, except plain JSONL and Parquet over ``split_bytes``, which are cut into byte ranges
    (a Parquet range reads the row groups that start in it)."""
    splits = []
    for f in files:
        text, url, id_ = f.fields
        cuttable = f.fmt == "parquet" or (f.fmt == "jsonl" and compression(f.uri) is None)
        if cuttable and f.size > split_bytes:
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


@dataclass(frozen=True)
class SplitSummary:
    """A split's ``file`` row: what it read, the lines it spans, and how the field map resolved."""

    source_file: str
    split_start: int
    n_records: int
    n_lines: int
    n_skipped: dict[str, int]
    n_mapped: int
    field_misses: dict[str, int]


def split_summaries(parsed: DataFrame) -> list[SplitSummary]:
    """The ``file`` rows of ``read_raw``, one per split, collected in one job.

    Record numbering, the per-file row counts, the skip counts and the unresolved field paths are all worked
    out on the driver from these rows: they are bounded by the split plan the driver already holds, never by
    records, and one collect replaces the half-dozen small jobs that aggregated each on its own (about 4 s of
    a 30 s ingest of x100 of the sample).
    """
    rows = (
        parsed.filter(F.col("kind") == "file")
        .select("source_file", "split_start", "n_records", "n_lines", "n_skipped", "n_mapped", "field_misses")
        .collect()
    )
    return [
        SplitSummary(
            r["source_file"],
            r["split_start"],
            r["n_records"] or 0,
            r["n_lines"] or 0,
            dict(r["n_skipped"] or {}),
            r["n_mapped"] or 0,
            dict(r["field_misses"] or {}),
        )
        for r in rows
    ]


def number_records(parsed: DataFrame, summaries: list[SplitSummary]) -> DataFrame:
    """Make JSONL line numbers per file: add to each row the lines of the file's earlier splits.

    Only files read in several splits need it. The bases come from the splits' summaries and are joined
    back as a broadcast local table, so the read is not planned a second time on the build side of the join.

    Args:
        parsed: ``read_raw`` rows.
        summaries: ``split_summaries(parsed)``.
    """
    bases, seen = [], {}
    for r in sorted(summaries, key=lambda r: (r.source_file, r.split_start)):
        before = seen.get(r.source_file, 0)
        if before:
            bases.append((r.source_file, r.split_start, before))
        seen[r.source_file] = before + r.n_lines
    if not bases:
        return parsed
    table = parsed.sparkSession.createDataFrame(bases, "source_file string, split_start long, _base long")
    return (
        parsed.join(F.broadcast(table), ["source_file", "split_start"], "left")
        .withColumn("record_number", F.col("record_number") + F.coalesce("_base", F.lit(0)))
        .drop("_base")
    )


def rows_per_file(summaries: list[SplitSummary]) -> Counter:
    """Rows (docs + rejects) each file produced."""
    rows: Counter = Counter()
    for r in summaries:
        rows[r.source_file] += r.n_records
    return rows


# Columns of a duplicate_doc_id reject: what bronze.rejects keeps of the document row (the text only as its
# snippet), so the duplicate check never moves texts.
_DUP_COLUMNS = ("kind", "source", "source_file", "split_start", "record_number", "byte_offset", "doc_id")


def dedup_documents(
    existing: DataFrame, run_id: str | None, snippet_chars: int
) -> Callable[[DataFrame], tuple[DataFrame, DataFrame, DataFrame]]:
    """Split parsed docs into first occurrences and ``duplicate_doc_id`` rejects.

    Within the batch the first occurrence (by file, then position) wins; a doc_id already in ``existing``
    is a duplicate too. Finding them costs one aggregation over doc_ids alone: the batch's and
    ``existing``'s doc_ids, counted and grouped, give the suspects (doc_ids seen twice, or seen before).
    Only the suspects' rows are ranked (a window by doc_id) and get a snippet, so the texts are never
    shuffled, and a batch without duplicates never sorts its rows. The suspects are persisted and counted
    before they are joined: Spark then knows their size and broadcasts them when they are small, as they
    are unless the batch repeats itself or earlier runs. The kept documents are the rows with no duplicate
    reject, found by an anti join on (file, record number). Callers that use the rejects more than once
    persist them too; once materialized, a small set is broadcast into that anti join as well.

    Args:
        existing: bronze.documents (at the version the run checks against).
        run_id: rows of this run in ``existing`` do not count; None: every row counts.
        snippet_chars: length of the reject snippet.

    Returns:
        ``(kept documents, duplicate rejects, suspects)``; the rejects have the reject columns of
        ``PARSED_SCHEMA`` (``unionByName(..., allowMissingColumns=True)`` with other rejects); the suspects
        are persisted: unpersist them when done.
    """

    def transform(docs: DataFrame) -> tuple[DataFrame, DataFrame, DataFrame]:
        prior = existing if run_id is None else existing.filter(F.col("ingest_run_id") != run_id)
        ids = docs.select("doc_id", F.lit(1).alias("_n"), F.lit(None).cast("string").alias("_run"))
        seen = prior.select("doc_id", F.lit(0).alias("_n"), F.col("ingest_run_id").alias("_run"))
        suspects = (
            ids.unionByName(seen)
            .groupBy("doc_id")
            .agg(F.sum("_n").alias("_n"), F.min("_run").alias("_prior_run"))
            .filter((F.col("_n") > 1) | ((F.col("_n") > 0) & F.col("_prior_run").isNotNull()))
            .select("doc_id", "_prior_run")
            .persist()
        )
        suspects.count()
        keys = docs.select(*_DUP_COLUMNS, "text").join(suspects, "doc_id")
        order = Window.partitionBy("doc_id").orderBy("source_file", "byte_offset", "record_number")
        ranked = keys.withColumn("_rank", F.row_number().over(order)).withColumn(
            "_first",
            F.first(F.concat_ws(":", "source_file", F.coalesce("record_number", "byte_offset"))).over(order),
        )
        dup = ranked.filter((F.col("_rank") > 1) | F.col("_prior_run").isNotNull()).select(
            *_DUP_COLUMNS,
            F.lit("duplicate_doc_id").alias("reason"),
            F.when(
                F.col("_prior_run").isNotNull(),
                F.concat(F.lit("doc_id already in bronze.documents from run "), F.col("_prior_run")),
            )
            .otherwise(F.concat(F.lit("doc_id first seen at "), F.col("_first")))
            .alias("detail"),
            F.substring("text", 1, snippet_chars).alias("snippet"),
        )
        # Every document row has a record number (line, row or WARC record), unique within its file.
        keep = docs.join(
            dup.select("source_file", "record_number"), ["source_file", "record_number"], "left_anti"
        )
        return keep, dup, suspects

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


def record_counts(summaries: list[SplitSummary], uris: list[str]) -> tuple[int, Counter]:
    """Rows the splits of ``uris`` produced (docs + rejects) and the records they skipped, by record type."""
    wanted = set(uris)
    done = [r for r in summaries if r.source_file in wanted]
    by_type: Counter = Counter()
    for r in done:
        by_type.update(r.n_skipped)
    return sum(r.n_records for r in done), +by_type


def unresolved_paths(summaries: list[SplitSummary], files: list[InputFile]) -> list[str]:
    """One warning per file and mapped field path that resolved in none of the file's records."""
    mapped: Counter = Counter()
    misses: dict[str, Counter] = {}
    for r in summaries:
        mapped[r.source_file] += r.n_mapped
        misses.setdefault(r.source_file, Counter()).update(r.field_misses)
    keys = {f.uri: dict(zip(("text", "url", "id"), f.fields, strict=True)) for f in files}
    out = []
    for uri in sorted(keys.keys() & misses.keys()):
        for path, n in sorted(misses[uri].items()):
            if mapped[uri] > 0 and n >= mapped[uri]:
                names = [k for k, v in keys[uri].items() if v == path]
                key = f"fields.{names[0]}" if names else "a field"
                out.append(f"{key} path {path!r} resolved in none of the {mapped[uri]:,} records of {uri}")
    return out
