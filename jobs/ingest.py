"""Ingest: raw files (JSONL plain/.gz/.zst, Parquet, WARC/WET/WAT/ARC) → bronze.documents + bronze.rejects.

Reads are distributed: the driver only lists files and plans splits (one per compressed file, byte ranges
for large plain JSONL); executors stream each split through ``udfs.readers``. Every record read ends up in
exactly one of the two tables, and the gate checks that reconciliation before anything is committed.
Files that a succeeded ingest run already read (same path, size and mtime) are skipped.

Run it:  corpuslake-ingest --conf conf/local.yaml   or   spark-submit jobs/ingest.py --conf conf/local.yaml
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs import audit
from jobs.config import IngestConf
from jobs.gates import Output, publish
from jobs.runtime import InputError, JobContext, UsageError, job_parser, list_files, run_job
from jobs.tables import CommitResult, TableMoved
from schemas import bronze
from schemas.ingest import PARSED_SCHEMA, SPLIT_SCHEMA
from udfs.readers import read_splits_arrow
from udfs.splits import ReaderOptions, Split, compression, detect_format

STAGE = "ingest"

log = logging.getLogger(__name__)


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
        InputError: a path matches no file (the message names the profile file and the key).
        UsageError: a file's format cannot be told from its name; the message names the profile file and
            the key.
    """
    where = conf_file or "profile"
    return [f for i, inp in enumerate(conf.inputs) for f in _list_input(where, i, inp)]


def _list_input(where: str, i: int, inp) -> list[InputFile]:
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


