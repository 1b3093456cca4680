"""The ``corpuslake`` commands that look at the lake: tables, history, maintain, sql and report, each run
on a loaded profile with every table registered for SQL (``with_lakehouse``). ``jobs.cli`` parses the
command line and runs the stages.
"""

from __future__ import annotations

import os
import re
import sys
from datetime import datetime, timezone

from jobs import runtime
from jobs.catalog import all_specs, table_spec
from jobs.config import ConfError, load_conf
from jobs.runtime import EXIT_ERROR, EXIT_OK, EXIT_USAGE


def load_profile(args):
    """The profile ``--conf`` names with its ``--set`` overrides; None (after printing why) when invalid."""
    try:
        return load_conf(args.conf, args.overrides)
    except ConfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def with_lakehouse(args, fn, conf=None) -> int:
    """Load the profile (unless given), connect with every table registered for SQL, run ``fn``."""
    from jobs.catalog import connect

    conf = conf or load_profile(args)
    if conf is None:
        return EXIT_USAGE
    try:
        spark, lh = connect(conf)
        fn(conf, spark, lh)
        return EXIT_OK
    except runtime.UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except runtime.InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        print(f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        return EXIT_ERROR


def show_tables(conf, spark, lh) -> None:
    """``corpuslake tables``: per table its version, rows, last write and last gate; then runs by status."""
    from pyspark.sql import functions as F

    from jobs.queries import sql_text
    from schemas import audit as audit_schemas

    gates = {
        r["table_name"]: r["last"]
        for r in lh.read(audit_schemas.EXPECTATIONS)
        .groupBy("table_name")
        .agg(F.max_by(F.struct("success", "run_id"), "validated_at").alias("last"))
        .collect()
    }
    written = {r["table_name"]: r["written_at"] for r in spark.sql(sql_text("table_versions")).collect()}
    print(f"tables under {lh.warehouse} ({lh.engine} Delta engine)")
    print(f"{'table':<24}{'version':>8}{'rows':>10}  {'last run':<20} {'last gate':<10} path")
    for spec in all_specs():
        v = lh.version(spec)
        rows = lh.read(spec).count() if v is not None else 0
        g, w = gates.get(spec.name), written.get(spec.name)
        gate = "-" if g is None else ("passed" if g["success"] else "FAILED")
        when = "-" if w is None else f"{w:%Y-%m-%d %H:%M:%S}"
        print(f"{spec.name:<24}{'-' if v is None else v:>8}{rows:>10}  {when:<20} {gate:<10} {lh.path(spec)}")
    states = run_states(spark)
    if states:
        print("\nruns: " + ", ".join(f"{n} {s}" for s, n in states.items()) + " (corpuslake sql runs)")
    if states.get("abandoned"):
        print("  abandoned: killed before they ended; the next run of their stage found them (see message)")


def run_states(spark) -> dict[str, int]:
    """Stage runs by their latest status (the ``runs`` query), in a fixed order: succeeded first."""
    from jobs.queries import sql_text
    from schemas.audit import RUN_STATUSES

    rows = spark.sql(sql_text("runs")).groupBy("status").count().collect()
    counts = {r["status"]: r["count"] for r in rows}
    order = ["succeeded", "running", "abandoned", "failed", "gate_failed", "refused"]
    order += [s for s in RUN_STATUSES if s not in order]
    return {s: counts[s] for s in order if counts.get(s)}


def show_history(name: str):
    """``corpuslake history TABLE``: a ``with_lakehouse`` function printing the table's Delta history."""

    def show(conf, spark, lh) -> None:
        spec = table_spec(name)
        if lh.version(spec) is None:
            raise runtime.UsageError(f"{name} has not been written yet under {lh.warehouse}")
        for h in lh.history(spec):
            ts = h.get("timestamp")
            if isinstance(ts, int):  # delta-rs gives epoch milliseconds
                ts = datetime.fromtimestamp(ts / 1000, timezone.utc).isoformat(timespec="seconds")
            run = h.get("run_id") or h.get("userMetadata") or "-"
            print(f"v{h.get('version')}  {ts}  {h.get('operation')}  run={run}")

    return show


def maintain_tables(specs: list, retain_hours: float | None):
    """``corpuslake maintain``: a ``with_lakehouse`` function compacting and vacuuming ``specs``."""

    def run(conf, spark, lh) -> None:
        print(f"maintaining {len(specs)} tables under {lh.warehouse} ({lh.engine} engine)")
        for spec in specs:
            if not lh.exists(spec):
                print(f"{spec.name:<24} not written yet")
                continue
            try:
                print(lh.maintain(spec, retain_hours).line())
            except ValueError as exc:  # a retention below the log's: the user's to fix
                raise runtime.UsageError(str(exc)) from None

    return run


def resolve_query(query: str) -> str:
    """SQL text as given, a saved query's text by name (``funnel``), or a ``.sql`` file's text.

    Raises:
        UsageError: a ``.sql`` path that does not exist.
    """
    from jobs import queries

    q = query.strip()
    if q.endswith(".sql") and " " not in q:
        if not os.path.isfile(q):
            raise runtime.UsageError(f"{q}: no such SQL file")
        with open(q, encoding="utf-8") as fh:
            return fh.read()
    if q in queries.saved_queries():
        return queries.sql_text(q)
    return query


_PARQUET_PATH = re.compile(r"((?:[A-Za-z][\w+.-]*:)?/[^\s'\"]+?\.parquet)(?![\w-])")
_NOT_FOUND = ("FileNotFound", "FILE_NOT_EXIST", "No such file", "does not exist", "Failed to open")


def missing_data_file(lh, exc: BaseException) -> str | None:
    """If ``exc`` is a read that failed on a table's data file that is gone, one line naming both."""
    text = str(exc)
    if not any(k in text for k in _NOT_FOUND):
        return None
    roots = sorted(((lh.path(s).rstrip("/"), s) for s in all_specs()), key=lambda t: -len(t[0]))
    for candidate in dict.fromkeys(_PARQUET_PATH.findall(text)):
        path = candidate[len("file:") :] if candidate.startswith("file:") else candidate
        path = path.replace("///", "/") if path.startswith("///") else path
        if "://" not in path and os.path.exists(path):
            continue
        for root, spec in roots:
            local_root = root[len("file://") :] if root.startswith("file://") else root
            if path.startswith(local_root + "/"):
                version = lh.version(spec)
                return (
                    f"{spec.name}: data file {path[len(local_root) + 1 :]} is missing from {local_root} "
                    f"(version {version} of the table needs it); restore it from a backup, or see "
                    f"`corpuslake history {spec.name}`"
                )
    return None


def show_sql(query: str, limit: int, verbose: bool = False):
    """``corpuslake sql``: a ``with_lakehouse`` function showing the query's first ``limit`` rows; a failing
    query is one line (exit 2), a missing data file names its table (exit 1)."""

    def show(conf, spark, lh) -> None:
        import traceback

        from pyspark.errors import PySparkException

        text = resolve_query(query)
        # A failing task logs its whole Java and Python trace at ERROR: without --verbose the one line below
        # is the whole story.
        if not verbose:
            spark.sparkContext.setLogLevel("OFF")
        try:
            df = spark.sql(text)
            df.show(limit, truncate=60)
        except Exception as exc:
            missing = missing_data_file(lh, exc)
            if verbose and (missing or not isinstance(exc, PySparkException)):
                traceback.print_exc()
            if missing:
                raise runtime.InputError(missing) from None
            if isinstance(exc, PySparkException):  # a typo in a query is the user's to fix: one line, exit 2
                first = str(exc).strip().splitlines()[0]
                raise runtime.UsageError(f"the query failed: {first}") from None
            raise
        finally:
            if not verbose:
                spark.sparkContext.setLogLevel(conf.spark.log_level)

    return show


def list_queries() -> int:
    """``corpuslake sql --list``: the saved queries with what each shows."""
    from jobs import queries

    for name, about in queries.saved_queries().items():
        print(f"{name:<24} {about}")
    return EXIT_OK


def write_report(out: str):
    """``corpuslake report``: a ``with_lakehouse`` function writing the HTML report to ``out``."""

    def write(conf, spark, lh) -> None:
        from jobs import report

        path = report.write_report(spark, lh, conf, out)
        print(f"report: {path}")

    return write


def evaluation_summary(spark, conf) -> None:
    """The selection-effect tables from gold.evaluation (``corpuslake demo`` ends with them)."""
    from jobs.evaluate import summary_lines

    table = spark.sql("select * from gold.evaluation").toPandas()
    if table.empty:
        print("\nevaluation: gold.evaluation is empty (corpuslake evaluate trains and measures the models)")
        return
    print(
        f"\nevaluation (gold.evaluation): {table['model'].iloc[0]}, {int(table['train_tokens'].iloc[0]):,} "
        "tokens per model"
    )
    for line in summary_lines(table, conf.refs.eval_split):
        print(f"  {line}")


def selection_summary(spark, conf) -> None:
    """Per strategy: documents and tokens selected; the top domains by perplexity-correlation weight."""
    rows = spark.sql(
        "select strategy, count(*) as docs, max(cum_tokens) as tokens, count(distinct domain) as domains "
        "from gold.selection group by strategy order by strategy"
    ).collect()
    print(f"\nselected per strategy (budget {conf.select.token_budget:,} tokens):")
    for r in rows:
        print(
            f"  {r['strategy']:<10} {r['docs']:>6,} docs  {r['tokens']:>9,} tokens {r['domains']:>3} domains"
        )
    top = spark.sql(
        "select domain, estimate, weight from gold.domain_correlations "
        "where chosen and weight > 0 order by weight desc, domain limit 5"
    ).collect()
    if top:
        d = conf.aggregate.domains
        print(f"top domains by weight ({d.estimator}, {d.projection} projection):")
        for r in top:
            print(f"  {r['domain']:<32} weight {r['weight']:.3f}  estimate {r['estimate']:+.3f}")
