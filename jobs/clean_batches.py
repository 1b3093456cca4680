"""Clean's batches: which bronze documents a clean run cleans, against what, and how a killed run is finished.

A clean run cleans one batch: the bronze documents silver does not hold yet (incremental), or all of them
(full: the first clean, or ``--full``). The batch's rows go to six tables, in this order: silver.documents,
silver.filtered, scores.quality, silver.dedup_index, scores.pii and silver.excisions, appended (incremental:
earlier rows keep their files) or replaced (full). Every commit carries the batch in its commit info
(``corpuslake.clean``): the run that planned it, the bronze.documents and ref.benchmarks versions it read,
the fingerprint of the clean settings and its time. That is the ledger ingest keeps for its files, true
exactly when the rows are:

* a batch in all five tables is complete, and a succeeded run records it in audit.runs too (``inputs``:
  ``batch:<json>``, also for a batch it finished), which outlives the log's retention. The documents silver
  holds (kept or filtered) are those of complete batches, so they are the "already cleaned" set the next
  batch leaves out;
* a batch in some tables only is a run killed (or failed) between its commits. The next run finishes it
  first: it cleans the same batch again (the same bronze version, the same earlier rows, the planning
  run's id and time in the rows) and commits only the tables that lack it, so no row is lost or doubled;
  each gate also checks that no appended doc_id is in the table already;
* a batch whose committing run still runs is in flight: the run stops rather than race it, and commits
  land only on the table versions the run planned against (a concurrent clean makes one of them fail
  before it commits anything).

The settings fingerprint of the latest full batch is the one silver was built under: an incremental run
under other clean settings would mix old and new rules, so it stops and offers the full recompute.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.runtime import UsageError
from jobs.tables import CommitConflict, Lakehouse
from schemas import scores, silver

CLEAN_KEY = "corpuslake.clean"
BATCH_PREFIX = "batch:"  # a succeeded clean run's audit.runs inputs: the batches it committed
# The clean stage's outputs, in commit order (silver.documents first: a run killed while staging it, before
# any commit, leaves nothing to finish).
OUTPUTS = (
    silver.DOCUMENTS,
    silver.FILTERED,
    scores.QUALITY,
    silver.DEDUP_INDEX,
    scores.PII,
    silver.EXCISIONS,
)
FULL_HINT = "corpuslake run --from clean --full"


@dataclass(frozen=True)
class Batch:
    """One clean run's batch, as its commits record it.

    Attributes:
        id: the run that planned it (the rows' ``clean_run_id``).
        seq: that run's sequence number (batches are ordered by it).
        mode: ``full`` (replaces the tables) or ``incremental`` (appends).
        bronze: the bronze.documents version read.
        benchmarks: the ref.benchmarks version decontaminated against (None: no table).
        conf: fingerprint of the ``clean`` conf section.
        started_at: the planning run's start, ISO 8601 (the rows' ``cleaned_at``).
    """

    id: str
    seq: int
    mode: str
    bronze: int | None
    benchmarks: int | None
    conf: str
    started_at: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def commit_info(self) -> dict[str, str]:
        return {CLEAN_KEY: self.to_json()}

    @property
    def cleaned_at(self) -> datetime:
        return datetime.fromisoformat(self.started_at)


@dataclass
class Landed:
    """A batch and, per table it reached, the runs that committed it there."""

    batch: Batch
    tables: dict[str, set[str]] = field(default_factory=dict)

    @property
    def missing(self) -> list:
        return [s for s in OUTPUTS if s.name not in self.tables]


def ledger(lakehouse: Lakehouse) -> dict[str, Landed]:
    """Batch id → ``Landed``, from the commit info of the clean tables' commits."""
    out: dict[str, Landed] = {}
    for spec in OUTPUTS:
        for _, committer, value in lakehouse.commit_info(spec, CLEAN_KEY):
            batch = Batch(**json.loads(value))
            entry = out.setdefault(batch.id, Landed(batch))
            entry.tables.setdefault(spec.name, set()).add(committer or "")
    return out


def recorded(lakehouse: Lakehouse) -> list[Batch]:
    """The batches succeeded clean runs recorded in audit.runs (complete by definition)."""
    from schemas import audit as audit_schemas

    entries = {
        e
        for r in lakehouse.rows(audit_schemas.RUNS, ["stage", "status", "inputs"])
        if r["stage"] == "clean" and r["status"] == "succeeded"
        for e in r["inputs"] or ()
        if e.startswith(BATCH_PREFIX)
    }
    return [Batch(**json.loads(e[len(BATCH_PREFIX) :])) for e in sorted(entries)]


