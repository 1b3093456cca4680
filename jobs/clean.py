"""Clean: bronze.documents → silver (documents, filtered, dedup_index) + scores.quality, scores.pii (Ziya2,
web rules, blocklists, PII redaction).

Steps, in order; a document leaves at the first one that drops it, recorded with that rule and its value:
  0. blocklist        its URL or domain is on a configured list (``jobs.methods.blocklist``; off without
                      lists); dropped as blocklist:<category> before any other work
  1. normalize        Unicode NFC, control/invisible characters, whitespace, stray HTML (empty → dropped)
  2. language         py3langid, labels mapped to ISO 639-1 (``udfs.lang``); under ``min_lang_score`` the
                      language is ``unknown``; dropped when it is a language not in ``clean.allowed_langs``
  3. rules            the ordered ``clean.rules`` (Gopher quality and repetition, C4, FineWeb; chat records
                      get ``clean.chat_rules`` instead, none by default: those are web-page rules), less the
                      checks that do not fit the document's language (``udfs.quality_rules.applies``; the
                      stage warns at startup which it skips for which allowed language); ``c4_lines`` removes
                      lines, and the later rules, the dedup steps and silver get what it leaves; after them,
                      an ``unknown`` document is dropped (reason language:unknown) unless
                      ``clean.unknown_lang`` is ``keep``
  4. exact_dedup      same hash of lowercased, whitespace-collapsed text
  5. near_dedup       MinHash LSH, verified Jaccard ≥ threshold, connected components
  6. decontamination  shares an n-gram (13 by default) with a ref.benchmarks example
  7. pii              e-mail, phone and IP matches masked, counted in scores.pii, documents with too many
                      dropped as pii:<type> or pii:total (``jobs.methods.pii``; off unless enabled); bronze
                      keeps the original text
Of duplicates the earliest-ingested document survives (bronze ``ingested_at``), ties broken by the smallest
doc_id: ``order_key``. Within one ingest run that is the smallest doc_id.

Incremental batches (``jobs.clean_batches``): a run cleans the bronze documents silver does not hold yet
and appends their rows, so earlier rows keep their files. They are de-duplicated against every earlier
document that reached the dedup steps, as silver.dedup_index keeps them (text hash, MinHash signature,
component): earlier documents are never re-hashed, and a duplicate of one names it (or its survivor) as
survivor_id. Earlier decisions are never rewritten; with the survivor rule above the result equals one clean
of everything at once, except that a new document linking two earlier near-duplicate clusters joins the
one with the earliest survivor and does not merge them, and that earlier documents are not checked again
against a changed ref.benchmarks (the summary says so). The first clean, and ``--full``, rebuild silver from
all of bronze; other clean settings than silver was built under stop the run with that advice. A run with
nothing new writes nothing and says so. The gates check the batch's bronze rows = kept + filtered.

Run it:  corpuslake stage clean --conf conf/local.yaml [--full]
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import functions as F

from jobs import audit, freshness
from jobs import clean_batches as batches
from jobs.clean_steps import Steps, analyze, clean_documents, rules_text
from jobs.config import CleanConf, Conf
from jobs.gates import Output, publish
from jobs.methods import blocklist, dedup
from jobs.methods import pii as pii_step
from jobs.methods.decontam import contamination
from jobs.runtime import JobContext, job_parser, log, run_job
from schemas import bronze, ref, scores, silver
from udfs.lang import UNKNOWN
from udfs.quality_rules import skipped_checks

STAGE = "clean"
READS = (bronze.DOCUMENTS, ref.BENCHMARKS)
# The steps live in jobs.clean_steps and jobs.methods; these are this module's names for them too (tests,
# notebooks).
__all__ = [
    "READS",
    "STAGE",
    "analyze",
    "clean",
    "clean_batch",
    "clean_documents",
    "contamination",
    "funnel_text",
    "language_warning",
    "main",
    "preflight",
    "steps",
]


def language_warning(allowed_langs: list[str], rules: list[tuple[str, dict]]) -> str | None:
    """What the rules skip for which allowed language, as the startup warning says it; None if nothing.

    Args:
        allowed_langs: the languages the stage keeps.
        rules: ordered ``(rule, params)`` with defaults filled in (``CleanConf.rule_params()``).
    """
    groups: dict[tuple[str, ...], list[str]] = {}
    for lang in allowed_langs:
        if skipped := tuple(skipped_checks(rules, lang)):
            groups.setdefault(skipped, []).append(lang)
    if not groups:
        return None
    lines = ["clean: rule checks that assume English text are skipped for these allowed languages:"]
    for skipped, langs in groups.items():
        by_rule: dict[str, list[str]] = {}
        for reason in skipped:
            rule, check = reason.split(":", 1)
            by_rule.setdefault(rule, []).append(check)
        lines.append(f"  {', '.join(langs)}: " + "; ".join(f"{r} {', '.join(c)}" for r, c in by_rule.items()))
    return "\n".join(lines)


def preflight(conf: Conf) -> None:
    """Warns, before Spark starts, which rule checks the allowed languages skip."""
    if warning := language_warning(conf.clean.allowed_langs, conf.clean.rule_params()):
        log.warning(warning)
    if conf.clean.blocklist.active:
        blocklist.check_paths(conf.clean.blocklist.lists)


MAX_REASONS = 8  # reasons listed per step in the summary; the rest are counted on one line


def funnel_text(n_in: int, filtered_counts: list, n_kept: int, ran: set[str]) -> str:
    """The clean summary's funnel: every step in order, with what it dropped (zero included), by reason.

    Args:
        n_in: bronze documents read.
        filtered_counts: rows with ``step``, ``reason`` and ``n`` (drops per step and reason).
        n_kept: documents kept in silver.
        ran: the steps that dropped documents in this run; the others are shown as off.
    """
    lines = [f"  bronze documents read: {n_in:,}"]
    left = n_in
    for step in silver.STEPS:
        rows = sorted((r for r in filtered_counts if r["step"] == step), key=lambda r: (-r["n"], r["reason"]))
        total = sum(r["n"] for r in rows)
        if step not in ran and not rows:
            lines.append(f"  - {step:<16} {'off':>7}")
            continue
        left -= total
        lines.append(f"  - {step:<16} {total:>7,}  -> {left:,} left")
        for r in rows[:MAX_REASONS]:
            lines.append(f"      {r['reason']:<40} {r['n']:>7,}")
        if len(rows) > MAX_REASONS:
            rest = rows[MAX_REASONS:]
            more = f"… {len(rest)} more reasons"
            lines.append(f"      {more:<40} {sum(r['n'] for r in rest):>7,}")
    lines.append(f"  kept in silver.documents: {n_kept:,}")
    return "\n".join(lines)


def steps(
    c: CleanConf, checkpoint_dir: str | None = None, lists: blocklist.Blocklists | None = None
) -> Steps:
    """The ``clean`` settings as the plain transforms and values ``clean_documents`` runs.

    Args:
        c: the ``clean`` settings.
        checkpoint_dir: where near dedup materializes what it reads several times (the run's folder on the
            lake's storage, ``Lakehouse.checkpoints``); None: local checkpoints.
        lists: the blocklists the run read (``blocklist.read``); None: no blocklist step.
    """
    n, d, p = c.near_dedup, c.decontamination, c.pii
    return Steps(
        analyze(c.allowed_langs, c.min_lang_score, c.rule_params(), c.unknown_lang, c.chat_rule_params()),
        exact_dedup=c.exact_dedup,
        signatures=dedup.minhash_signatures(n.num_perm, n.ngram, n.seed) if n.enabled else None,
        link=(
            dedup.link_near(
                n.bands, n.rows, n.threshold, n.max_bucket, n.verify, n.ngram, checkpoint_dir=checkpoint_dir
            )
            if n.enabled
            else None
        ),
        decontam_ngram=d.ngram if d.enabled else None,
        decontam_drop=d.action == "drop",
        blocklist=blocklist.mark(lists) if lists is not None else None,
        pii=(
            pii_step.redact(p.rules(), p.max_total, tuple(p.phone_formats), p.public_ips_only, "norm_text")
            if p.enabled
            else None
        ),
    )


def _kept_langs(c) -> list[str]:
    return [*c.allowed_langs, UNKNOWN] if c.unknown_lang == "keep" else list(c.allowed_langs)


@dataclass
class Cleaned:
    """What cleaning one batch committed."""

    batch: batches.Batch
    n_in: int
    counts: list
    n_kept: int
    commits: dict
    skewed: int


def clean_batch(
    ctx: JobContext,
    batch: batches.Batch,
    exclude: list[str],
    outputs: list | tuple = batches.OUTPUTS,
    checkpoint_dir: str | None = None,
    lists: blocklist.Blocklists | None = None,
) -> Cleaned | None:
    """Clean ``batch`` and commit its rows to ``outputs`` (all five, or the ones a killed run did not reach).

    Args:
        ctx: the job context (its run commits).
        batch: what to clean: every bronze document of its version (full) or those silver lacks.
        exclude: batches whose rows do not count as earlier (this one and any later unfinished one).
        outputs: the tables to commit.
        checkpoint_dir: the run's folder for intermediate results (see ``steps``).
        lists: the run's blocklists (see ``steps``).

    Returns:
        None for an incremental batch without documents (nothing is written).
    """
    lh, c = ctx.lakehouse, ctx.conf.clean
    # The versions the batch is planned on, read before the earlier rows: its commits land only on them.
    versions = {s.name: lh.version(s) for s in outputs}
    cols = ["doc_id", "url", "domain", "source", "text", "n_bytes", "ingested_at", "messages"]
    # Rows ingested before chat records existed have no format: they are text.
    fmt = F.coalesce("format", F.lit("text")).alias("format")
    docs = lh.read(bronze.DOCUMENTS, version=batch.bronze).select(*cols, fmt)
    benchmarks = lh.read(ref.BENCHMARKS, version=batch.benchmarks)
    earlier = None
    if batch.mode == "incremental":
        done, index = batches.earlier(lh, exclude)
        docs = docs.join(done, "doc_id", "left_anti")
        text_of = rules_text(
            c.allowed_langs, c.min_lang_score, c.rule_params(), c.unknown_lang, c.chat_rule_params()
        )
        earlier = dedup.Earlier(index, dedup.earlier_texts(lh.read(bronze.DOCUMENTS), text_of))
    n_in = docs.count()
    if n_in == 0 and batch.mode == "incremental":
        return None
    kept, filtered, quality, index, skew, cached, pii = clean_documents(
        docs, benchmarks, steps(c, checkpoint_dir, lists), batch.id, batch.cleaned_at, earlier
    )
    if pii is None:
        pii = pii_step.empty_scores(docs.sparkSession)
    try:
        filtered = filtered.persist()
        counts = filtered.groupBy("step", "reason").agg(F.count("*").alias("n")).collect()
        n_filtered = sum(r["n"] for r in counts)
        by_step = {s: sum(r["n"] for r in counts if r["step"] == s) for s in silver.STEPS}
        n_kept = n_in - n_filtered
        expected = {
            silver.DOCUMENTS.name: {"expected_rows": n_kept, "allowed_langs": _kept_langs(c)},
            silver.FILTERED.name: {"expected_rows": n_filtered},
            # Signals exist for every document that was not blocked and survived normalization.
            scores.QUALITY.name: {"expected_rows": n_in - by_step["blocklist"] - by_step["normalize"]},
            silver.DEDUP_INDEX.name: {
                "expected_rows": n_in
                - sum(by_step[s] for s in ("blocklist", "normalize", "language", "rules"))
            },
            # A row for every document the PII step saw: the kept ones and those it dropped.
            scores.PII.name: {"expected_rows": n_kept + by_step["pii"] if c.pii.enabled else 0},
        }
        frames = {
            silver.DOCUMENTS.name: kept,
            silver.FILTERED.name: filtered,
            scores.QUALITY.name: quality,
            silver.DEDUP_INDEX.name: index,
            scores.PII.name: pii,
        }
        # An append may add no doc_id its table (for silver: either silver table) holds already.
        held = {
            silver.DOCUMENTS.name: [silver.DOCUMENTS, silver.FILTERED],
            silver.FILTERED.name: [silver.DOCUMENTS, silver.FILTERED],
            scores.QUALITY.name: [scores.QUALITY],
            silver.DEDUP_INDEX.name: [silver.DEDUP_INDEX],
            scores.PII.name: [scores.PII],
        }
        append = batch.mode == "incremental"
        out = [
            Output(
                spec,
                frames[spec.name],
                "append" if append else "overwrite",
                {**expected[spec.name], "new_keys": append},
                check=batches.new_keys_check(lh, held[spec.name]) if append else None,
                read_version=versions[spec.name],
                commit_info=batch.commit_info(),
            )
            for spec in outputs
        ]
        # Idempotent through the ledger (only the tables that lack the batch are committed, each on the
        # version planned against, and no doc_id twice), like ingest: a run that finishes another run's
        # batch and then commits its own must not find its own transaction id already used.
        commits = publish(lh, ctx.run, out, idempotent=False)
        skewed = skew.count() if skew is not None else 0
    finally:
        for df in (*cached, filtered):
            df.unpersist()
    return Cleaned(batch, n_in, counts, n_kept, commits, skewed)


def clean(ctx: JobContext) -> str:
    """The stage body: finish a killed run's batch if any, then clean what silver lacks (or everything).

    Near dedup's intermediate results go to the run's folder on the lake's storage
    (``<warehouse>/_checkpoints/<run id>``), which is removed when the stage ends, whether or not it succeeds.
    The blocklists are read once, before any batch, and each file's size and sha256 recorded in audit.runs.
    """
    b = ctx.conf.clean.blocklist
    lists = blocklist.read(ctx.spark, b.lists) if b.active else None
    try:
        if lists is not None:
            ctx.run.inputs += [f.audit_entry() for f in lists.files]
        with ctx.lakehouse.checkpoints(ctx.run.run_id) as checkpoint_dir:
            return _clean(ctx, checkpoint_dir, lists)
    finally:
        if lists is not None:
            lists.unpersist()


def _clean(ctx: JobContext, checkpoint_dir: str, lists: blocklist.Blocklists | None = None) -> str:
    lh, run, c = ctx.lakehouse, ctx.run, ctx.conf.clean
    fp = freshness.conf_fingerprint(ctx.conf, ("clean",))
    ended = audit.ended_runs(lh, STAGE)
    plan = batches.plan(lh, batches.ledger(lh), batches.recorded(lh), run.run_id, ended, fp, ctx.full)
    lines = [f"clean run {run.run_id}"]
    run.rows_in = run.rows_out = 0
    for i, entry in enumerate(plan.finish):
        missing = entry.missing
        finished = clean_batch(
            ctx, entry.batch, [e.batch.id for e in plan.finish[i:]], missing, checkpoint_dir, lists
        )
        n = finished.n_in if finished is not None else 0
        run.rows_in += n
        run.inputs.append(batches.BATCH_PREFIX + entry.batch.to_json())
        lines.append(
            f"  finished the batch of run {entry.batch.id} ({n:,} documents): it ended after "
            f"committing {', '.join(sorted(entry.tables))}; {', '.join(s.name for s in missing)} "
            "committed now"
        )
    if any(e.batch.id == run.run_id for e in plan.finish):
        # A retried run id finished its own batch: a second batch under the same id would be
        # indistinguishable from it, so what was ingested since is left to the next run.
        return "\n".join(lines)
    bronze_v = lh.version(bronze.DOCUMENTS)
    bench_v = lh.version(ref.BENCHMARKS)
    run.tables_read[bronze.DOCUMENTS.name] = bronze_v or 0
    run.tables_read[ref.BENCHMARKS.name] = bench_v or 0
    mode = "full" if ctx.full or plan.base is None else "incremental"
    batch = batches.Batch(run.run_id, run.seq, mode, bronze_v, bench_v, fp, run.started_at.isoformat())
    notes = []
    older = sorted({b.benchmarks for b in plan.current if b.benchmarks != bench_v}, key=str)
    if mode == "incremental" and older:
        notes.append(
            f"  note: ref.benchmarks is v{bench_v} now; silver's earlier documents were decontaminated "
            f"against v{', v'.join(map(str, older))} and are not checked again by an incremental clean "
            f"(`{batches.FULL_HINT}` does)"
        )
    result = clean_batch(ctx, batch, [run.run_id], checkpoint_dir=checkpoint_dir, lists=lists)
    if result is None:
        lines[0] += (
            f": nothing new: every document of bronze.documents v{bronze_v} is in silver already; "
            "nothing written"
        )
        return "\n".join(lines + notes)
    run.rows_in += result.n_in
    run.rows_out += result.n_kept + sum(r["n"] for r in result.counts)
    run.inputs.append(batches.BATCH_PREFIX + batch.to_json())
    ran = {"normalize", "language"} | ({"rules"} if c.rules else set())
    ran |= ({"blocklist"} if lists is not None else set()) | ({"pii"} if c.pii.enabled else set())
    ran |= {"exact_dedup"} if c.exact_dedup else set()
    ran |= {"near_dedup"} if c.near_dedup.enabled else set()
    ran |= {"decontamination"} if c.decontamination.enabled and c.decontamination.action == "drop" else set()
    if mode == "full":
        lines.append(f"  batch: full: every document of bronze.documents v{bronze_v}; silver replaced")
    else:
        lines.append(f"  batch: incremental: what silver lacked of bronze.documents v{bronze_v}; appended")
    if lists is not None:
        lines += blocklist.summary(lists)
    lines.append(funnel_text(result.n_in, result.counts, result.n_kept, ran))
    if result.skewed:
        lines.append(
            f"  skew guard: {result.skewed} LSH buckets over max_bucket were linked as stars, not all pairs"
        )
    for spec in batches.OUTPUTS:
        lines.append(f"  {spec.name:<18} v{result.commits[spec.name].version}  {lh.path(spec)}")
    return "\n".join(lines + notes)


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``corpuslake-clean`` and ``spark-submit jobs/clean.py``."""
    p = job_parser(STAGE, "Clean new bronze.documents into silver.documents and silver.filtered.")
    p.add_argument("--full", action="store_true", help="recompute silver from all of bronze.documents")
    return run_job(STAGE, p.parse_args(argv), clean, reads=READS, preflight=preflight)


if __name__ == "__main__":
    raise SystemExit(main())
