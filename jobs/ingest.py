"""Ingest: raw files (JSONL plain/.gz/.zst, Parquet, WARC/WET/WAT/ARC) → bronze.documents + bronze.rejects.

Reads are distributed: the driver only lists files and plans splits (one per compressed file, byte ranges
for large plain JSONL); executors stream each split through ``udfs.readers``. Every record read ends up in
exactly one of the two tables, and the gate checks that reconciliation before anything is committed.
Files that a succeeded ingest run already read (same path, size and mtime) are skipped. Listing, planning
and reading are ``jobs.ingest_read``; this module plans against the file ledger, gates and commits.

Run it:  corpuslake-ingest --conf conf/local.yaml   or   spark-submit jobs/ingest.py --conf conf/local.yaml
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs import audit
from jobs.gates import Output, publish
from jobs.ingest_read import (
    InputFile,
    dedup_documents,
    list_input,
    list_inputs,
    number_records,
    plan_splits,
    read_raw,
    record_counts,
    rows_per_file,
    split_summaries,
    to_documents,
    to_rejects,
    unresolved_paths,
)
from jobs.runtime import JobContext, ignored_notes, job_parser, run_job
from jobs.session import session_settings
from jobs.tables import CommitResult, TableMoved
from schemas import bronze
from udfs.splits import ReaderOptions

STAGE = "ingest"
CACHE_COMPRESSED = "spark.sql.inMemoryColumnarStorage.compressed"

log = logging.getLogger(__name__)


def preflight(conf) -> None:
    """``list_inputs``' checks on local paths, before Spark starts: a path that matches nothing (exit 1) or a
    file whose format its name does not tell (exit 2) fails at once, with no session, no audit row and no
    warehouse. Remote URIs are listed by the job itself.
    """
    where = conf.source_file or "profile"
    for i, inp in enumerate(conf.ingest.inputs):
        if "://" not in inp.path:
            list_input(where, i, inp)


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
) -> tuple[DataFrame, DataFrame, DataFrame, list[DataFrame]]:
    """This run's documents and rejects, its doc_ids checked against bronze.documents at the plan's version.

    Files in ``plan.read`` give both; files in ``plan.finish`` only their rejects, computed as the run that
    committed their documents did: against bronze without that run's rows of those files.

    Returns:
        ``(documents, rejects of read files, rejects of finished files, held)``: ``held`` are the duplicate
        checks' suspects and the duplicate rejects, persisted (the reject counts, the rejects and the
        documents' anti join all read the rejects, and once materialized a small set is broadcast into that
        join); unpersist them when done.
    """
    existing = lakehouse.read(bronze.DOCUMENTS, version=plan.versions[bronze.DOCUMENTS.name])
    docs = parsed.filter(F.col("kind") == "doc")
    rejects = parsed.filter(F.col("kind") == "reject")
    uris = [f.uri for f in plan.read]
    keep, dups, suspects = dedup_documents(existing, None, snippet_chars)(
        docs.filter(F.col("source_file").isin(uris))
    )
    held = [suspects, dups.persist()]
    read_rejects = rejects.filter(F.col("source_file").isin(uris)).unionByName(dups, allowMissingColumns=True)
    finish_rejects = rejects.limit(0)
    by_run: dict[str, list[str]] = {}
    for f, owner in plan.finish:
        by_run.setdefault(owner, []).append(f.uri)
    try:
        for owner, owned in by_run.items():
            mine = (F.col("ingest_run_id") == owner) & F.col("source_file").isin(owned)
            _, owner_dups, owner_suspects = dedup_documents(existing.filter(~mine), None, snippet_chars)(
                docs.filter(F.col("source_file").isin(owned))
            )
            held.append(owner_suspects)
            finish_rejects = finish_rejects.unionByName(
                rejects.filter(F.col("source_file").isin(owned)).unionByName(
                    owner_dups, allowMissingColumns=True
                )
            )
    except BaseException:
        # The caller unpersists what this returns; on the way out, nothing is returned.
        for df in held:
            df.unpersist()
        raise
    return (
        keep.transform(to_documents(run.run_id, run.started_at)),
        read_rejects.transform(to_rejects(run.run_id, run.started_at)),
        finish_rejects.transform(to_rejects(run.run_id, run.started_at)),
        held,
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
    lakehouse,
    run,
    parsed: DataFrame,
    rows: Counter,
    files: list[InputFile],
    snippet_chars: int,
    docs_params: dict,
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
        rows: rows (docs + rejects) per file (``rows_per_file``).
        files: the files read.
        snippet_chars: reject snippet length.
        docs_params: suite parameters of bronze.documents (``expected_rows`` is added).

    Raises:
        TableMoved: still moving after ``COMMIT_ATTEMPTS`` attempts; nothing of the last one was committed.
    """
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
        docs_out, read_rejects, finish_rejects, held = checked_outputs(
            lakehouse, run, parsed, plan, snippet_chars
        )
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
        finally:
            for df in held:
                df.unpersist()
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