@dataclass
class Plan:
    """What a clean run does before its own batch.

    Attributes:
        finish: batches to complete first, oldest first.
        base: the latest full batch (silver's settings), None when silver was never built by a batch.
        current: the batches since it (its own included), complete or not.
    """

    finish: list[Landed]
    base: Batch | None
    current: list[Batch]


def plan(
    lakehouse: Lakehouse,
    landed: dict[str, Landed],
    done: list[Batch],
    run_id: str,
    ended: set[str],
    conf_fp: str,
    full: bool,
) -> Plan:
    """Sort the ledger into batches to finish and the settings silver was built under.

    Args:
        lakehouse: the lake (does silver exist without a ledger?).
        landed: ``ledger`` (commits the Delta log still holds).
        done: ``recorded`` (batches succeeded runs committed, however old).
        run_id: this run (a retried run id finishes its own earlier attempt).
        ended: ids of clean runs that have ended (abandoned included).
        conf_fp: the fingerprint of the clean settings now.
        full: the run replaces silver (``--full``): nothing to finish, no settings to match.

    Raises:
        CommitConflict: a batch is half committed by a run that still runs.
        UsageError: silver exists without a ledger, or was built under other clean settings (not ``full``).
    """
    known = {b.id: b for b in done}
    known.update({i: e.batch for i, e in landed.items()})
    if not known:
        # Version 0 is the table's creation (a first clean whose gate failed leaves that): no rows yet.
        if not full and (lakehouse.version(silver.DOCUMENTS) or 0) > 0:
            raise UsageError(
                "clean: silver was built before incremental cleans (its commits name no batch); "
                f"recompute it once with `{FULL_HINT}`"
            )
        return Plan([], None, [])
    fulls = [b for b in known.values() if b.mode == "full"]
    base = max(fulls, key=lambda b: b.seq) if fulls else None
    since = base.seq if base is not None else min(b.seq for b in known.values())
    batches = sorted((b for b in known.values() if b.seq >= since), key=lambda b: b.seq)
    complete = {b.id for b in done}
    pending = [landed[b.id] for b in batches if b.id in landed and b.id not in complete]
    pending = [e for e in pending if e.missing]
    for e in pending:
        live = sorted(
            c for committers in e.tables.values() for c in committers if c not in ended and c != run_id
        )
        if live:
            raise CommitConflict(
                f"clean run {live[0]} is still committing the batch of run {e.batch.id} "
                f"({', '.join(sorted(e.tables))} committed so far); run clean again once it has ended"
            )
    if full:
        return Plan([], base, batches)
    changed = [b for b in batches if b.conf != conf_fp]
    if changed:
        raise UsageError(
            f"clean: the clean settings changed since silver was built (run {changed[0].id}): an "
            f"incremental clean would mix old and new rules; recompute silver with `{FULL_HINT}`"
        )
    return Plan(pending, base, batches)


def earlier(lakehouse: Lakehouse, exclude: list[str]) -> tuple[DataFrame, DataFrame]:
    """``(doc_ids silver holds, silver.dedup_index rows)`` without the rows of the ``exclude`` batches."""
    keep = ~F.col("clean_run_id").isin(exclude) if exclude else F.lit(True)
    done = (
        lakehouse.read(silver.DOCUMENTS)
        .filter(keep)
        .select("doc_id")
        .unionByName(lakehouse.read(silver.FILTERED).filter(keep).select("doc_id"))
    )
    return done, lakehouse.read(silver.DEDUP_INDEX).filter(keep)


def new_keys_check(lakehouse: Lakehouse, tables: list) -> Callable[[DataFrame], DataFrame]:
    """An append's gate check: ``ALREADY_IN`` holds the doc_id when one of ``tables`` has it already."""
    from schemas.base import ALREADY_IN

    held = None
    for spec in tables:
        if lakehouse.exists(spec):
            ids = lakehouse.read(spec).select("doc_id")
            held = ids if held is None else held.unionByName(ids)

    def check(staged: DataFrame) -> DataFrame:
        if held is None:
            return staged.withColumn(ALREADY_IN, F.lit(None).cast("string"))
        marks = held.distinct().select("doc_id", F.lit(True).alias("_held"))
        return (
            staged.join(marks, "doc_id", "left")
            .withColumn(ALREADY_IN, F.when(F.col("_held"), F.col("doc_id")))
            .drop("_held")
        )

    return check
