"""What every job shares: argument parsing, the run wrapper, exit codes and one-line errors.

Exit codes: 0 ok, 1 other error, 2 bad usage or conf, 3 gate failed or upstream gate not passed.
A user never sees a stack trace: unexpected errors print one line and the path of a log with the details.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import logging
import os
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow.fs as pafs
from pyspark.sql import SparkSession

from jobs import audit, freshness
from jobs.config import Conf, ConfError, load_conf
from jobs.gates import GateFailed
from jobs.progress import Ticker
from jobs.session import get_spark
from jobs.tables import CommitConflict, Lakehouse, SchemaMismatch, open_lakehouse

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_GATE = 0, 1, 2, 3

log = logging.getLogger("corpuslake")


_WILDCARD = re.compile(r"[*?\[]")


def list_files(pattern: str, ignored: list[str] | None = None) -> list[tuple[str, int, int]]:
    """Files matching a local glob or an object-store pattern, sorted: (uri, size, mtime_ns).

    A folder stands for every file below it (as ``spark.read`` takes one). Below a pattern's wildcards or a
    folder, a file with a name, or in a folder, that starts with ``_`` or ``.`` is left out, as Spark and
    Hadoop leave them out: a Spark output folder's ``_SUCCESS``, ``.part-….crc`` and ``_temporary/`` are not
    records. Those go to ``ignored`` (when given) so the caller can say so. A path naming one file is read
    whatever its name.
    """
    exact = not _WILDCARD.search(pattern)
    base = _fixed_folder(pattern)
    if "://" not in pattern:
        if exact and os.path.isdir(pattern):
            found = glob.glob(os.path.join(glob.escape(pattern), "**"), recursive=True, include_hidden=True)
        else:
            found = glob.glob(pattern, recursive=True, include_hidden=not exact)
        files = [(p, os.stat(p)) for p in found if os.path.isfile(p)]
        listed = [(os.path.abspath(p), st.st_size, st.st_mtime_ns, _hidden(p, base)) for p, st in files]
    else:
        import fnmatch

        fs, path = pafs.FileSystem.from_uri(pattern.replace("s3a://", "s3://", 1))
        scheme = pattern.split("://", 1)[0]
        root = _fixed_folder(path)
        info = fs.get_file_info(path) if exact else None
        if info is not None and info.type == pafs.FileType.File:
            infos = [info]
        elif info is None or info.type == pafs.FileType.Directory:
            infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
        else:
            infos = []
        listed = [
            (f"{scheme}://{i.path}", i.size, int(i.mtime_ns or 0), _hidden(i.path, root))
            for i in infos
            if i.type == pafs.FileType.File and (exact or fnmatch.fnmatch(i.path, path))
        ]
    if ignored is not None:
        ignored.extend(sorted(uri for uri, _, _, hidden in listed if hidden))
    return sorted((uri, size, mtime) for uri, size, mtime, hidden in listed if not hidden)


def ignored_notes(uris: list[str]) -> list[str]:
    """The summary line for the files ``list_files`` left out, naming the first few; none when none."""
    if not uris:
        return []
    names = ", ".join(uris[:3]) + (f" and {len(uris) - 3} more" if len(uris) > 3 else "")
    return [
        f"ignored {len(uris)} file(s) whose name or folder starts with '_' or '.' (as Spark does: _SUCCESS, "
        f".crc, _temporary): {names}; name a file exactly to read it"
    ]


def _fixed_folder(pattern: str) -> str:
    """The part of a path that no wildcard touches: the path itself, or the folder before the first one."""
    m = _WILDCARD.search(pattern)
    return pattern if m is None else pattern[: m.start()].rsplit("/", 1)[0]


def _hidden(path: str, base: str) -> bool:
    """A name starting with ``_`` or ``.`` below ``base`` (the folder or the pattern's fixed part)."""
    rel = path[len(base) :] if path.startswith(base) else ""
    return any(part.startswith(("_", ".")) for part in rel.replace(os.sep, "/").split("/") if part)


class InputError(RuntimeError):
    """Bad input a user can fix (a path, a format); printed as one line."""


class UsageError(ValueError):
    """Bad input that is the profile's or the command line's fault (exit 2)."""


@dataclass
class JobContext:
    """What a stage body gets: the session, the lakehouse, the validated conf and its run."""

    spark: SparkSession
    lakehouse: Lakehouse
    conf: Conf
    run: audit.Run
    progress: Ticker | None = None
    # --full: recompute from all the inputs instead of the new ones only (clean)
    full: bool = False

    def count(self, label: str, total: int | None, unit: str = "docs"):
        """A block whose executor work counts ``unit`` toward the progress line (see ``jobs.progress``)."""
        if self.progress is None:
            return contextlib.nullcontext(None)
        return self.progress.count(label, total, unit)

    def phase(self, text: str):
        """A block the progress line names (e.g. ``gold.selection: gate and commit``)."""
        if self.progress is None:
            return contextlib.nullcontext(None)
        return self.progress.phase(text)


@dataclass
class StageResult:
    """How one stage run ended, for a run's closing table."""

    stage: str
    code: int
    seconds: float
    run_id: str | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    tables_written: dict[str, int] | None = None
    engine: str | None = None

    @property
    def status(self) -> str:
        return {EXIT_OK: "ok", EXIT_USAGE: "bad conf", EXIT_GATE: "gate failed"}.get(self.code, "failed")


def add_conf_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--conf``, ``--set`` and ``--verbose``: what every command that reads a profile takes."""
    p.add_argument(
        "--conf", default=os.environ.get("CORPUSLAKE_CONF", "conf/local.yaml"), help="YAML profile"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a profile key, e.g. --set ingest.max_doc_bytes=200000 (repeatable)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log progress and print tracebacks")
    return p


def job_parser(stage: str, description: str) -> argparse.ArgumentParser:
    """The arguments every job takes (the same under spark-submit, the CLI and a wheel task)."""
    p = add_conf_args(argparse.ArgumentParser(prog=f"corpuslake-{stage}", description=description))
    p.add_argument("--run-id", default=None, help="reuse a run id to retry a run idempotently")
    return p


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    for noisy in ("py4j", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


@contextlib.contextmanager
def stage_jobs(spark, stage: str, run_id: str):
    """The stage's Spark jobs form one job group named after it: the UI groups them by stage, and the
    event log's funnel check (``jobs.funnel``) can judge a range of stages."""
    sc = spark.sparkContext
    sc.setJobGroup(stage, f"corpuslake {stage} run {run_id}")
    try:
        yield
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)