def preflight(conf) -> None:
    """``list_inputs``' checks on local paths, before Spark starts: a path that matches nothing (exit 1) or a
    file whose format its name does not tell (exit 2) fails at once, with no session, no audit row and no
    warehouse. Remote URIs are listed by the job itself.
    """
    where = conf.source_file or "profile"
    for i, inp in enumerate(conf.ingest.inputs):
        if "://" not in inp.path:
            _list_input(where, i, inp)


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
    existing: DataFrame, run_id: str | None, snippet_chars: int
) -> Callable[[DataFrame], tuple[DataFrame, DataFrame]]:
    """Split parsed docs into first occurrences and ``duplicate_doc_id`` rejects.

    Within the batch the first occurrence (by file, then position) wins; a doc_id already in ``existing``
    is a duplicate too.

    Args:
        existing: bronze.documents (at the version the run checks against).
        run_id: rows of this run in ``existing`` do not count; None: every row counts.
        snippet_chars: length of the reject snippet.
    """

    def transform(docs: DataFrame) -> tuple[DataFrame, DataFrame]:
        order = Window.partitionBy("doc_id").orderBy("source_file", "byte_offset", "record_number")
        ranked = docs.withColumn("_rank", F.row_number().over(order)).withColumn(
            "_first",
            F.first(F.concat_ws(":", "source_file", F.coalesce("record_number", "byte_offset"))).over(order),
        )
        prior = (
            (existing if run_id is None else existing.filter(F.col("ingest_run_id") != run_id))
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


# -- concurrent and crashed runs -------------------------------------------------------------------------
# Each bronze commit of ingest names, in its commit info (the same log entry as its rows), the fingerprints
# of the files its rows came from: the file ledger. It is true exactly when the rows are, whether or not the
# run lived to write its audit row, so a rerun after a kill skips what landed instead of reading it again.
LEDGER_KEY = "corpuslake.inputs"
# A commit whose doc_id check went stale (another run committed to bronze.documents meanwhile) is checked
# again against the new rows, this many times in all.
COMMIT_ATTEMPTS = 5


@dataclass
class FilePlan:
    """What a run does with each input file.

    Attributes:
        read: files to read; both tables get their rows.
        finish: files whose documents a run that has ended (killed, or failed between its two commits)
            committed without their rejects, with that run's id: read again, commit only the rejects.
        skipped: files already ingested (a succeeded run's audit row, or both tables' ledgers).
        in_flight: files whose documents a live run committed a moment ago; it commits their rejects next.
    """

    read: list[InputFile]
    finish: list[tuple[InputFile, str]]
    skipped: list[InputFile]
    in_flight: list[tuple[InputFile, str]]
    # Table → version, read before the ledger: the commits land only on top of these.
    versions: dict[str, int] = field(default_factory=dict)

    @property
    def todo(self) -> list[InputFile]:
        return [f for f, _ in self.finish] + self.read


def file_ledger(lakehouse) -> dict[str, dict[str, str]]:
    """Fingerprint → {bronze table: run id} of every ingest commit that carries the file ledger."""
    out: dict[str, dict[str, str]] = {}
    for spec in bronze.TABLES:
        for _, run_id, value in lakehouse.commit_info(spec, LEDGER_KEY):
            for fp in json.loads(value):
                out.setdefault(fp, {})[spec.name] = run_id
    return out


def plan_files(
    files: list[InputFile],
    succeeded: set[str],
    ledger: dict[str, dict[str, str]],
    ended: set[str],
    run_id: str,
) -> FilePlan:
    """Sort input files into read / finish / skipped / in flight (see ``FilePlan``).

    Args:
        files: the inputs the profile names.
        succeeded: fingerprints that succeeded runs recorded in audit.runs.
        ledger: ``file_ledger``.
        ended: ids of ingest runs that have ended (any status, abandoned included).
        run_id: this run (a retried run id finishes its own earlier attempt).
    """
    plan = FilePlan([], [], [], [])
    docs, rejects = bronze.DOCUMENTS.name, bronze.REJECTS.name
    for f in files:
        landed = ledger.get(f.fingerprint, {})
        if f.fingerprint in succeeded or (docs in landed and rejects in landed):
            plan.skipped.append(f)
        elif docs in landed and (landed[docs] in ended or landed[docs] == run_id):
            plan.finish.append((f, landed[docs]))
        elif docs in landed:
            plan.in_flight.append((f, landed[docs]))
        else:
            plan.read.append(f)
    return plan


def plan_inputs(lakehouse, run, files: list[InputFile], create: bool = False) -> FilePlan:
    """``plan_files`` on the audit rows and the ledger as they are now.

    Args:
        create: create the bronze tables first, and record their versions (read before the ledger) in the
            plan, for commits that must land on top of what the plan saw.
    """
    versions = {}
    if create:
        for spec in bronze.TABLES:
            lakehouse.create_if_missing(spec)
            versions[spec.name] = lakehouse.version(spec)
    plan = plan_files(
        files,
        audit.succeeded_inputs(lakehouse, STAGE),
        file_ledger(lakehouse),
        audit.ended_runs(lakehouse, STAGE),
        run.run_id,
    )
    plan.versions = versions
    return plan


def checked_outputs(
    lakehouse, run, parsed: DataFrame, plan: FilePlan, snippet_chars: int
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """This run's documents and rejects, its doc_ids checked against bronze.documents at the plan's version.

    Files in ``plan.read`` give both; files in ``plan.finish`` only their rejects, computed as the run that
    committed their documents did: against bronze without that run's rows of those files.

    Returns:
        ``(documents, rejects of read files, rejects of finished files)``.
    """
    existing = lakehouse.read(bronze.DOCUMENTS, version=plan.versions[bronze.DOCUMENTS.name])
    docs = parsed.filter(F.col("kind") == "doc")
    rejects = parsed.filter(F.col("kind") == "reject")
    uris = [f.uri for f in plan.read]
    keep, dups = dedup_documents(existing, None, snippet_chars)(docs.filter(F.col("source_file").isin(uris)))
    read_rejects = rejects.filter(F.col("source_file").isin(uris)).unionByName(dups)
    finish_rejects = rejects.limit(0)
    by_run: dict[str, list[str]] = {}
    for f, owner in plan.finish:
        by_run.setdefault(owner, []).append(f.uri)
    for owner, owned in by_run.items():
        mine = (F.col("ingest_run_id") == owner) & F.col("source_file").isin(owned)
        _, owner_dups = dedup_documents(existing.filter(~mine), None, snippet_chars)(
            docs.filter(F.col("source_file").isin(owned))
        )
        finish_rejects = finish_rejects.unionByName(
            rejects.filter(F.col("source_file").isin(owned)).unionByName(owner_dups)
        )
    return (
        keep.transform(to_documents(run.run_id, run.started_at)),
        read_rejects.transform(to_rejects(run.run_id, run.started_at)),
        finish_rejects.transform(to_rejects(run.run_id, run.started_at)),
    )


def _reasons(rejects: DataFrame) -> Counter:
    counts = rejects.groupBy("reason").agg(F.count("*").alias("n")).collect()
    return Counter({r["reason"]: r["n"] for r in counts})


def _ledger(files: list[InputFile]) -> dict[str, str]:
    return {LEDGER_KEY: json.dumps(sorted(f.fingerprint for f in files))}


def _merge(commits: dict[str, CommitResult], new: dict[str, CommitResult]) -> None:
    for name, c in new.items():
        old = commits.get(name)
        if old is not None:
            skipped = c.skipped and old.skipped
            c = CommitResult(name, c.version, skipped, old.files + c.files, old.rows + c.rows)
        commits[name] = c


@dataclass
class Published:
    """What ``publish_checked`` committed: per table, rejects by reason, the files done, and notes."""

    commits: dict[str, CommitResult] = field(default_factory=dict)
    by_reason: Counter = field(default_factory=Counter)
    done: list[InputFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def publish_checked(
    lakehouse, run, parsed: DataFrame, files: list[InputFile], snippet_chars: int, docs_params: dict
) -> Published:
    """Gate and commit this run's rows so that concurrent and crashed runs never double or lose one.

    Each attempt creates the bronze tables if needed, notes their versions, plans the files against the
    audit rows and the ledger (files another run committed meanwhile drop out), checks doc_ids against
    bronze.documents at the noted version, then commits: first the rejects of files to finish (landing only
    on the noted bronze.rejects version: two reruns never finish the same file twice), then the documents
    (landing only on the noted bronze.documents version) and the rejects of files read. A commit that finds
    its table moved (``TableMoved``) commits nothing, and the next attempt checks again against the new rows.

    Args:
        lakehouse: where bronze lives.
        run: this run.
        parsed: ``read_raw`` rows of ``files`` (persisted: attempts read it again).
        files: the files read.
        snippet_chars: reject snippet length.
        docs_params: suite parameters of bronze.documents (``expected_rows`` is added).

    Raises:
        TableMoved: still moving after ``COMMIT_ATTEMPTS`` attempts; nothing of the last one was committed.
    """
    rows = {
        r["source_file"]: r["n"]
        for r in parsed.filter(F.col("kind") == "file")
        .groupBy("source_file")
        .agg(F.sum("n_records").alias("n"))
        .collect()
    }
    out = Published()
    if not any(rows.get(f.uri) for f in files):
        # Files with no records (empty, or only skipped ones) must not add empty table versions.
        out.done = plan_inputs(lakehouse, run, files).todo
        return out
    pending = list(files)
    docs, rejects = bronze.DOCUMENTS.name, bronze.REJECTS.name
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        plan = plan_inputs(lakehouse, run, pending, create=True)
        for f, owner in plan.in_flight:
            note = f"skipped {f.uri}: run {owner}, still running, committed its documents just now"
            out.notes += [note] if note not in out.notes else []
        pending = plan.todo
        if not pending:
            break
        run.tables_read[docs] = plan.versions[docs]
        docs_out, read_rejects, finish_rejects = checked_outputs(lakehouse, run, parsed, plan, snippet_chars)
        try:
            if plan.finish:
                finished = [f for f, _ in plan.finish]
                reasons = _reasons(finish_rejects)
                n_rej = sum(reasons.values())
                step = Output(
                    bronze.REJECTS,
                    finish_rejects,
                    "append",
                    {"expected_rows": n_rej},
                    read_version=plan.versions[rejects],
                    commit_info=_ledger(finished),
                )
                # No rejects to add: nothing to commit (this run's audit row records the files as done).
                if n_rej:
                    _merge(out.commits, publish(lakehouse, run, [step], idempotent=False))
                out.by_reason.update(reasons)
                out.done += finished
                owners = ", ".join(sorted({o for _, o in plan.finish}))
                out.notes.append(
                    f"finished run {owners}: its documents of {len(finished)} files had landed before it "
                    f"ended; their {n_rej:,} rejects are committed now"
                )
            if plan.read:
                reasons = _reasons(read_rejects)
                n_rej = sum(reasons.values())
                n_rows = sum(rows.get(f.uri, 0) for f in plan.read)
                ledger = _ledger(plan.read)
                outputs = [
                    Output(
                        bronze.DOCUMENTS,
                        docs_out,
                        "append",
                        {**docs_params, "expected_rows": n_rows - n_rej},
                        read_version=plan.versions[docs],
                        commit_info=ledger,
                    ),
                    Output(
                        bronze.REJECTS, read_rejects, "append", {"expected_rows": n_rej}, commit_info=ledger
                    ),
                ]
                if n_rows:
                    _merge(out.commits, publish(lakehouse, run, outputs, idempotent=False))
                out.by_reason.update(reasons)
                out.done += plan.read
            break
        except TableMoved as exc:
            if attempt == COMMIT_ATTEMPTS:
                raise
            log.info("%s; checking again (attempt %d of %d)", exc, attempt + 1, COMMIT_ATTEMPTS)
            out.notes.append(
                f"{exc.table} moved while this run checked against v{exc.read_version}: another run "
                f"committed; checked again against its rows (attempt {attempt + 1})"
            )
            pending = [f for f in pending if f not in out.done]
    return out


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


def _top(counts: Counter, limit: int = 8) -> str:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{k} {v:,}" for k, v in items[:limit])
    return text + (f", … {len(items) - limit} more" if len(items) > limit else "")


def _fmt_summary(
    run,
    files_read: int,
    skipped: int,
    n_read: int,
    n_docs: int,
    by_reason: Counter,
    commits: dict,
    lakehouse,
    by_type: Counter | None = None,
    warnings: list[str] | tuple = (),
) -> str:
    by_type = by_type or Counter()
    lines = [
        f"ingest run {run.run_id}",
        f"  files read: {files_read} (skipped {skipped} already ingested)",
        f"  records read: {n_read:,} = accepted {n_docs:,} + rejected {sum(by_reason.values()):,}"
        f" + skipped {sum(by_type.values()):,}",
    ]
    if by_type:
        lines.append("  skipped by type: " + _top(by_type))
    if by_reason:
        lines.append("  rejected by reason: " + _top(by_reason))
    lines.extend(f"  warning: {w}" for w in warnings)
    for spec in bronze.TABLES:
        c = commits.get(spec.name)
        state = "unchanged" if c is None else ("already committed" if c.skipped else f"+{c.rows:,} rows")
        version = c.version if c is not None else lakehouse.version(spec)
        version = "-" if version is None else version
        lines.append(f"  {spec.name:<18} v{version}  {state}  {lakehouse.path(spec)}")
    return "\n".join(lines)


def ingest(ctx: JobContext) -> str:
    """The stage body: list → skip already-ingested → read → split docs/rejects → gate → publish."""
    conf, lakehouse, run, spark = ctx.conf.ingest, ctx.lakehouse, ctx.run, ctx.spark
    files = list_inputs(conf, ctx.conf.source_file)
    todo = plan_inputs(lakehouse, run, files).todo
    run.inputs = [f.fingerprint for f in todo]
    if not todo:
        run.rows_in = run.rows_out = 0
        summary = _fmt_summary(run, 0, len(files), 0, 0, Counter(), {}, lakehouse)
        return summary.replace(
            f"ingest run {run.run_id}",
            f"ingest run {run.run_id}: nothing new: every input file was ingested before; nothing written",
            1,
        )

    opts = ReaderOptions(
        conf.max_doc_bytes,
        conf.line_limit,
        conf.snippet_chars,
        conf.batch_rows,
        html_extractor=conf.html.extractor,
        keep_title=conf.html.keep_title,
        line_limit_set=conf.max_line_bytes is not None,
    )
    sizes = {f.uri: f.size for f in todo}
    splits = plan_splits(todo, conf.split_bytes)
    parsed = read_raw(spark, splits, opts, conf.split_bytes, sizes).transform(number_records).persist()
    try:
        docs_params = {"run_id": run.run_id, "max_doc_bytes": conf.max_doc_bytes}
        published = publish_checked(lakehouse, run, parsed, todo, conf.snippet_chars, docs_params)
        done = published.done
        by_reason, commits = published.by_reason, published.commits
        # Counted over the files this run committed (a file another run committed meanwhile is skipped).
        # Rows = docs + rejects; records read = rows + skipped (WARC records that hold no document).
        parsed_done = parsed.filter(F.col("source_file").isin([f.uri for f in done]))
        n_rows, by_type = record_counts(parsed_done)
        warnings = unresolved_paths(parsed_done, done)
    finally:
        parsed.unpersist()
    n_rej = sum(by_reason.values())
    run.inputs = [f.fingerprint for f in done]
    n_read = n_rows + sum(by_type.values())
    # Audit: rows_in = records read, rows_out = rows published; the difference is the skipped records.
    run.rows_in, run.rows_out = n_read, n_rows
    summary = _fmt_summary(
        run,
        len(done),
        len(files) - len(done),
        n_read,
        n_rows - n_rej,
        by_reason,
        commits,
        lakehouse,
        by_type,
        warnings,
    )
    return "\n".join([summary, *(f"  note: {n}" for n in published.notes)])


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``corpuslake-ingest`` and ``spark-submit jobs/ingest.py``."""
    args = job_parser(STAGE, "Ingest raw web text into bronze.documents and bronze.rejects.").parse_args(argv)
    return run_job(STAGE, args, ingest, preflight=preflight)


if __name__ == "__main__":
    raise SystemExit(main())
