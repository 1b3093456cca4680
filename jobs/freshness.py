"""Nothing new, nothing written: a stage that recomputes its outputs skips a run whose inputs did not change.

The stages that rebuild their tables from other tables (load_refs from files, score_similarity, the
aggregate stages, select, export) declare a ``Watch``: the tables they read, the conf sections they use, the
input files and any other check. Every run of such a stage records in audit.runs what it saw: the versions
of those tables (``tables_read``) and, in ``inputs``, a fingerprint of those conf sections (``conf:<sha>``)
and the input files' fingerprints (``uri|size|mtime``). A run may then skip when

* the stage's last ended run succeeded,
* it recorded the same table versions, conf fingerprint and input files as the tables and profile have now,
* no table the run that computed them wrote has been written since (and the watch's own check passes),

and says so in one line: ``<stage> run <id>: nothing new since run <X> …; nothing written``. A skipped run
records the same state plus ``same-as:<X>``, so a chain of skipped runs keeps pointing at the run that
computed. Ingest (its file ledger) and clean (the batches of new bronze documents) are incremental by
themselves and need no watch. The model scoring stages are incremental too (only documents without scores),
but finding that out costs a pass over silver per model, so they also have a watch: with silver, their score
table and their models' settings unchanged since their last succeeded run, nothing is left to score.

Where it applies (``jobs.cli``): ``corpuslake run`` and ``demo``. ``--from STAGE`` runs that stage anyway,
``--full`` runs every stage, ``corpuslake stage`` and the stages' own entry points always run (and record).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from jobs.config import Conf
from jobs.tables import Lakehouse
from schemas import audit as audit_schemas
from schemas.base import TableSpec

CONF_PREFIX = "conf:"
SAME_AS = "same-as:"


@dataclass(frozen=True)
class Watch:
    """What a recomputing stage's output depends on.

    Attributes:
        tables: the tables it reads (not its own outputs: those are checked through the run's
            ``tables_written``).
        conf: dotted conf sections it uses, e.g. ``("select",)`` or ``("score.perplexity.pool",)``.
        files: conf → the paths or globs of the input files it reads (their size and mtime count).
        check: ``(conf, lakehouse) -> reason to run anyway, or None`` (export: its files are still there).
    """

    tables: tuple[TableSpec, ...] = ()
    conf: tuple[str, ...] = ()
    files: Callable[[Conf], list[str]] | None = None
    check: Callable[[Conf, Lakehouse], str | None] | None = None


def conf_fingerprint(conf: Conf, sections: tuple[str, ...] | list[str]) -> str:
    """sha256 (16 hex digits) of the named conf sections' values, as JSON with sorted keys."""
    data = conf.model_dump(mode="json")
    picked = {}
    for dotted in sections:
        value = data
        for part in dotted.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        picked[dotted] = value
    text = json.dumps(picked, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def file_fingerprints(patterns: list[str]) -> list[str]:
    """``uri|size|mtime_ns`` of every file the patterns match (the fingerprint ingest's ledger uses)."""
    from jobs.runtime import list_files

    return sorted({f"{uri}|{size}|{mtime}" for p in patterns for uri, size, mtime in list_files(p)})


def state(lakehouse: Lakehouse, conf: Conf, watch: Watch) -> tuple[dict[str, int], list[str]]:
    """The watched tables' versions now (existing tables only) and the ``inputs`` entries to record."""
    versions = {s.name: v for s in watch.tables if (v := lakehouse.version(s)) is not None}
    entries = [CONF_PREFIX + conf_fingerprint(conf, watch.conf)]
    if watch.files is not None:
        entries += file_fingerprints(watch.files(conf))
    return versions, entries


def _runs(lakehouse: Lakehouse, stage: str) -> list[dict]:
    # audit.runs on the driver (a few rows per run): see jobs.audit.
    cols = ["run_id", "stage", "status", "ended_at", "inputs", "tables_read", "tables_written"]
    return [r for r in lakehouse.rows(audit_schemas.RUNS, cols) if r["stage"] == stage]


def _last_ended(lakehouse: Lakehouse, stage: str):
    ended = [r for r in _runs(lakehouse, stage) if r["ended_at"] is not None]
    return max(ended, key=lambda r: (r["ended_at"], r["run_id"]), default=None)


def _succeeded(lakehouse: Lakehouse, stage: str, run_id: str):
    found = [r for r in _runs(lakehouse, stage) if r["run_id"] == run_id and r["status"] == "succeeded"]
    return found[0] if found else None


def unchanged_since(
    lakehouse: Lakehouse,
    stage: str,
    conf: Conf,
    watch: Watch,
    versions: dict[str, int],
    entries: list[str],
) -> str | None:
    """The id of the run whose outputs still stand for these inputs, or None when the stage must run.

    Args:
        lakehouse: where audit.runs and the tables live.
        stage: the stage.
        conf: the profile (for the watch's check).
        watch: the stage's watch.
        versions, entries: ``state`` now.
    """
    last = _last_ended(lakehouse, stage)
    if last is None or last["status"] != "succeeded":
        return None
    recorded = list(last["inputs"] or [])
    same_as = [e[len(SAME_AS) :] for e in recorded if e.startswith(SAME_AS)]
    if sorted(e for e in recorded if not e.startswith(SAME_AS)) != sorted(entries):
        return None
    read = dict(last["tables_read"] or {})
    if any(read.get(s.name) != versions.get(s.name) for s in watch.tables):
        return None
    computed = last if not same_as else _succeeded(lakehouse, stage, same_as[0])
    if computed is None:
        return None
    for name, version in (computed["tables_written"] or {}).items():
        spec = next((s for s in _all_specs() if s.name == name), None)
        if spec is None or lakehouse.version(spec) != version:
            return None
    if watch.check is not None and watch.check(conf, lakehouse) is not None:
        return None
    return computed["run_id"]


def _all_specs() -> tuple[TableSpec, ...]:
    from jobs.catalog import all_specs

    return all_specs()


def skipped_line(stage: str, run_id: str, since: str, versions: dict[str, int]) -> str:
    """The one line a skipped run prints."""
    read = ", ".join(f"{t} v{v}" for t, v in sorted(versions.items())) or "no tables"
    return (
        f"{stage} run {run_id}: nothing new since run {since} (the same {read}, settings and input "
        "files); nothing written"
    )
