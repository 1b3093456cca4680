"""The ``corpuslake`` command: run stages, the demo, and look at tables.

    corpuslake demo    [--conf conf/local.yaml] [--set k=v …]   sample corpus + demo models → every stage
    corpuslake stage   NAME [--conf …] [--set k=v …] [--run-id ID]
    corpuslake sample  [--out DIR] [--docs N] [--seed S]
    corpuslake tables  [--conf …]                                name, version, rows, last gate
    corpuslake history TABLE [--conf …]
    corpuslake sql     "select …" [--conf …]

Exit codes: 0 ok, 1 other error, 2 bad usage or conf, 3 gate failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime, timezone

from jobs import (
    aggregate_docs,
    aggregate_domains,
    aggregate_weights,
    clean,
    export,
    ingest,
    load_refs,
    runtime,
    score_perplexity,
    score_prrc,
    score_similarity,
    selection,
)
from jobs.config import ConfError, load_conf
from jobs.runtime import EXIT_ERROR, EXIT_OK, EXIT_USAGE

# Stage name → (body, tables it reads, preflight). Later stages register here in pipeline order.
STAGES: dict[str, tuple[Callable, tuple, Callable | None]] = {
    ingest.STAGE: (ingest.ingest, (), None),
    load_refs.STAGE: (load_refs.load_refs, (), None),
    clean.STAGE: (clean.clean, clean.READS, None),
    score_prrc.STAGE: (score_prrc.score_prrc, score_prrc.READS, score_prrc.preflight),
    score_perplexity.STAGE: (
        score_perplexity.score_perplexity,
        score_perplexity.READS,
        score_perplexity.preflight,
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
}


def _all_specs():
    from schemas import audit, bronze, gold, ref, scores, silver

    return (*bronze.TABLES, *ref.TABLES, *silver.TABLES, *scores.TABLES, *gold.TABLES, *audit.TABLES)


def _spec(name: str):
    for spec in _all_specs():
        if spec.name == name:
            return spec
    known = ", ".join(s.name for s in _all_specs())
    raise runtime.UsageError(f"unknown table {name!r}; known tables: {known}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="corpuslake", description="Curate LLM pretraining data on Spark + Delta."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    d = sub.add_parser("demo", help="generate the sample corpus (if missing) and run the pipeline on it")
    runtime.add_conf_args(d)
    s = sub.add_parser("stage", help="run one stage")
    s.add_argument("name", choices=sorted(STAGES), help="stage name")
    s.add_argument("--run-id", default=None, help="reuse a run id to retry a run idempotently")
    runtime.add_conf_args(s)
    g = sub.add_parser("sample", help="write the bundled sample corpus")
    g.add_argument("--out", default="data/sample")
    g.add_argument("--docs", type=int, default=5000)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--max-doc-bytes", type=int, default=200_000)
    t = sub.add_parser("tables", help="list tables: version, rows, last gate")
    runtime.add_conf_args(t)
    h = sub.add_parser("history", help="a table's Delta history")
    h.add_argument("table")
    runtime.add_conf_args(h)
    q = sub.add_parser("sql", help="run a SQL query over the tables and print the result")
    q.add_argument("query")
    q.add_argument("--limit", type=int, default=50)
    runtime.add_conf_args(q)
    return p


def _ensure_sample(conf) -> str | None:
    from jobs import sample_corpus

    truth = os.path.join(conf.sample.out, "truth.json")
    want = {"n_docs": conf.sample.docs, "seed": conf.sample.seed, "max_doc_bytes": conf.ingest.max_doc_bytes}
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


def _with_lakehouse(args, fn) -> int:
    from jobs.session import get_spark
    from jobs.tables import open_lakehouse

    try:
        conf = load_conf(args.conf, args.overrides)
    except ConfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        spark = get_spark(conf.spark, conf.storage.engine)
        lh = open_lakehouse(spark, conf.storage.warehouse, conf.storage.engine, conf.storage.storage_options)
        fn(conf, spark, lh)
        return EXIT_OK
    except runtime.UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        print(f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        return EXIT_ERROR


def _tables(conf, spark, lh) -> None:
    from pyspark.sql import functions as F

    from schemas import audit as audit_schemas

    gates = {
        r["table_name"]: r["last"]
        for r in lh.read(audit_schemas.EXPECTATIONS)
        .groupBy("table_name")
        .agg(F.max_by(F.struct("success", "run_id"), "validated_at").alias("last"))
        .collect()
    }
    print(f"{'table':<22}{'version':>8}{'rows':>10}  {'last gate':<10} path")
    for spec in _all_specs():
        v = lh.version(spec)
        rows = lh.read(spec).count() if v is not None else 0
        g = gates.get(spec.name)
        gate = "-" if g is None else ("passed" if g["success"] else "FAILED")
        print(f"{spec.name:<22}{'-' if v is None else v:>8}{rows:>10}  {gate:<10} {lh.path(spec)}")


def _history(name: str):
    def show(conf, spark, lh) -> None:
        spec = _spec(name)
        for h in lh.history(spec):
            ts = h.get("timestamp")
            if isinstance(ts, int):  # delta-rs gives epoch milliseconds
                ts = datetime.fromtimestamp(ts / 1000, timezone.utc).isoformat(timespec="seconds")
            run = h.get("run_id") or h.get("userMetadata") or "-"
            print(f"v{h.get('version')}  {ts}  {h.get('operation')}  run={run}")

    return show


def _sql(query: str, limit: int):
    def show(conf, spark, lh) -> None:
        lh.register_sql(_all_specs())
        spark.sql(query).show(limit, truncate=60)

    return show


def _selection_summary(spark, conf) -> None:
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


def demo(args) -> int:
    """Generate the sample if needed, ingest it, and show where everything is."""
    try:
        conf = load_conf(args.conf, args.overrides)
    except ConfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    note = _ensure_sample(conf)
    if note:
        print(note)
    if conf.sample.models:
        from jobs import demo_models

        print(f"demo models: {conf.sample.models} (built once from the sample, then reused)")
        demo_models.build(conf.sample.out, conf.sample.models, seed=conf.sample.seed)
    for name, (body, reads, preflight) in STAGES.items():
        code = runtime.run_job(
            name,
            argparse.Namespace(run_id=None, verbose=args.verbose),
            body,
            reads,
            conf=conf,
            preflight=preflight,
        )
        if code != EXIT_OK:
            return code

    def where(conf, spark, lh) -> None:
        lh.register_sql(_all_specs())
        print("\nwhat the pipeline kept, per input file (spark.sql over bronze and silver):")
        spark.sql(
            "select regexp_extract(b.source_file, '[^/]+$', 0) as file, count(*) as ingested, "
            "count(s.doc_id) as kept, coalesce(sum(s.n_tokens_est), 0) as tokens_est "
            "from bronze.documents b left join silver.documents s on b.doc_id = s.doc_id "
            "group by 1 order by 1"
        ).show(truncate=False)
        _selection_summary(spark, conf)
        print(f"tables are under {lh.warehouse} ({lh.engine} Delta engine); try:")
        print(
            '  corpuslake tables  |  corpuslake sql "select strategy, count(*), max(cum_tokens) '
            'from gold.selection group by 1"'
        )

    return _with_lakehouse(args, where)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        return demo(args)
    if args.command == "stage":
        body, reads, preflight = STAGES[args.name]
        return runtime.run_job(args.name, args, body, reads, preflight=preflight)
    if args.command == "sample":
        from jobs import sample_corpus

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
        return _with_lakehouse(args, _tables)
    if args.command == "history":
        return _with_lakehouse(args, _history(args.table))
    return _with_lakehouse(args, _sql(args.query, args.limit))


if __name__ == "__main__":
    raise SystemExit(main())
