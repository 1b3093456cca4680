"""The ``corpuslake`` command: run the pipeline or one stage, the demo, and look at tables and runs.

    corpuslake run     [--conf conf/local.yaml] [--from STAGE] [--to STAGE] [--full] [--master URL] [--set …]
    corpuslake stage   NAME [--conf …] [--set k=v …] [--run-id ID] [--full]
    corpuslake demo    [--conf …] [--set k=v …]      sample corpus + demo models → every stage → report
    corpuslake evaluate [--conf …] [--set k=v …]     small LMs on each selection vs random → gold.evaluation
    corpuslake tables  [--conf …]                    name, version, rows, last run, last gate
    corpuslake history TABLE [--conf …]
    corpuslake maintain [TABLE …] [--retain-hours H]   compact small files, VACUUM what no version needs
    corpuslake sql     "select …" | QUERY_NAME | FILE.sql  [--limit N] [--list]
    corpuslake report  [--out reports/report.html]
    corpuslake sample  [--out DIR] [--docs N] [--seed S]

``run`` brings the lake up to date: ingest reads new files, clean cleans the new bronze documents (against
what silver holds), scoring scores documents without scores, and a stage that recomputes from its inputs
is skipped when none of them changed (``jobs.freshness``), so a rerun with nothing new writes no table.
``--from STAGE`` runs that stage even so; ``--full`` recomputes silver from all of bronze and runs every
stage.

The commands that look at the lake (tables, history, maintain, sql, report) are ``jobs.cli_lake``.

Exit codes: 0 ok, 1 other error, 2 bad usage or conf, 3 gate failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from jobs import (
    aggregate_docs,
    aggregate_domains,
    aggregate_weights,
    clean,
    evaluate,
    export,
    filter_perplexity,
    ingest,
    load_refs,
    runtime,
    score_perplexity,
    score_prrc,
    score_similarity,
    selection,
)
from jobs.catalog import all_specs, table_spec
from jobs.cli_lake import (
    evaluation_summary,
    list_queries,
    load_profile,
    maintain_tables,
    selection_summary,
    show_history,
    show_sql,
    show_tables,
    with_lakehouse,
    write_report,
)
from jobs.freshness import Watch
from jobs.runtime import EXIT_OK, EXIT_USAGE

# Stage name → (body, tables it reads, preflight). Later stages register here in pipeline order.
STAGES: dict[str, tuple[Callable, tuple, Callable | None]] = {
    ingest.STAGE: (ingest.ingest, (), ingest.preflight),
    load_refs.STAGE: (load_refs.load_refs, (), None),
    clean.STAGE: (clean.clean, clean.READS, clean.preflight),
    score_prrc.STAGE: (score_prrc.score_prrc, score_prrc.READS, score_prrc.preflight),
    score_perplexity.STAGE: (
        score_perplexity.score_perplexity,
        score_perplexity.READS,
        score_perplexity.preflight,
    ),
    filter_perplexity.STAGE: (
        filter_perplexity.filter_perplexity,
        filter_perplexity.READS,
        filter_perplexity.preflight,
    ),
    score_similarity.STAGE: (
        score_similarity.score_similarity,
        score_similarity.READS,
        score_similarity.preflight,
    ),
    aggregate_domains.STAGE: (
        aggregate_domains.aggregate_domains,
        aggregate_domains.READS,
        aggregate_domains.preflight,
    ),
    aggregate_weights.STAGE: (
        aggregate_weights.aggregate_weights,
        aggregate_weights.READS,
        aggregate_weights.preflight,
    ),
    aggregate_docs.STAGE: (aggregate_docs.aggregate_docs, aggregate_docs.READS, aggregate_docs.preflight),
    selection.STAGE: (selection.select, selection.READS, selection.preflight),
    export.STAGE: (export.export, export.READS, export.preflight),
    evaluate.STAGE: (evaluate.evaluate, evaluate.READS, evaluate.preflight),
}


# Stages that recompute their outputs from their inputs: what those are (see jobs.freshness).
WATCHES: dict[str, Watch] = {
    load_refs.STAGE: load_refs.WATCH,
    score_prrc.STAGE: score_prrc.WATCH,
    score_perplexity.STAGE: score_perplexity.WATCH,
    score_similarity.STAGE: score_similarity.WATCH,
    aggregate_domains.STAGE: aggregate_domains.WATCH,
    aggregate_weights.STAGE: aggregate_weights.WATCH,
    aggregate_docs.STAGE: aggregate_docs.WATCH,
    selection.STAGE: selection.WATCH,
    export.STAGE: export.WATCH,
    evaluate.STAGE: evaluate.WATCH,
}

FULL_HELP = (
    "recompute silver from all of bronze.documents (clean; what a change of the clean rules needs) and run "
    "every stage even when nothing it reads changed"
)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``corpuslake run: error: … (see corpuslake run --help)``, exit 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _stage_name(value: str) -> str:
    if value not in STAGES:
        raise argparse.ArgumentTypeError(f"unknown stage {value!r}; stages in order: {', '.join(STAGES)}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="corpuslake",
        description="Curate LLM pretraining data on Spark + Delta Lake. Stages in order: "
        + ", ".join(STAGES),
        epilog="Exit codes: 0 ok, 1 other error, 2 bad usage or conf, 3 a gate failed. "
        "Every command takes --help.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    r = sub.add_parser(
        "run",
        help="run the pipeline (every stage, or --from/--to a range) and print a closing table",
        description="Run stages in pipeline order, stopping at the first that fails. "
        "Stages: " + ", ".join(STAGES),
    )
    r.add_argument(
        "--from",
        dest="first",
        type=_stage_name,
        metavar="STAGE",
        help="first stage to run; it runs even when nothing it reads changed",
    )
    r.add_argument("--to", dest="last", type=_stage_name, metavar="STAGE", help="last stage to run")
    r.add_argument("--full", action="store_true", help=FULL_HELP)
    r.add_argument(
        "--master",
        default=None,
        metavar="URL",
        help="Spark master instead of the profile's spark.master, e.g. spark://127.0.0.1:7077 "
        "(python -m jobs.cluster start) or 'local[4]'",
    )
    r.add_argument(
        "--events",
        default=None,
        metavar="DIR",
        help="write Spark's event log to DIR (AQE partition coalescing off) and end with the funnel check "
        "of the stages run: which shuffles went through a few tasks (python -m jobs.funnel)",
    )
    runtime.add_conf_args(r)
    s = sub.add_parser("stage", help="run one stage", description="Run one stage: " + ", ".join(STAGES))
    s.add_argument("name", type=_stage_name, metavar="NAME", help="stage name")
    s.add_argument("--run-id", default=None, help="reuse a run id to retry a run idempotently")
    s.add_argument("--full", action="store_true", help="clean: recompute silver from all of bronze.documents")
    runtime.add_conf_args(s)
    d = sub.add_parser(
        "demo",
        help="sample corpus + demo models (if missing) → every stage → the HTML report",
        description="Write the sample corpus and build the demo models if missing, run every stage, "
        "print what was selected and write the HTML report.",
    )
    d.add_argument("--report", default="reports/report.html", help="where the HTML report goes")
    runtime.add_conf_args(d)
    e = sub.add_parser(
        "evaluate",
        help="train the same small LM on each selection and on random; measure it → gold.evaluation",
        description="The selection-effect experiment: for every strategy (evaluate.strategies, default "
        "select.strategies) and random re-drawn per seed, train the same small causal LM from scratch at "
        "equal tokens over evaluate.seeds, and measure gold-answer bits per byte and multiple-choice "
        "accuracy on the benchmarks' evaluation split and bpb on held-out web text. A profile without an "
        "evaluate section runs with the defaults. Where the tables live: the profile's "
        "storage.warehouse (--set storage.warehouse=DIR for another).",
    )
    e.add_argument("--run-id", default=None, help="reuse a run id to retry a run idempotently")
    runtime.add_conf_args(e)
    t = sub.add_parser("tables", help="list tables: version, rows, last run, last gate")
    runtime.add_conf_args(t)
    h = sub.add_parser("history", help="a table's Delta history (version, time, operation, run)")
    h.add_argument("table", help="layer.table, e.g. gold.selection")
    runtime.add_conf_args(h)
    m = sub.add_parser(
        "maintain",
        help="compact small files and VACUUM files no readable version needs (every table, or those named)",
        description="OPTIMIZE (delta-rs optimize.compact on the embedded engine) then VACUUM. The retention "
        "defaults to each table's delta.logRetentionDuration (30 days): every version still in the log "
        "stays readable, so time travel inside the window keeps working.",
    )
    m.add_argument("tables", nargs="*", metavar="TABLE", help="layer.table (default: every table)")
    m.add_argument(
        "--retain-hours",
        type=float,
        default=None,
        help="delete unreferenced files older than this (not below the table's log retention)",
    )
    runtime.add_conf_args(m)
    q = sub.add_parser(
        "sql",
        help="run a SQL query over the tables and print the result",
        description="QUERY is SQL text, the name of a saved query in jobs/sql (see --list) or a .sql file. "
        "Every table is a view by its name: bronze.documents, silver.filtered, gold.selection, …",
    )
    q.add_argument("query", nargs="?", help='e.g. "select count(*) from silver.documents", or funnel')
    q.add_argument("--limit", type=int, default=50, help="rows to print")
    q.add_argument("--list", action="store_true", help="list the saved queries and exit")
    runtime.add_conf_args(q)
    o = sub.add_parser(
        "report",
        help="write the self-contained HTML report of the lakehouse",
        description="Funnel, score histograms, domain correlations, rater weights, selections, gates and "
        "table versions in one HTML file with embedded plots.",
    )
    o.add_argument("--out", default="reports/report.html", help="the HTML file to write")
    runtime.add_conf_args(o)
    g = sub.add_parser("sample", help="write the bundled sample corpus")
    g.add_argument("--out", default="data/sample")
    g.add_argument("--docs", type=int, default=5000)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--max-doc-bytes", type=int, default=200_000)
    return p


def _ensure_sample(conf) -> str | None:
    from jobs.demo import sample_corpus

    truth = os.path.join(conf.sample.out, "truth.json")
    want = {
        "n_docs": conf.sample.docs,
        "seed": conf.sample.seed,
        "max_doc_bytes": conf.ingest.max_doc_bytes,
        # An older generator's sample (validation/test splits, no train) gives the methods no targets.
        "generator_version": sample_corpus.GENERATOR_VERSION,
    }
    if os.path.exists(truth):
        with open(truth, encoding="utf-8") as fh:
            params = json.load(fh)
        # Samples written before the PRRC labels existed lack labels/prrc.jsonl: regenerate those too.
        labels = os.path.join(conf.sample.out, "labels", "prrc.jsonl")
        if all(params.get(k) == v for k, v in want.items()) and os.path.exists(labels):
            return None
    sample_corpus.generate(
        conf.sample.out,
        n_docs=conf.sample.docs,
        seed=conf.sample.seed,
        max_doc_bytes=conf.ingest.max_doc_bytes,
    )
    return f"wrote the sample corpus to {conf.sample.out} ({conf.sample.docs} docs, seed {conf.sample.seed})"


def run_stages(
    conf,
    stages: list[str],
    verbose: bool = False,
    full: bool = False,
    skip_unchanged: bool = False,
    forced: set[str] | frozenset[str] = frozenset(),
) -> tuple[int, list[runtime.StageResult]]:
    """Run ``stages`` in order on one loaded conf, stopping at the first that does not succeed.

    Args:
        conf: the loaded profile.
        stages: stage names, in pipeline order.
        verbose: log progress and print tracebacks.
        full: clean recomputes silver from all of bronze (``--full``).
        skip_unchanged: skip a recomputing stage when nothing it reads changed (``jobs.freshness``).
        forced: stages that run even so (``--from``).
    """
    results: list[runtime.StageResult] = []
    code = EXIT_OK
    for name in stages:
        body, reads, preflight = STAGES[name]
        code = runtime.run_job(
            name,
            argparse.Namespace(run_id=None, verbose=verbose, full=full),
            body,
            reads,
            conf=conf,
            preflight=preflight,
            results=results,
            watch=WATCHES.get(name),
            skip_unchanged=skip_unchanged and not full and name not in forced,
        )
        if code != EXIT_OK:
            break
    return code, results


def closing_table(results: list[runtime.StageResult], planned: list[str]) -> str:
    """One row per stage of the run: status, time, rows in and out, tables and versions written."""
    from jobs.progress import fmt_seconds

    done = {r.stage: r for r in results}
    engines = sorted({r.engine for r in results if r.engine})
    lines = [f"Delta engine: {', '.join(engines) or '-'}"]
    lines += [f"{'stage':<20} {'status':<12} {'time':>8} {'rows in':>10} {'rows out':>10}  tables written"]
    for name in planned:
        r = done.get(name)
        if r is None:
            lines.append(f"{name:<20} {'not run':<12}")
            continue
        tables = ", ".join(f"{t} v{v}" for t, v in sorted((r.tables_written or {}).items())) or "-"
        rows_in = "-" if r.rows_in is None else f"{r.rows_in:,}"
        rows_out = "-" if r.rows_out is None else f"{r.rows_out:,}"
        lines.append(
            f"{name:<20} {r.status:<12} {fmt_seconds(r.seconds):>8} {rows_in:>10} {rows_out:>10}  {tables}"
        )
    total = sum(r.seconds for r in results)
    lines.append(f"{'total':<20} {'':<12} {fmt_seconds(total):>8}")
    return "\n".join(lines)


def stage_range(first: str | None, last: str | None) -> list[str]:
    """Stage names from ``first`` to ``last`` inclusive, in pipeline order.

    Raises:
        UsageError: ``first`` comes after ``last``.
    """
    names = list(STAGES)
    i = names.index(first) if first else 0
    j = names.index(last) if last else len(names) - 1
    if i > j:
        raise runtime.UsageError(
            f"--from {first} comes after --to {last} in the pipeline ({', '.join(names)})"
        )
    return names[i : j + 1]


def run(args) -> int:
    """``corpuslake run``: the stages in range, then the closing table."""
    try:
        planned = stage_range(args.first, args.last)
    except runtime.UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    conf = load_profile(args)
    if conf is None:
        return EXIT_USAGE
    if args.master:
        conf.spark.master = args.master
    if args.events:
        from jobs import funnel

        funnel.watch(conf, args.events)
    code, results = run_stages(
        conf,
        planned,
        args.verbose,
        full=args.full,
        skip_unchanged=True,
        forced={args.first} if args.first else frozenset(),
    )
    print("\n" + closing_table(results, planned))
    if args.events:
        report = funnel.finish(args.events, planned)
        print(
            report.text()
            if report is not None
            else "funnel check: no event log: the Spark session was already running (start a new process)"
        )
    return code


def phase_lines(phases: list[tuple[str, float]]) -> list[str]:
    """The demo's closing lines: each phase's wall-clock time and the total."""
    from jobs.progress import fmt_seconds

    lines = ["demo phases (wall clock):"]
    lines += [f"  {name:<22} {fmt_seconds(s):>8}" for name, s in phases]
    lines.append(f"  {'total':<22} {fmt_seconds(sum(s for _, s in phases)):>8}")
    return lines


def demo(args) -> int:
    """Generate the sample and demo models if needed, run every stage, summarize, write the report; end with
    the time each phase took (a first run pays for the sample and the demo models, later runs reuse them)."""
    import time

    conf = load_profile(args)
    if conf is None:
        return EXIT_USAGE
    phases: list[tuple[str, float]] = []
    t = time.monotonic()

    def lap(name: str) -> None:
        nonlocal t
        now = time.monotonic()
        phases.append((name, now - t))
        t = now

    note = _ensure_sample(conf)
    if note:
        print(note)
    lap("sample corpus")
    if conf.sample.models:
        from jobs.demo import models as demo_models

        print(f"demo models: {conf.sample.models} (built once from the sample, then reused)")
        demo_models.build(
            conf.sample.out, conf.sample.models, seed=conf.sample.seed, target_splits=conf.refs.target_splits
        )
        lap("demo models")
    planned = list(STAGES)
    code, results = run_stages(conf, planned, args.verbose, skip_unchanged=True)
    lap(f"{len(results)} stages")
    print("\n" + closing_table(results, planned))
    if code != EXIT_OK:
        return code

    def where(conf, spark, lh) -> None:
        print("\nwhat the pipeline kept, per input file (spark.sql over bronze and silver):")
        spark.sql(
            "select regexp_extract(b.source_file, '[^/]+$', 0) as file, count(*) as ingested, "
            "count(s.doc_id) as kept, coalesce(sum(s.n_tokens_est), 0) as tokens_est "
            "from bronze.documents b left join silver.documents s on b.doc_id = s.doc_id "
            "group by 1 order by 1"
        ).show(truncate=False)
        selection_summary(spark, conf)
        print(f"tables are under {lh.warehouse} ({lh.engine} Delta engine); try:")
        print("  corpuslake tables  |  corpuslake sql funnel  |  corpuslake sql --list")
        write_report(args.report)(conf, spark, lh)
        evaluation_summary(spark, conf)

    code = with_lakehouse(args, where, conf)
    lap("summary and report")
    print("\n" + "\n".join(phase_lines(phases)))
    return code


def evaluate_command(args) -> int:
    """``corpuslake evaluate``: the evaluate stage, always run, with the defaults where the profile has no
    evaluate section."""
    from jobs.config import EvaluateConf

    conf = load_profile(args)
    if conf is None:
        return EXIT_USAGE
    if conf.evaluate is None:
        conf.evaluate = EvaluateConf()
    body, reads, preflight = STAGES[evaluate.STAGE]
    return runtime.run_job(
        evaluate.STAGE, args, body, reads, conf=conf, preflight=preflight, watch=WATCHES[evaluate.STAGE]
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return run(args)
    if args.command == "demo":
        return demo(args)
    if args.command == "evaluate":
        return evaluate_command(args)
    if args.command == "stage":
        body, reads, preflight = STAGES[args.name]
        watch = WATCHES.get(args.name)
        return runtime.run_job(args.name, args, body, reads, preflight=preflight, watch=watch)
    if args.command == "sample":
        from jobs.demo import sample_corpus

        return sample_corpus.main(
            [
                "--out",
                args.out,
                "--docs",
                str(args.docs),
                "--seed",
                str(args.seed),
                "--max-doc-bytes",
                str(args.max_doc_bytes),
            ]
        )
    if args.command == "tables":
        return with_lakehouse(args, show_tables)
    if args.command == "history":
        return with_lakehouse(args, show_history(args.table))
    if args.command == "report":
        return with_lakehouse(args, write_report(args.out))
    if args.command == "maintain":
        try:  # before any session starts: a typo in a name is a usage error
            specs = [table_spec(n) for n in args.tables] or list(all_specs())
        except runtime.UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        return with_lakehouse(args, maintain_tables(specs, args.retain_hours))
    if args.list:
        return list_queries()
    if not args.query:
        print(
            "corpuslake sql: error: give a query, a saved query name or a .sql file (see --list)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return with_lakehouse(args, show_sql(args.query, args.limit, args.verbose))


if __name__ == "__main__":
    raise SystemExit(main())