def _error_log(exc: BaseException) -> str:
    fd, path = tempfile.mkstemp(prefix="corpuslake-error-", suffix=".log")
    with os.fdopen(fd, "w") as fh:
        fh.write("".join(traceback.format_exception(exc)))
    return path


def run_job(
    stage: str,
    args: argparse.Namespace,
    body: Callable[[JobContext], str],
    reads: list | tuple = (),
    conf: Conf | None = None,
    out=None,
    preflight: Callable[[Conf], None] | None = None,
    results: list[StageResult] | None = None,
    watch: freshness.Watch | None = None,
    skip_unchanged: bool = False,
) -> int:
    """Run one stage: load conf → session → lakehouse → audit start → upstream check → body → audit end.

    Args:
        stage: the stage name (audit rows, Delta app ids ``corpuslake.<stage>.<run id>``).
        args: parsed ``job_parser`` arguments.
        body: the stage; returns the summary to print.
        reads: table specs the stage reads (their latest gates must have passed).
        conf: an already loaded conf (the CLI loads it once for several stages).
        out: where summaries go (default stdout).
        preflight: checks of the conf that need no Spark (model folders, architectures, local input
            paths); a ``UsageError`` from it exits 2 and an ``InputError`` exits 1, before any session
            starts, any audit row is written or the warehouse is created.
        results: where to append this run's ``StageResult`` (the CLI's closing table).
        watch: what the stage's output depends on (``jobs.freshness``): the run records it in audit.runs.
        skip_unchanged: with ``watch``, skip the body when nothing it watches changed since the run that
            computed the outputs (one line says so, nothing is written).

    Returns:
        The process exit code.
    """
    t0 = time.perf_counter()
    code, run, engine = _run_job(stage, args, body, reads, conf, out, preflight, watch, skip_unchanged)
    if results is not None:
        results.append(
            StageResult(
                stage,
                code,
                time.perf_counter() - t0,
                run.run_id if run else None,
                run.rows_in if run else None,
                run.rows_out if run else None,
                dict(run.tables_written) if run else None,
                engine,
            )
        )
    return code