def file_batches(files: list[InputFile], commit_bytes: int | None) -> list[list[InputFile]]:
    """``files`` in listing order, cut into batches of at most ``commit_bytes`` of input (a larger file is a
    batch of its own); one batch when ``commit_bytes`` is None."""
    if commit_bytes is None:
        return [files] if files else []
    batches: list[list[InputFile]] = []
    size = 0
    for f in files:
        if not batches or size + f.size > commit_bytes:
            batches.append([])
            size = 0
        batches[-1].append(f)
        size += f.size
    return batches


def _ingest_batch(
    spark, lakehouse, run, files: list[InputFile], opts: ReaderOptions, conf, docs_params: dict
) -> tuple[Published, list]:
    """Read, check and publish one batch of files: its own cached read and gated commits."""
    sizes = {f.uri: f.size for f in files}
    splits = plan_splits(files, conf.split_bytes)
    # Persisted before numbering: every job below reads these rows, and the reader runs once.
    raw = read_raw(spark, splits, opts, conf.split_bytes, sizes).persist()
    # The summaries' collect is the job that fills the cache, and the gates' Great Expectations batch is a
    # second cache of the staged documents, texts included. Spark's in-memory columns are compressed by
    # default, which costs CPU for every text (scanning it for runs and dictionary values) and saves little
    # on web text: at x100 of the sample, the read and cache took 15.4-16.0 s compressed against 11.6-13.4 s
    # uncompressed (9.3-9.5 s for the read alone); the gates' cache uncompressed too, a warm ingest took
    # 11.7 s against 13.0 s (medians of 3, alternating, one JVM; 2026-11-28).
    try:
        with session_settings(spark, {CACHE_COMPRESSED: "false"}):
            summaries = split_summaries(raw)
            parsed = number_records(raw, summaries)
            published = publish_checked(
                lakehouse, run, parsed, rows_per_file(summaries), files, conf.snippet_chars, docs_params
            )
    finally:
        raw.unpersist()
    return published, summaries


def ingest(ctx: JobContext) -> str:
    """The stage body: list → skip already-ingested → read → split docs/rejects → gate → publish."""
    conf, lakehouse, run, spark = ctx.conf.ingest, ctx.lakehouse, ctx.run, ctx.spark
    ignored: list[str] = []
    files = list_inputs(conf, ctx.conf.source_file, ignored)
    todo = plan_inputs(lakehouse, run, files).todo
    run.inputs = [f.fingerprint for f in todo]
    published = Published(notes=ignored_notes(ignored))
    if not todo:
        run.rows_in = run.rows_out = 0
        summary = _fmt_summary(run, 0, len(files), 0, 0, Counter(), {}, lakehouse)
        summary = summary.replace(
            f"ingest run {run.run_id}",
            f"ingest run {run.run_id}: nothing new: every input file was ingested before; nothing written",
            1,
        )
        return _with_notes(summary, published.notes)

    opts = ReaderOptions(
        conf.max_doc_bytes,
        conf.line_limit,
        conf.snippet_chars,
        conf.batch_rows,
        html_extractor=conf.html.extractor,
        keep_title=conf.html.keep_title,
        line_limit_set=conf.max_line_bytes is not None,
        array_limit=conf.max_json_array_bytes,
    )
    docs_params = {"run_id": run.run_id, "max_doc_bytes": conf.max_doc_bytes}
    summaries: list = []
    for batch in file_batches(todo, conf.commit_bytes):
        got, batch_summaries = _ingest_batch(spark, lakehouse, run, batch, opts, conf, docs_params)
        summaries += batch_summaries
        _merge(published.commits, got.commits)
        published.by_reason.update(got.by_reason)
        published.done += got.done
        published.notes += got.notes
    done = published.done
    by_reason, commits = published.by_reason, published.commits
    # Counted over the files this run committed (a file another run committed meanwhile is skipped).
    # Rows = docs + rejects; records read = rows + skipped (WARC records that hold no document).
    n_rows, by_type = record_counts(summaries, [f.uri for f in done])
    warnings = unresolved_paths(summaries, done)
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
    return _with_notes(summary, published.notes)


def _with_notes(summary: str, notes: list[str]) -> str:
    """The stage's closing text: the summary, then one ``note:`` line each."""
    return "\n".join([summary, *(f"  note: {n}" for n in notes)])


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``corpuslake-ingest`` and ``spark-submit jobs/ingest.py``."""
    args = job_parser(STAGE, "Ingest raw web text into bronze.documents and bronze.rejects.").parse_args(argv)
    return run_job(STAGE, args, ingest, preflight=preflight)


if __name__ == "__main__":
    raise SystemExit(main())