def _run_job(
    stage, args, body, reads, conf, out, preflight, watch=None, skip_unchanged=False
) -> tuple[int, audit.Run | None, str | None]:
    """``run_job``'s work; also returns the run (None when it failed before audit started) and the engine."""
    out = out or sys.stdout
    _setup_logging(getattr(args, "verbose", False))
    try:
        conf = conf or load_conf(args.conf, args.overrides)
        if preflight is not None:
            preflight(conf)
    except (ConfError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE, None, None
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR, None, None
    lakehouse = run = None
    try:
        spark = get_spark(conf.spark, conf.storage.engine)
        lakehouse = open_lakehouse(
            spark, conf.storage.warehouse, conf.storage.engine, conf.storage.storage_options
        )
        run = audit.start_run(lakehouse, stage, args.run_id, conf.profile)
        # The run id first, so that a run killed before its summary can still be named (--run-id).
        print(f"{stage} run {run.run_id} started", file=out, flush=True)
        for why, row in run.abandoned:
            print(f"  marked run {row['run_id']} abandoned: it never ended and {why}", file=out, flush=True)
        run.tables_read.update(audit.check_upstream(lakehouse, list(reads)))
        if watch is not None:
            versions, run.inputs = freshness.state(lakehouse, conf, watch)
            run.tables_read.update(versions)
            since = (
                freshness.unchanged_since(lakehouse, stage, conf, watch, versions, run.inputs)
                if skip_unchanged
                else None
            )
            if since is not None:
                run.inputs = [*run.inputs, freshness.SAME_AS + since]
                summary = freshness.skipped_line(stage, run.run_id, since, versions)
                audit.finish_run(lakehouse, run, "succeeded", summary)
                print(summary, file=out)
                return EXIT_OK, run, lakehouse.engine
        full = bool(getattr(args, "full", False))
        with (
            stage_jobs(spark, stage, run.run_id),
            Ticker(spark, stage, conf.progress.on(), conf.progress.interval_s) as ticker,
        ):
            summary = body(JobContext(spark, lakehouse, conf, run, ticker, full))
        audit.finish_run(lakehouse, run, "succeeded", summary)
        print(summary, file=out)
        return EXIT_OK, run, lakehouse.engine
    except (ConfError, UsageError) as exc:
        code, status, msg = EXIT_USAGE, "failed", f"error: {exc}"
    except GateFailed as exc:
        code, status, msg = EXIT_GATE, "gate_failed", f"{stage}: gate failed, nothing was published\n{exc}"
    except audit.UpstreamNotPassed as exc:
        code, status, msg = EXIT_GATE, "refused", f"{stage}: refusing to start: {exc}"
    except (InputError, SchemaMismatch, CommitConflict) as exc:
        code, status, msg = EXIT_ERROR, "failed", f"{stage}: {exc}"
    except Exception as exc:  # anything else: one line for the user, the traceback in a file
        path = _error_log(exc)
        code, status = EXIT_ERROR, "failed"
        first = str(exc).splitlines()[0] if str(exc) else ""
        msg = f"{stage}: failed: {type(exc).__name__}: {first} (details: {path})"
        if getattr(args, "verbose", False):
            traceback.print_exc()
    print(msg, file=sys.stderr)
    if lakehouse is not None and run is not None:
        try:
            audit.finish_run(lakehouse, run, status, msg)
        except Exception as exc:  # the audit write itself failed; the run's own error matters more
            print(f"(could not record the run in audit.runs: {exc})", file=sys.stderr)
    return code, run, lakehouse.engine if lakehouse is not None else None
